"""Results of runs and sweeps as tables and plots: "mean ± std (n seeds)" cells, differences to a reference
paired by seed with the book's one verdict rule (:func:`paired_verdict`), per-seed plots, accuracy curves,
confusion matrices, and the overview of a sweep with its provenance."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Mapping, Sequence

import matplotlib.pyplot as plt
import numpy as np
import torch

from ..sweep import load_spec, planned_runs

NO_RESULT = "no results yet"


def _by_seed(results, variant: str, dataset: str, metric: str):
    """``metric`` of one (variant, dataset) of a results frame as a float Series indexed by seed."""
    import pandas as pd

    if results is None or len(results) == 0:
        return pd.Series(dtype=float)
    sel = results[(results["variant"] == variant) & (results["dataset"] == dataset)]
    return sel.set_index("seed")[metric].astype(float)


def _cells(results, variant: str, dataset: str, metric: str) -> np.ndarray:
    return _by_seed(results, variant, dataset, metric).to_numpy(dtype=float)


def format_mean_std(values: Sequence[float], digits: int = 2) -> str:
    """``"mean ± std (n=k)"`` (sample standard deviation, ddof=1), ``"mean (n=1)"`` or :data:`NO_RESULT`."""
    v = np.asarray(values, dtype=float)
    if v.size == 0:
        return NO_RESULT
    if v.size == 1:
        return f"{v[0]:.{digits}f} (n=1)"
    return f"{v.mean():.{digits}f} ± {v.std(ddof=1):.{digits}f} (n={v.size})"


def ablation_table(results, variants: Mapping[str, str], datasets: Sequence[str], metric: str = "best",
                   digits: int = 2):
    """Measured accuracies as a table of strings: rows = ``variants`` (name -> row label, in that order),
    columns = ``datasets``, cells ``"mean ± std (n=seeds)"`` over the seeds found, or ``"no results yet"``.

    Args:
        results: a :func:`dfkd_lib.sweep.load_results` frame (columns variant, dataset, seed, best, last ...);
            may be empty.
        metric: ``"best"`` or ``"last"`` (test accuracy in %).
    """
    import pandas as pd

    rows = {label: [format_mean_std(_cells(results, v, d, metric), digits) for d in datasets]
            for v, label in variants.items()}
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(datasets))


def paired_verdict(diffs: Sequence[float], bold: bool = False, name: str = "the full method",
                   reference: str = "the baseline") -> str:
    """The book's one rule for "does a variant beat its reference", from paired differences (variant minus
    reference, per seed, in points): it *beats* it when it is higher on every seed and the mean difference
    exceeds the sample standard deviation of the differences; it is *higher on average* when only the mean is
    positive; otherwise it *does not beat* it. Fewer than three paired seeds give no verdict.

    Returns a sentence fragment such as ``"beats the baseline (+5.20 ± 1.10 points, higher on 3 of 3 seeds)"``
    (``bold``: the verdict word in Markdown bold; ``name`` is not part of the fragment, ``reference`` is).
    """
    d = np.asarray(diffs, dtype=float)
    b = "**" if bold else ""
    if d.size < 3:
        return f"no verdict ({d.size} paired seed{'s' if d.size != 1 else ''}, 3 needed)"
    wins, mean, sd = int((d > 0).sum()), d.mean(), d.std(ddof=1)
    head = f"{mean:+.2f} ± {sd:.2f} points, higher on {wins} of {d.size} seeds"
    if wins == d.size and mean > sd:
        return f"{b}beats{b} {reference} ({head})"
    if mean > 0:
        return f"higher on average, within the seed-to-seed spread ({head})"
    return f"{b}does not beat{b} {reference} ({head})"


def paired_differences(results, variant: str, reference: str, dataset: str, metric: str = "best") -> np.ndarray:
    """``variant - reference`` of ``metric`` per seed both have (sorted by seed), for one dataset."""
    a, b = _by_seed(results, variant, dataset, metric), _by_seed(results, reference, dataset, metric)
    seeds = sorted(set(a.index) & set(b.index))
    return (a[seeds] - b[seeds]).to_numpy(dtype=float) if seeds else np.array([])


def paired_table(results, variants: Mapping[str, str], reference: str, datasets: Sequence[str],
                 metric: str = "best", digits: int = 2):
    """Differences to a reference variant, paired by seed (same student initialisation and noise): rows =
    ``variants`` (name -> label; the reference itself is skipped), columns = ``datasets``, cells
    ``"+mean ± std over seeds (higher in w of n)"`` of ``variant - reference`` in points of ``metric`` (%),
    over the seeds both have; ``"no results yet"`` when they share none.

    Raises:
        ValueError: ``metric`` is not a column of ``results``.
    """
    import pandas as pd

    if results is not None and len(results) and metric not in results:
        raise ValueError(f"results have no column {metric!r} (columns: {list(results.columns)})")

    rows = {}
    for v, label in variants.items():
        if v == reference:
            continue
        cells = []
        for d in datasets:
            diff = paired_differences(results, v, reference, d, metric)
            if diff.size == 0:
                cells.append(NO_RESULT)
            elif diff.size == 1:
                cells.append(f"{diff[0]:+.{digits}f} (n=1)")
            else:
                cells.append(f"{diff.mean():+.{digits}f} ± {diff.std(ddof=1):.{digits}f} "
                             f"(higher in {int((diff > 0).sum())} of {diff.size})")
        rows[label] = cells
    return pd.DataFrame.from_dict(rows, orient="index", columns=list(datasets))


def plot_ablation(results, variants: Mapping[str, str], datasets: Sequence[str], metric: str = "best",
                  axes=None, reference: str | None = None, teacher: bool = True):
    """One panel per dataset: each seed as a dot and the mean ± std over seeds as a square with error bar, per
    variant; returns the
    axes. A variant without results is marked "no results yet" in its panel. ``reference`` (a variant name) draws
    its mean as a dotted line; ``teacher`` draws the teacher's accuracy (from the results) as a dashed line."""
    if axes is None:
        _, axes = plt.subplots(1, len(datasets), figsize=(4.2 * len(datasets), 3.2), squeeze=False)
        axes = axes[0]
    axes = np.ravel(axes)
    names, labels = list(variants), list(variants.values())
    for ax, d in zip(axes, datasets):
        for x, v in enumerate(names):
            vals = _cells(results, v, d, metric)
            if vals.size == 0:
                ax.text(x, 0.5, NO_RESULT, rotation=90, ha="center", va="center", fontsize=7, color="0.4",
                        transform=ax.get_xaxis_transform())
                continue
            ax.scatter(np.full(vals.size, x) + np.linspace(-0.12, 0.12, vals.size), vals, s=14, c="k", zorder=3)
            err = vals.std(ddof=1) if vals.size > 1 else 0.0
            ax.errorbar(x + 0.25, vals.mean(), yerr=err, fmt="s", color=f"C{x}", ms=7, capsize=4, zorder=4)
        if reference is not None:
            ref = _cells(results, reference, d, metric)
            if ref.size:
                ax.axhline(ref.mean(), ls=":", c="k", lw=1)
        if teacher and results is not None and len(results):
            t = results[results["dataset"] == d]["teacher"]
            if len(t):
                ax.axhline(float(t.iloc[0]), ls="--", c="0.3", lw=1, label=f"teacher {float(t.iloc[0]):.1f}%")
                ax.legend(fontsize=7, loc="lower right")
        vals_all = np.concatenate([_cells(results, v, d, metric) for v in names] + [np.array([])])
        if vals_all.size:
            lo, hi = vals_all.min(), vals_all.max()
            pad = max(1.0, 0.15 * (hi - lo))
            top = hi + pad
            if teacher and results is not None and len(results) and len(results[results["dataset"] == d]):
                top = max(top, float(results[results["dataset"] == d]["teacher"].iloc[0]) + pad)
            ax.set_ylim(max(0.0, lo - 3 * pad), min(100.0, top))
        ax.set_xticks(range(len(names)), labels, rotation=20, fontsize=8)
        ax.set_title(d, fontsize=9)
        ax.set_ylabel(f"{metric} test accuracy (%)", fontsize=8)
        ax.grid(axis="y", alpha=0.3)
    return axes


