"""What a sweep still has to make, with an estimate of each run's wall time on this machine."""
from __future__ import annotations

from pathlib import Path

from .results import result_row
from .spec import pending_runs, run_states


def _machine_factor(done, here: str) -> float:
    """How many times longer a run takes on CPU ``here`` than elsewhere: the median over (variant, dataset) pairs
    finished on both of median(here) / median(elsewhere); 1.0 when no pair was."""
    medians = (done.assign(here=done["cpu"] == here).groupby(["variant", "dataset", "here"])["wall_min"].median()
               .unstack("here").reindex(columns=[True, False]))
    ratios = (medians[True] / medians[False]).dropna()
    return float(ratios.median()) if len(ratios) else 1.0


def sweep_plan(spec_path: str | Path, only: str | list[str] | None = None, datasets: str | list[str] | None = None,
               seeds: str | list[int] | None = None, fast: bool | None = None, amp: str | None = None):
    """The runs a sweep would make now (those :func:`pending_runs` yields), with an estimate of each one's wall
    time on this machine: a DataFrame with columns variant, dataset, seed, ``estimate_min``, ``estimated_from``
    (how many finished runs the estimate is over), ``copy_of`` (the result of the same run in a sweep the spec
    reuses, which the sweep copies at no cost; ``""`` otherwise).

    ``estimate_min`` is the median ``wall_min`` of the finished runs of the same variant and dataset, else of the
    variant, else of the whole sweep (NaN when nothing has finished); of those made on this machine (provenance
    ``cpu`` this CPU, and arithmetic ``amp``) when there are any, else of the others times
    :func:`_machine_factor`. ``amp`` ("bf16" or "fp32") is the arithmetic the runs will use; ``None``: each
    run's own from the spec. Other arguments as :func:`select_runs` (``fast=False``: the plan of the real runs,
    also in fast mode). Each result file is read once.

    Raises:
        ValueError: ``only``, ``datasets`` or ``seeds`` names something the spec does not have, or ``amp`` is
        neither "bf16" nor "fp32"."""
    import pandas as pd

    from ..utils import cpu_name

    if amp not in (None, "bf16", "fp32"):
        raise ValueError(f"amp is 'bf16' or 'fp32' (or None for the spec's own); got {amp!r}")
    states = list(run_states(spec_path, fast))
    done, here = pd.DataFrame([result_row(run, r) for run, r, current in states if current]), cpu_name()
    factor = _machine_factor(done, here) if not done.empty else 1.0
    rows = []
    for run, _, source in pending_runs(spec_path, only, datasets, seeds, fast, states=states):
        row = {"variant": run["variant"], "dataset": run["dataset"], "seed": run["seed"],
               "estimate_min": float("nan"), "estimated_from": 0, "copy_of": "" if source is None else str(source)}
        if source is not None:
            row["estimate_min"] = 0.0
        elif not done.empty:
            on_this_machine = (done["cpu"] == here) & (done["amp"] == (amp or run["config"].get("amp") or "fp32"))
            for mask in ((done["variant"] == run["variant"]) & (done["dataset"] == run["dataset"]),
                         done["variant"] == run["variant"], done["variant"].notna()):
                if mask.any():
                    basis, local = done[mask], done[mask & on_this_machine]
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
