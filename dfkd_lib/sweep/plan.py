"""What a sweep still has to make, with an estimate of each run's wall time on this machine."""
from __future__ import annotations

from pathlib import Path

from .results import load_results
from .spec import pending_runs


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

    from ..utils import cpu_name

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
