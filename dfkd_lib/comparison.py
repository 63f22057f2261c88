"""Our ranking of data-free methods beside a paper's, and the paper's two qualitative claims, from result tables.

DFKD-FGVC's Table 1 (Shao et al., ICCV 2023) carries two claims beside its numbers: methods whose images are shaped
by the teacher's BN statistics ("prior information") beat those without, and DFKD-FGVC is at or near the top on
fine-grained data. :func:`claims_table` checks both on a :func:`~dfkd_lib.sweep.load_results` frame;
:func:`rank_agreement` compares two rankings.
"""
from __future__ import annotations

from itertools import product
from typing import Mapping

import pandas as pd


def rank_agreement(ours: pd.Series, paper: pd.Series) -> tuple[float | None, list[str]]:
    """Spearman's rank correlation of two scores over the methods both have (index labels, NaN dropped).

    Returns:
        ``(rho, methods)``: rho in [-1, 1] (1: the same order), or ``None`` when fewer than 3 methods are shared.
    """
    both = [m for m in ours.dropna().index if m in paper.dropna().index]
    if len(both) < 3:
        return None, both
    return float(ours[both].rank().corr(paper[both].rank())), both


def claims_table(results: pd.DataFrame, variant_methods: Mapping[str, str], focus: str, metric: str = "best",
                 exclude: tuple[str, ...] = ()) -> pd.DataFrame:
    """Per dataset: the BN-prior claim and where ``focus`` ranks, from the seed means of ``metric``.

    Args:
        results: one row per run with columns ``variant``, ``dataset`` and ``metric`` (a
            :func:`~dfkd_lib.sweep.load_results` frame, accuracy in %).
        variant_methods: each data-free variant's registered method name (e.g. ``{"dfad": "dfad"}``); whether
            the method has a BN prior is read from :func:`~dfkd_lib.methods.describe_methods`. Variants not in
            it (or in ``exclude``, e.g. the real-data reference) are left out.
        focus: the variant whose rank is reported (e.g. ``"dfkd_fgvc"``).

    Returns:
        A DataFrame indexed by dataset: ``prior_mean`` / ``no_prior_mean`` (mean over methods of each group of
        their seed-mean accuracy), ``gap`` (prior minus no prior, points), ``pairs_won`` (``"a/b"``: of the ``b``
        pairs of one method with and one without the prior, in how many the one with it is higher),
        ``focus_rank`` (``"r of n"``, 1 = best; ``"-"`` when ``focus`` has no result) and ``methods`` (n).

    Raises:
        KeyError: a variant mapped to a method that is not registered.
    """
    from .methods import describe_methods

    prior = {r["name"]: r["BN prior"] for r in describe_methods()}
    unknown = sorted(set(variant_methods.values()) - set(prior))
    if unknown:
        raise KeyError(f"not registered methods: {', '.join(unknown)}")
    keep = results[results["variant"].isin([v for v in variant_methods if v not in exclude])]
    rows = {}
    for dataset, part in keep.groupby("dataset", sort=False):
        means = part.groupby("variant")[metric].mean()
        with_p = [means[v] for v in means.index if prior[variant_methods[v]]]
        without = [means[v] for v in means.index if not prior[variant_methods[v]]]
        order = list(means.sort_values(ascending=False).index)
        rows[dataset] = {
            "prior_mean": sum(with_p) / len(with_p) if with_p else float("nan"),
            "no_prior_mean": sum(without) / len(without) if without else float("nan"),
            "pairs_won": f"{sum(a > b for a, b in product(with_p, without))}/{len(with_p) * len(without)}",
            "focus_rank": f"{order.index(focus) + 1} of {len(order)}" if focus in order else "-",
            "methods": len(order)}
    out = pd.DataFrame.from_dict(rows, orient="index",
                                 columns=["prior_mean", "no_prior_mean", "pairs_won", "focus_rank", "methods"])
    out.insert(2, "gap", out["prior_mean"] - out["no_prior_mean"])
    out.index.name = "dataset"
    return out


__all__ = ["rank_agreement", "claims_table"]
