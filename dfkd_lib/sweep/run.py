"""Making the missing or stale runs of a sweep (and copying those that another sweep has already made)."""
from __future__ import annotations

from pathlib import Path

from ..config import DistillConfig
from .spec import EXECUTION_FIELDS, pending_runs, select_runs


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
    from ..experiment import run_distillation
    from ..reuse import adopt_result

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
