"""Reading a sweep's finished, current results: one row per run, per-epoch histories, provenance, what is
missing, and mean and spread over seeds."""
from __future__ import annotations

from pathlib import Path

from .spec import planned_runs, run_states


def finished_runs(spec_path: str | Path, fast: bool | None = None):
    """``(run, result)`` for every planned run whose result file exists and is current (see :func:`~dfkd_lib.sweep.spec.is_current`);
    ``fast=False`` reads the real results even in fast mode (a chapter under test shows what the book shows)."""
    return ((run, r) for run, r, current in run_states(spec_path, fast) if current)


def load_run(spec_path: str | Path, variant: str, dataset: str, seed: int) -> tuple[dict, Path]:
    """The result of one finished, current run of a sweep and its file path (the real result, also in fast
    mode), for :func:`dfkd_lib.experiment.load_run_models`.

    Raises:
        KeyError: the spec plans no such run. FileNotFoundError: the run has no current result file (the
        message gives the command that makes it).
    """
    for run, r, current in run_states(spec_path, fast=False):
        if (run["variant"], run["dataset"], run["seed"]) == (variant, dataset, seed):
            if not current:
                raise FileNotFoundError(f"{run['out']} is missing or stale: run python -m dfkd_lib sweep "
                                        f"{spec_path} --only {variant} --dataset {dataset} --seed {seed}")
            return r, run["out"]
    raise KeyError(f"{spec_path} plans no run {variant!r} on {dataset!r} with seed {seed}")


def load_results(spec_path: str | Path, fast: bool | None = None):
    """One row per finished, current run (stale files are left out): variant, dataset, seed, best and last
    accuracy (%), teacher accuracy (%), wall time (min), arithmetic (``amp``: "bf16" or "fp32"), the CPU it ran
    on (``cpu``: provenance, None in older files), fast mode (a DataFrame)."""
    import pandas as pd

    return pd.DataFrame([result_row(run, r) for run, r in finished_runs(spec_path, fast)])


def result_row(run: dict, r: dict) -> dict:
    """The :func:`load_results` row of one run and its result."""
    return {"variant": run["variant"], "dataset": run["dataset"], "seed": run["seed"],
            "best": 100 * r["best_accuracy"], "last": 100 * r["last_accuracy"],
            "teacher": 100 * r["teacher_accuracy"], "wall_min": r["wall_s"] / 60,
            "amp": r["config"].get("amp") or "fp32", "cpu": r["provenance"].get("cpu"),
            "fast_mode": r["provenance"]["fast_mode"]}


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
    out[("seeds", "")] = g.size()
    return out
