"""Results commands: a grid of distillation runs (variants x datasets x seeds) described by a JSON spec.

A spec file (committed under ``results/``) looks like::

    {"name": "ablation",
     "datasets": ["fashion-mnist", "fashion-mnist-upper"],
     "seeds": [0, 1, 2],
     "common": {"student": "resnet18", "student_width": 16, "generator_width": 16,
                "config": {"epochs": 8, "iterations_per_epoch": 10, "amp": "bf16"}},
     "variants": {"baseline": {"method": "baseline"},  # any run_distillation option, e.g. "save_weights": true
                  "full": {"method": "dfkd-fgvc", "generator": "attention"}}}

``datasets`` may also map a label to the options of a dataset, e.g. a folder of photos with its own teacher::

     "datasets": {"warblers": {"dataset": "folder", "root": "../shared/data/cub100-subset",
                               "teacher": "results/birds/teachers/warblers_resnet34w16.pt"}}

(the label then names the result files and the table rows; relative paths are relative to the directory the
sweep is run from).

``"reuse": ["other_spec.json"]`` names sweeps whose identical runs (same configuration, seed, data and teacher
file) are copied instead of run again (:mod:`dfkd_lib.reuse`).

``python -m dfkd_lib sweep results/ablation.json`` runs every (variant, dataset, seed) whose result file
``results/ablation/VARIANT__DATASET__sSEED.json`` is missing or stale (made with another configuration than
the spec now asks for, defaults included), each written with its provenance. Runs go seed by seed, so that the
variants of one seed finish together; a run checkpoints after every epoch (``...sSEED.state.pt``, git-ignored),
so an interrupted sweep resumes mid-run. Several sweeps may share the work: ``--only`` and ``--dataset`` pick
their part. Readers leave stale files out: :func:`load_results` (one row per run), :func:`load_histories`
(per-epoch records), :func:`sweep_provenance` (where each file came from), :func:`sweep_status` (what is
missing) and :func:`summarize` (mean and spread over seeds).
"""
from __future__ import annotations

import copy
import inspect
import json
from dataclasses import asdict
from pathlib import Path

from .config import DistillConfig
from .utils import as_json, fast_mode

#: Schedule fields that change how fast a run goes and its floating-point rounding, not the method: a result
#: made with other values still counts as current, the file records what was used, and ``run_sweep(...,
#: execution=...)`` (``sweep --amp none``) overrides them, e.g. fp32 on a CPU without bfloat16 hardware.
EXECUTION_FIELDS = ("amp", "channels_last")


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
    from .experiment import run_distillation

    return {k: p.default for k, p in inspect.signature(run_distillation).parameters.items()
            if p.default is not inspect.Parameter.empty}


def expected_fields(run: dict) -> dict:
    """What a result file of ``run`` must record (as JSON reads it back): its schedule (``config``), student,
    method and generator names, and every hyper-parameter as resolved now, defaults included (``resolved``, see
    :func:`~dfkd_lib.experiment.resolved_options`); what the spec leaves out is ``run_distillation``'s default."""
    from .experiment import resolved_options

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


def _read(path: Path) -> dict | None:
    return json.loads(path.read_text()) if path.is_file() else None


def _identical(run: dict, reuse: list[Path]) -> Path | None:
    """A current result of the same run in one of the ``reuse`` sweeps (see :mod:`dfkd_lib.reuse`), or ``None``."""
    from .reuse import identical_result

    if not reuse:
        return None
    candidates = [o["out"] for spec in reuse for o in planned_runs(spec, fast=False)
                  if o["seed"] == run["seed"] and o["out"].is_file()]
    return identical_result(run, candidates, lambda result: is_current(run, result))


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
                 fast: bool | None = None):
    """The selected runs (:func:`select_runs`) whose result is missing or stale, as ``(run, stale, copy_of)``:
    ``stale`` is True when a result file exists but no longer matches the spec, ``copy_of`` the path of the same
    run's current result in a sweep the spec reuses (:mod:`dfkd_lib.reuse`), else ``None``."""
    reuse = [Path(spec_path).parent / name for name in load_spec(spec_path).get("reuse", [])]
    for run in select_runs(spec_path, only, datasets, seeds, fast):
        old = _read(run["out"])
        if old is None or not is_current(run, old):
            yield run, old is not None, _identical(run, reuse)


