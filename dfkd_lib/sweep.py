"""Results commands: a grid of distillation runs (variants x datasets x seeds) described by a JSON spec.

A spec file (committed under ``results/``) looks like::

    {"name": "ablation",
     "datasets": ["fashion-mnist", "fashion-mnist-upper"],
     "seeds": [0, 1, 2],
     "common": {"student": "resnet18", "student_width": 16, "generator_width": 16,
                "config": {"epochs": 8, "iterations_per_epoch": 10, "amp": "bf16"}},
     "variants": {"baseline": {"method": "baseline"},
                  "full": {"method": "dfkd-fgvc", "generator": "attention"}}}

``python -m dfkd_lib sweep results/ablation.json`` runs every (variant, dataset, seed) whose result file
``results/ablation/VARIANT__DATASET__sSEED.json`` is missing (so an interrupted sweep resumes), each written
with its provenance. :func:`summarize` turns the files into a table of mean and spread over seeds.
"""
from __future__ import annotations

import copy
import json
from pathlib import Path

from .engine import DistillConfig
from .utils import fast_mode


def load_spec(path: str | Path) -> dict:
    """Read and check a sweep spec; ``ValueError`` names a missing key."""
    spec = json.loads(Path(path).read_text())
    for key in ("name", "datasets", "seeds", "variants"):
        if key not in spec:
            raise ValueError(f"sweep spec {path} lacks {key!r}")
    return spec


def result_path(spec_path: str | Path, variant: str, dataset: str, seed: int, fast: bool | None = None) -> Path:
    """Where one run of a sweep writes its result JSON (``.fast.json`` in fast mode, so that a smoke run never
    stands in for a real one)."""
    spec_path = Path(spec_path)
    fast = fast_mode() if fast is None else fast
    return spec_path.parent / spec_path.stem / f"{variant}__{dataset}__s{seed}{'.fast' if fast else ''}.json"


def planned_runs(spec_path: str | Path) -> list[dict]:
    """Every run of the sweep as keyword arguments of :func:`dfkd_lib.experiment.run_distillation`."""
    spec = load_spec(spec_path)
    runs = []
    for variant, options in spec["variants"].items():
        for dataset in spec["datasets"]:
            for seed in spec["seeds"]:
                kw = copy.deepcopy(spec.get("common", {}))
                for k, v in copy.deepcopy(options).items():
                    kw[k] = {**kw[k], **v} if isinstance(v, dict) and isinstance(kw.get(k), dict) else v
                cfg = dict(kw.pop("config", {}), seed=seed)
                runs.append({"variant": variant, "dataset": dataset, "seed": seed, "config": cfg, "kwargs": kw,
                             "out": result_path(spec_path, variant, dataset, seed)})
    return runs


def run_sweep(spec_path: str | Path, progress: bool = True, only: str | None = None) -> list[Path]:
    """Run the missing runs of a sweep (``only``: restrict to one variant); returns the result paths."""
    from .experiment import run_distillation

    done = []
    for run in planned_runs(spec_path):
        if only is not None and run["variant"] != only:
            continue
        if not run["out"].is_file():
            print(f"[sweep] {run['variant']} on {run['dataset']}, seed {run['seed']} -> {run['out']}")
            run_distillation(run["dataset"], config=DistillConfig(**run["config"]), out=run["out"],
                             progress=progress, command=f"python -m dfkd_lib sweep {spec_path}",
                             **run["kwargs"])
        done.append(run["out"])
    return done


def load_results(spec_path: str | Path):
    """One row per finished run: variant, dataset, seed, best and last accuracy (%), wall time (a DataFrame)."""
    import pandas as pd

    rows = []
    for run in planned_runs(spec_path):
        if run["out"].is_file():
            r = json.loads(run["out"].read_text())
            rows.append({"variant": run["variant"], "dataset": run["dataset"], "seed": run["seed"],
                         "best": 100 * r["best_accuracy"], "last": 100 * r["last_accuracy"],
                         "teacher": 100 * r["teacher_accuracy"], "wall_min": r["wall_s"] / 60,
                         "fast_mode": r["provenance"]["fast_mode"]})
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