def plot_student_bars(table, variants: Sequence[str], teacher_accuracy: float | None = None,
                      num_classes: int | None = None, labels: dict[str, str] | None = None, ax=None,
                      title: str = "Students distilled from synthetic images, real test accuracy"):
    """Bar chart (seaborn) of best and last student accuracy (%) per variant, teacher and chance as lines.

    Args:
        table: rows with ``variant``, ``best``, ``last`` (e.g. from :func:`sweep_overview`); several seeds
            per variant give error bars (standard deviation).
        variants: the order of the bars; variants without rows are marked "no result yet".
        teacher_accuracy: in %, drawn as a dashed line.
        num_classes: draws chance (``100 / num_classes`` %) as a dotted line.
        labels: display names per variant.

    Returns:
        The axes.
    """
    import pandas as pd
    import seaborn as sns

    labels = labels or {}
    names = [labels.get(v, v) for v in variants]
    if ax is None:
        _, ax = plt.subplots(figsize=(7, 3.8))
    long = pd.DataFrame(columns=["variant", "accuracy", "measure"])
    if len(table):
        t = table[table["variant"].isin(variants)]
        long = t.melt(id_vars=["variant"], value_vars=["best", "last"], var_name="measure", value_name="accuracy")
        long["variant"] = long["variant"].map(lambda v: labels.get(v, v))
    if len(long):
        sns.barplot(data=long, x="variant", y="accuracy", hue="measure", order=names, hue_order=["best", "last"],
                    errorbar="sd", ax=ax, palette="Blues_d")
        for cont in ax.containers:
            ax.bar_label(cont, fmt="%.1f", fontsize=7, padding=2)
    else:
        ax.set_xticks(range(len(names)), names)
        ax.set_xlim(-0.5, len(names) - 0.5)
    present = set(long["variant"]) if len(long) else set()
    for i, name in enumerate(names):
        if name not in present:
            ax.text(i, 40, "no result\nyet", ha="center", va="bottom", fontsize=8, color="0.4")
    if teacher_accuracy is not None:
        ax.axhline(teacher_accuracy, ls="--", c="k", lw=1, label=f"teacher ({teacher_accuracy:.1f}%)")
    if num_classes:
        ax.axhline(100 / num_classes, ls=":", c="r", lw=1, label=f"chance ({100 / num_classes:.0f}%)")
    ax.set(ylim=(0, 100), ylabel="test accuracy (%)", xlabel="", title=title)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(fontsize=7, loc="upper left")
    return ax