def _machine_factor(done, here: str) -> float:
    """How many times longer a run takes on CPU ``here`` than elsewhere: the median over (variant, dataset) pairs
    finished on both of median(here) / median(elsewhere); 1.0 when no pair was."""
    import pandas as pd

    on_here = done["cpu"] == here
    ratios = [g.loc[on_here[g.index], "wall_min"].median() / g.loc[~on_here[g.index], "wall_min"].median()
              for _, g in done.groupby(["variant", "dataset"]) if 0 < on_here[g.index].sum() < len(g)]
    return float(pd.Series(ratios).median()) if ratios else 1.0


def sweep_plan(spec_path: str | Path, only: str | list[str] | None = None, datasets: str | list[str] | None = None,
               seeds: str | list[int] | None = None, fast: bool | None = None):
    """The runs a sweep would make now (:func:`pending_runs`), with an estimate of each one's wall time on this
    machine: a DataFrame with columns variant, dataset, seed, ``estimate_min``, ``estimated_from`` (how many
    finished runs the estimate is over), ``copy_of`` (the result of the same run in a sweep the spec reuses,
    which the sweep copies at no cost; ``""`` otherwise).

    ``estimate_min`` is the median ``wall_min`` of the finished runs of the same variant and dataset, else of the
    variant, else of the whole sweep (NaN when nothing has finished); of those made on this CPU (provenance
    ``cpu``) when there are any, else of the others times :func:`_machine_factor`. Arguments as
    :func:`select_runs` (``fast=False``: the plan of the real runs, also in fast mode)."""
    import pandas as pd

    from .utils import cpu_name

    done, here = load_results(spec_path, fast), cpu_name()
    factor = _machine_factor(done, here) if not done.empty else 1.0
    rows = []
    for run, _, source in pending_runs(spec_path, only, datasets, seeds, fast):
        row = {"variant": run["variant"], "dataset": run["dataset"], "seed": run["seed"],
               "estimate_min": float("nan"), "estimated_from": 0, "copy_of": "" if source is None else str(source)}
        if source is not None:
            row["estimate_min"] = 0.0
        elif not done.empty:
            for mask in ((done["variant"] == run["variant"]) & (done["dataset"] == run["dataset"]),
                         done["variant"] == run["variant"], done["variant"].notna()):
                if mask.any():
                    basis, local = done[mask], done[mask & (done["cpu"] == here)]
                    minutes = local["wall_min"].median() if len(local) else basis["wall_min"].median() * factor
                    row.update(estimate_min=float(minutes), estimated_from=len(local) or len(basis))
                    break
        rows.append(row)
    return pd.DataFrame(rows, columns=["variant", "dataset", "seed", "estimate_min", "estimated_from", "copy_of"])


def plan_summary(plan) -> str:
    """One line on a :func:`sweep_plan`: how many runs to make, their estimated CPU hours, how many to copy."""
    if plan.empty:
        return "nothing to run: every selected run has a current result"
    copies = int((plan["copy_of"] != "").sum())
    unknown = int(plan["estimate_min"].isna().sum())
    known = len(plan) - copies - unknown
    return (f"{len(plan) - copies} runs to make: about {plan['estimate_min'].sum() / 60:.1f} CPU hours for {known} "
            "of them (medians of finished runs' wall times on this CPU, or scaled to it; one process per core)"
            + (f"; {unknown} without an estimate (no finished run to go by)" if unknown else "")
            + (f"; {copies} copied from the sweeps the spec reuses" if copies else ""))


