"""A sweep spec and its runs: reading and checking the JSON, the planned runs, where each writes its result, and
whether a result file is current (made with the configuration the spec asks for now)."""
from __future__ import annotations

import copy
import inspect
import json
from dataclasses import asdict
from pathlib import Path

from ..config import EXECUTION_FIELDS, DistillConfig
from ..utils import as_json, fast_mode


SPEC_KEYS = ("name", "description", "datasets", "seeds", "common", "variants", "reuse")


def load_spec(path: str | Path) -> dict:
    """Read and check a sweep spec.

    Raises:
        ValueError: a missing or unknown top-level key, or a run option (in ``common``, a variant or a dataset
        entry) that :func:`~dfkd_lib.experiment.run_distillation` does not take, or a schedule field
        :class:`~dfkd_lib.config.DistillConfig` does not have.
    """
    from dataclasses import fields

    spec = json.loads(Path(path).read_text())
    for key in ("name", "datasets", "seeds", "variants"):
        if key not in spec:
            raise ValueError(f"sweep spec {path} lacks {key!r}")
    unknown = sorted(set(spec) - set(SPEC_KEYS))
    if unknown:
        raise ValueError(f"sweep spec {path}: unknown key(s) {', '.join(unknown)}; a spec has {', '.join(SPEC_KEYS)}")
    allowed = set(_run_defaults()) | {"dataset", "config"}
    config_fields = {f.name for f in fields(DistillConfig)}
    datasets = spec["datasets"] if isinstance(spec["datasets"], dict) else {}
    parts = {"common": spec.get("common", {}), **{f"variant {v}": o for v, o in spec["variants"].items()},
             **{f"dataset {d}": o for d, o in datasets.items()}}
    for where, options in parts.items():
        bad = sorted(set(options) - allowed)
        if bad:
            raise ValueError(f"sweep spec {path}, {where}: unknown option(s) {', '.join(bad)}")
        bad = sorted(set(options.get("config", {})) - config_fields)
        if bad:
            raise ValueError(f"sweep spec {path}, {where}: unknown config field(s) {', '.join(bad)}")
    return spec


def result_path(spec_path: str | Path, variant: str, dataset: str, seed: int, fast: bool | None = None) -> Path:
    """Where one run of a sweep writes its result JSON (``.fast.json`` in fast mode, so that a smoke run never
    stands in for a real one)."""
    spec_path = Path(spec_path)
    fast = fast_mode() if fast is None else fast
    return spec_path.parent / spec_path.stem / f"{variant}__{dataset}__s{seed}{'.fast' if fast else ''}.json"


def planned_runs(spec_path: str | Path, fast: bool | None = None) -> list[dict]:
    """Every run of the sweep as keyword arguments of :func:`dfkd_lib.experiment.run_distillation`;
    ``fast`` picks the result files of fast-mode runs (default: the current mode, see :func:`result_path`)."""
    spec = load_spec(spec_path)
    datasets = spec["datasets"]
    if not isinstance(datasets, dict):
        datasets = {name: {} for name in datasets}
    runs = []
    for seed in spec["seeds"]:
        for dataset, data_options in datasets.items():
            for variant, options in spec["variants"].items():
                kw = copy.deepcopy(spec.get("common", {}))
                for k, v in list(copy.deepcopy(data_options).items()) + list(copy.deepcopy(options).items()):
                    kw[k] = {**kw[k], **v} if isinstance(v, dict) and isinstance(kw.get(k), dict) else v
                cfg = dict(kw.pop("config", {}), seed=seed)
                kw.setdefault("dataset", dataset)
                runs.append({"variant": variant, "dataset": dataset, "seed": seed, "config": cfg, "kwargs": kw,
                             "out": result_path(spec_path, variant, dataset, seed, fast)})
    return runs


def _run_defaults() -> dict:
    """The keyword defaults of :func:`dfkd_lib.experiment.run_distillation` (what a spec leaves out)."""
    from ..experiment import run_distillation

    return {k: p.default for k, p in inspect.signature(run_distillation).parameters.items()
            if p.default is not inspect.Parameter.empty}


def expected_fields(run: dict) -> dict:
    """What a result file of ``run`` must record (as JSON reads it back): its schedule (``config``), student,
    method and generator names, and every hyper-parameter as resolved now, defaults included (``resolved``, see
    :func:`~dfkd_lib.experiment.resolved_options`); what the spec leaves out is ``run_distillation``'s default."""
    from ..experiment import resolved_options

    kw = {**_run_defaults(), **run["kwargs"]}
    fast = run["out"].name.endswith(".fast.json")
    return as_json({"config": asdict(DistillConfig(**run["config"])),
                    "student": {"architecture": kw["student"], "width": kw["student_width"]},
                    "method": {"name": kw["method"]},
                    "generator": {"name": kw["generator"], "width": kw["generator_width"], "nz": kw["nz"]},
                    "resolved": resolved_options(kw["method"], kw["method_options"], kw["generator"],
                                                 kw["generator_options"], fast=fast)})