def sweep_overview(spec_path: str | Path, include_fast: bool = False):
    """The finished runs of a sweep spec with their provenance, and what is missing.

    Args:
        spec_path: the sweep's JSON spec (:mod:`dfkd_lib.sweep`).
        include_fast: keep result files written in fast mode (``DFKD_FAST=1``; only smoke tests should).

    Returns:
        ``(table, histories, missing, ignored)``: a DataFrame with one row per usable run (``variant``,
        ``dataset``, ``seed``, ``best``, ``last``, ``teacher`` in %, ``wall_min``, ``fast_mode``, ``commit``,
        ``date_utc``, ``command``, ``machine``, ``teacher_sha256``), ``{variant: per-epoch history}`` (the first seed's), the
        variants without any usable run (in spec order), and the paths of fast-mode files that were ignored.
    """
    import pandas as pd


    spec = load_spec(spec_path)
    rows, histories, ignored = [], {}, []
    for run in planned_runs(spec_path):
        path = Path(run["out"])
        if not path.is_file():
            continue
        r = json.loads(path.read_text())
        prov = r.get("provenance", {})
        if prov.get("fast_mode") and not include_fast:
            ignored.append(str(path))
            continue
        rows.append({"variant": run["variant"], "dataset": run["dataset"], "seed": run["seed"],
                     "best": 100 * r["best_accuracy"], "last": 100 * r["last_accuracy"],
                     "teacher": 100 * r["teacher_accuracy"] if r.get("teacher_accuracy") is not None else np.nan,
                     "wall_min": r["wall_s"] / 60, "fast_mode": bool(prov.get("fast_mode")),
                     "commit": (prov.get("git_commit") or "?")[:10], "date_utc": prov.get("date_utc"),
                     "command": prov.get("command"), "machine": prov.get("machine"),
                     "teacher_sha256": (r.get("teacher") or {}).get("sha256")})
        histories.setdefault(run["variant"], r["history"])
    table = pd.DataFrame(rows, columns=["variant", "dataset", "seed", "best", "last", "teacher", "wall_min",
                                        "fast_mode", "commit", "date_utc", "command", "machine",
                                        "teacher_sha256"])
    present = set(table["variant"])
    missing = [v for v in spec["variants"] if v not in present]
    return table, histories, missing, ignored