def run_sweep(spec_path: str | Path, progress: bool = True, only: str | list[str] | None = None,
              datasets: str | list[str] | None = None, seeds: str | list[int] | None = None,
              execution: dict | None = None, copy_only: bool = False) -> list[Path]:
    """Run the missing or stale runs of a sweep; returns the result paths.

    Args:
        execution: values of :data:`EXECUTION_FIELDS` that replace the spec's for the runs made now, e.g.
            ``{"amp": None}`` for fp32 (each result file records what it ran with).
        only: restrict to these variants (a name, a comma-separated string or a list).
        datasets: restrict to these datasets (same forms).
        seeds: restrict to these seeds (``"0,2"`` or a list of ints).
        copy_only: only copy the identical runs of the sweeps the spec reuses (:mod:`dfkd_lib.reuse`), run nothing.

    Raises:
        ValueError: ``only``, ``datasets`` or ``seeds`` names something the spec does not have.
    """
    from .experiment import run_distillation
    from .reuse import adopt_result

    spec_path = Path(spec_path)
    bad = set(execution or {}) - set(EXECUTION_FIELDS)
    if bad:
        raise ValueError(f"execution options are {', '.join(EXECUTION_FIELDS)}; got {', '.join(sorted(bad))}")
    skipped = set()
    for run, stale, source in pending_runs(spec_path, only, datasets, seeds):
        if source is not None:
            print(f"[sweep] {run['variant']} on {run['dataset']}, seed {run['seed']}: the same run as {source}, copied")
            adopt_result(source, run["out"])
        elif copy_only:
            skipped.add(run["out"])
        else:
            why = "stale result, rerun" if stale else "->"
            print(f"[sweep] {run['variant']} on {run['dataset']}, seed {run['seed']} {why} {run['out']}")
            state = run["out"].with_name(run["out"].name.replace(".json", ".state.pt"))
            config = DistillConfig(**{**run["config"], **(execution or {})})
            run_distillation(config=config, out=run["out"],
                             checkpoint=state, progress=progress,
                             command=f"python -m dfkd_lib sweep {spec_path}", **run["kwargs"])
            state.unlink(missing_ok=True)
    return [run["out"] for run in select_runs(spec_path, only, datasets, seeds) if run["out"] not in skipped]


def finished_runs(spec_path: str | Path, fast: bool | None = None):
    """``(run, result)`` for every planned run whose result file exists and is current (see :func:`is_current`);
    ``fast=False`` reads the real results even in fast mode (a chapter under test shows what the book shows)."""
    for run in planned_runs(spec_path, fast):
        r = _read(run["out"])
        if r is not None and is_current(run, r):
            yield run, r


def load_run(spec_path: str | Path, variant: str, dataset: str, seed: int) -> tuple[dict, Path]:
    """The result of one finished, current run of a sweep and its file path (the real result, also in fast
    mode), for :func:`dfkd_lib.experiment.load_run_models`.

    Raises:
        KeyError: the spec plans no such run. FileNotFoundError: the run has no current result file (the
        message gives the command that makes it).
    """
    for run in planned_runs(spec_path, fast=False):
        if (run["variant"], run["dataset"], run["seed"]) == (variant, dataset, seed):
            r = _read(run["out"])
            if r is None or not is_current(run, r):
                raise FileNotFoundError(f"{run['out']} is missing or stale: run python -m dfkd_lib sweep "
                                        f"{spec_path} --only {variant} --dataset {dataset} --seed {seed}")
            return r, run["out"]
    raise KeyError(f"{spec_path} plans no run {variant!r} on {dataset!r} with seed {seed}")