def is_current(run: dict, result: dict) -> bool:
    """Whether a result file was made with the configuration the spec asks for now (see
    :func:`expected_fields`): the same schedule, models and every resolved hyper-parameter, so that a changed
    default makes the file stale. The shrunk schedule of a fast-mode result is not compared, nor are
    :data:`EXECUTION_FIELDS`; a schedule field the file does not record, because it is older than the field,
    counts as that field's default."""
    want = expected_fields(run)
    got = as_json({k: result.get(k) for k in want})
    got["method"] = {"name": (result.get("method") or {}).get("name")}
    got["generator"] = {k: (result.get("generator") or {}).get(k) for k in ("name", "width", "nz")}
    if isinstance(got.get("config"), dict):  # a file older than a config field ran with that field's default
        got["config"] = {**as_json(asdict(DistillConfig())), **got["config"]}
    if result.get("provenance", {}).get("fast_mode"):
        want.pop("config"), got.pop("config")
    for part in (want, got):
        for field in EXECUTION_FIELDS:
            if isinstance(part.get("config"), dict):
                part["config"].pop(field, None)
    return want == got


def read_result(path: Path) -> dict | None:
    """The JSON of a result file, or ``None`` when there is none."""
    return json.loads(path.read_text()) if path.is_file() else None


def reused_specs(spec_path: str | Path) -> list[Path]:
    """The paths of the sweeps a spec reuses (its ``"reuse"`` key, relative to the spec's directory)."""
    return [Path(spec_path).parent / name for name in load_spec(spec_path).get("reuse", [])]


def reused_result(run: dict, reuse: list[Path]) -> Path | None:
    """A current result of the same run in one of the ``reuse`` sweeps (see :mod:`dfkd_lib.reuse`), or ``None``."""
    from ..reuse import identical_result

    if not reuse:
        return None
    candidates = [o["out"] for spec in reuse for o in planned_runs(spec, fast=False)
                  if o["seed"] == run["seed"] and o["out"].is_file()]
    return identical_result(run, candidates, lambda result: is_current(run, result))


def run_states(spec_path: str | Path, fast: bool | None = None):
    """``(run, result, current)`` for every planned run: its result file's JSON (``None`` when there is none) and
    whether that file is current (:func:`is_current`). The one place that reads a sweep's result files."""
    for run in planned_runs(spec_path, fast):
        result = read_result(run["out"])
        yield run, result, result is not None and is_current(run, result)


def select_runs(spec_path: str | Path, only: str | list[str] | None = None, datasets: str | list[str] | None = None,
                seeds: str | list[int] | None = None, fast: bool | None = None) -> list[dict]:
    """The planned runs (:func:`planned_runs`) of these variants, datasets and seeds (each a name, a comma-separated
    string or a list; ``None``: all).

    Raises:
        ValueError: a variant, dataset or seed that the spec does not have."""
    def names(x):
        return None if x is None else (x.split(",") if isinstance(x, str) else list(x))

    runs = planned_runs(spec_path, fast)
    only, datasets = names(only), names(datasets)
    seeds = None if seeds is None else [int(x) for x in names(seeds)]
    for picked, key in ((only, "variant"), (datasets, "dataset"), (seeds, "seed")):
        unknown = set(picked or []) - {r[key] for r in runs}
        if unknown:
            raise ValueError(f"{spec_path} has no {key} {', '.join(str(u) for u in sorted(unknown))}")
    return [r for r in runs if not ((only and r["variant"] not in only) or (datasets and r["dataset"] not in datasets)
                                    or (seeds is not None and r["seed"] not in seeds))]


def pending_runs(spec_path: str | Path, only: str | list[str] | None = None,
                 datasets: str | list[str] | None = None, seeds: str | list[int] | None = None,
                 fast: bool | None = None, states=None):
    """The selected runs (:func:`select_runs`) whose result is missing or stale, as ``(run, stale, copy_of)``:
    ``stale`` is True when a result file exists but no longer matches the spec, ``copy_of`` the path of the same
    run's current result in a sweep the spec reuses (:mod:`dfkd_lib.reuse`), else ``None``. ``states``: the
    :func:`run_states` of the spec when the caller has read them already."""
    reuse = reused_specs(spec_path)
    selected = {run["out"] for run in select_runs(spec_path, only, datasets, seeds, fast)}
    for run, result, current in run_states(spec_path, fast) if states is None else states:
        if run["out"] in selected and not current:
            yield run, result is not None, reused_result(run, reuse)