def plot_accuracy(histories: dict[str, list[dict]], teacher_accuracy: float | None = None, ax=None,
                  title: str = "Student accuracy on the real test split"):
    """Test accuracy per epoch for one or more runs, with the teacher's as a dashed line; returns the axes."""
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    for label, hist in histories.items():
        ax.plot([h["epoch"] for h in hist], [100 * h["test_accuracy"] for h in hist], marker="o", ms=3,
                label=label)
    if teacher_accuracy is not None:
        ax.axhline(100 * teacher_accuracy, ls="--", c="k", lw=1, label=f"teacher ({100 * teacher_accuracy:.1f}%)")
    ax.set_xlabel("epoch")
    ax.set_ylabel("test accuracy (%)")
    ax.set_title(title)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=8)
    return ax


def plot_accuracy_over_time(histories, labels: Mapping[str, str], dataset: str, ax=None,
                            reference: float | None = None, reference_label: str = "reference"):
    """Test accuracy against wall-clock minutes, one line per variant (mean over seeds at each epoch).

    Args:
        histories: a :func:`~dfkd_lib.sweep.load_histories` frame (columns ``variant``, ``dataset``, ``seed``,
            ``epoch``, ``test_accuracy`` in %, ``wall_s`` since the run's start).
        labels: ``{variant: label}``, in legend order; variants without rows are skipped.
        dataset: which dataset's runs to draw.
        reference: a horizontal line (e.g. a reported accuracy, %), or ``None``.

    Returns:
        The axes (x: minutes, y: test accuracy in %).
    """
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    rows = histories[histories["dataset"] == dataset] if len(histories) else histories
    for variant, label in labels.items():
        h = rows[rows["variant"] == variant] if len(rows) else rows
        if not len(h):
            continue
        curve = h.groupby("epoch")[["wall_s", "test_accuracy"]].mean()
        ax.plot(curve["wall_s"] / 60, curve["test_accuracy"], marker="o", ms=3,
                label=f"{label} ({h['seed'].nunique()} seed{'s' if h['seed'].nunique() > 1 else ''})")
    if reference is not None:
        ax.axhline(reference, ls=":", c="k", lw=1, label=reference_label)
    ax.set(xlabel="wall-clock minutes (one thread)", ylabel="test accuracy (%)", title=dataset)
    ax.grid(alpha=0.3)
    if ax.get_legend_handles_labels()[0]:
        ax.legend(fontsize=7)
    return ax


def plot_confusion(preds: torch.Tensor, targets: torch.Tensor, class_names: Sequence[str], ax=None,
                   title: str = "Confusion matrix (rows: true class)"):
    """Row-normalised confusion matrix as a seaborn heat map; returns the axes."""
    import seaborn as sns
    from sklearn.metrics import confusion_matrix

    cm = confusion_matrix(targets.numpy(), preds.numpy(), labels=range(len(class_names)), normalize="true")
    if ax is None:
        _, ax = plt.subplots(figsize=(6, 5))
    sns.heatmap(cm, annot=True, fmt=".2f", cmap="Blues", xticklabels=class_names, yticklabels=class_names,
                ax=ax, cbar=False, annot_kws={"fontsize": 7})
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    return ax