def load_results(spec_path: str | Path, fast: bool | None = None):
    """One row per finished, current run (stale files are left out): variant, dataset, seed, best and last
    accuracy (%), teacher accuracy (%), wall time (min), arithmetic (``amp``: "bf16" or "fp32"), the CPU it ran
    on (``cpu``: provenance, None in older files), fast mode (a DataFrame)."""
    import pandas as pd

    rows = []
    for run, r in finished_runs(spec_path, fast):
        rows.append({"variant": run["variant"], "dataset": run["dataset"], "seed": run["seed"],
                     "best": 100 * r["best_accuracy"], "last": 100 * r["last_accuracy"],
                     "teacher": 100 * r["teacher_accuracy"], "wall_min": r["wall_s"] / 60,
                     "amp": r["config"].get("amp") or "fp32", "cpu": r["provenance"].get("cpu"),
                     "fast_mode": r["provenance"]["fast_mode"]})
    return pd.DataFrame(rows)


def sweep_status(spec_path: str | Path, results=None):
    """How many seeds of each (variant, dataset) of a sweep have a result file: a DataFrame with the planned
    variants as rows (in the spec's order), datasets as columns and cells ``"finished/planned"``.

    ``results``: a :func:`load_results` frame to count instead of the files on disk (e.g. after
    dropping fast-mode runs)."""
    import pandas as pd

    runs = planned_runs(spec_path)
    df = load_results(spec_path) if results is None else results
    variants = list(dict.fromkeys(r["variant"] for r in runs))
    datasets = list(dict.fromkeys(r["dataset"] for r in runs))
    table = pd.DataFrame(index=pd.Index(variants, name="variant"), columns=datasets, dtype=object)
    for v in variants:
        for d in datasets:
            planned = sum(1 for r in runs if r["variant"] == v and r["dataset"] == d)
            done = 0 if df.empty else int(((df["variant"] == v) & (df["dataset"] == d)).sum())
            table.loc[v, d] = f"{done}/{planned}"
    return table


def load_histories(spec_path: str | Path, fast: bool | None = None):
    """Per-epoch records of every finished run of a sweep, long form: one row per (variant, dataset, seed,
    epoch) with ``test_accuracy`` (in %), ``fast_mode`` and every logged loss (e.g. ``S/L_SFCL``, ``S/L_MHAD``,
    ``G/L_BN``; NaN where a run did not log it). An empty DataFrame when no result file exists. ``fast``: as
    in :func:`finished_runs`."""
    import pandas as pd

    rows = []
    for run, r in finished_runs(spec_path, fast):
        for h in r["history"]:
            rows.append({"variant": run["variant"], "dataset": run["dataset"], "seed": run["seed"],
                         "fast_mode": r["provenance"]["fast_mode"],
                         **{k: (100 * v if k == "test_accuracy" else v) for k, v in h.items()}})
    return pd.DataFrame(rows)


def sweep_provenance(spec_path: str | Path, fast: bool | None = None):
    """Where each finished run of a sweep came from: one row per result file with variant, dataset, seed,
    command, git commit (12 characters), date, machine, torch threads, wall time (min) and fast mode (``fast``: as
    in :func:`finished_runs`)."""
    import pandas as pd

    rows = []
    for run, r in finished_runs(spec_path, fast):
        p = r["provenance"]
        rows.append({"variant": run["variant"], "dataset": run["dataset"], "seed": run["seed"],
                     "command": p.get("command"), "git_commit": (p.get("git_commit") or "")[:12],
                     "date_utc": p.get("date_utc"), "machine": p.get("machine"),
                     "torch_threads": p.get("torch_threads"), "wall_min": round(r["wall_s"] / 60, 1),
                     "fast_mode": p.get("fast_mode")})
    return pd.DataFrame(rows)


def summarize(spec_path: str | Path):
    """Mean and standard deviation over seeds of best and last accuracy, per variant and dataset."""
    df = load_results(spec_path)
    if df.empty:
        return df
    g = df.groupby(["dataset", "variant"], sort=False)
    out = g[["best", "last"]].agg(["mean", "std"]).round(2)
    out["seeds"] = g.size()
    return out
