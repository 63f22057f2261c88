"""Plot and widget helpers of the DFKD-FGVC chapters (dfkd_lib.viz.attention, dfkd_lib.viz.results, dfkd_lib.viz.widgets)."""

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from dfkd_lib.data import dataset_spec  # noqa: E402
from dfkd_lib.models.attention_generator import AttentionGenerator  # noqa: E402
from dfkd_lib.viz import figure_png  # noqa: E402
from dfkd_lib.viz import (NO_RESULT, ablation_table, format_mean_std, paired_table,  # noqa: E402
                                    plot_ablation, plot_block_maps, plot_similarity, similarity_stats, slider_stack_2d)


def _png(color):
    fig, ax = plt.subplots(figsize=(1, 1))
    ax.imshow([[color]], vmin=0, vmax=1)
    return figure_png(fig, dpi=20)


def test_plot_block_maps_with_generator_maps():
    spec = dataset_spec("fashion-mnist")
    g = AttentionGenerator.for_dataset(spec, nz=8, width=4).eval()
    z = torch.randn(5, 8)
    maps = g.attention_maps(z, channel_mean=True)
    with torch.no_grad():
        x = g(z)
    fig = plot_block_maps(x, maps, spec, n=4, titles=list("abcd"), suptitle="t")
    assert len(fig.axes) == 5 * 4  # image row + four block rows, four columns
    plt.close(fig)
    fig = plot_block_maps(x, maps, spec, blocks=[3], n=8, scale="image")  # n is clipped to the batch
    assert len(fig.axes) == 2 * 5
    lo, hi = fig.axes[5].images[0].get_clim()
    assert lo == pytest.approx(maps[3][0].min().item()) and hi == pytest.approx(maps[3][0].max().item())
    plt.close(fig)
    with pytest.raises(ValueError, match="scale"):
        plot_block_maps(x, maps, spec, scale="global")
    with pytest.raises(ValueError, match="out of range"):
        plot_block_maps(x, maps, spec, blocks=[4])
    with pytest.raises(ValueError, match="at least one"):
        plot_block_maps(x, [], spec)


def test_slider_stack_2d_links_both_sliders(monkeypatch):
    import ipywidgets as widgets

    calls = []
    real_jslink = widgets.jslink

    def recording_jslink(source, target):
        calls.append((source[0].model_id, source[1], target[0].model_id, target[1]))
        return real_jslink(source, target)

    monkeypatch.setattr(widgets, "jslink", recording_jslink)
    grid = [[_png(0.1 * (3 * i + j)) for j in range(3)] for i in range(2)]
    box = slider_stack_2d(grid, ("lambda", "block"), ["l0", "l1"], ["b0", "b1", "b2"])
    row_box, col_box, outer = box.children
    s_row, row_labels = row_box.children
    s_col, col_labels = col_box.children
    assert isinstance(outer, widgets.Stack) and len(outer.children) == 2
    assert all(len(inner.children) == 3 for inner in outer.children)
    # default view: first row, last column
    assert (s_row.value, s_col.value) == (0, 2)
    assert outer.selected_index == 0 and all(inner.selected_index == 2 for inner in outer.children)
    assert outer.children[0].children[2].value == grid[0][2]
    assert row_labels.selected_index == 0 and col_labels.selected_index == 2
    # the links live in the browser (jslink), so they work without a kernel
    links = {(src, tgt) for src, src_attr, tgt, tgt_attr in calls
             if src_attr == "value" and tgt_attr == "selected_index"}
    assert (s_row.model_id, outer.model_id) in links and (s_row.model_id, row_labels.model_id) in links
    assert all((s_col.model_id, inner.model_id) in links for inner in outer.children)
    assert (s_col.model_id, col_labels.model_id) in links


def test_slider_stack_2d_start_and_errors():
    grid = [[_png(0.2)], [_png(0.8)]]
    box = slider_stack_2d(grid, start=(1, 0))
    assert box.children[0].value == 1 and box.children[2].selected_index == 1
    with pytest.raises(ValueError, match="at least one"):
        slider_stack_2d([])
    with pytest.raises(ValueError, match="rectangular"):
        slider_stack_2d([[_png(0.1)], [_png(0.1), _png(0.2)]])
    with pytest.raises(ValueError, match="row labels"):
        slider_stack_2d(grid, row_labels=["a"])
    with pytest.raises(ValueError, match="start"):
        slider_stack_2d(grid, start=(2, 0))


def test_similarity_stats_and_plot():
    sim = torch.tensor([[1.0, 0.0, 0.2], [0.1, 0.5, 0.9], [0.0, 0.0, 0.7]])
    st = similarity_stats(sim)
    assert st["diagonal"] == pytest.approx((1.0 + 0.5 + 0.7) / 3)
    assert st["off_diagonal"] == pytest.approx((0.0 + 0.2 + 0.1 + 0.9 + 0.0 + 0.0) / 6)
    assert st["gap"] == pytest.approx(st["diagonal"] - st["off_diagonal"])
    assert st["top1"] == pytest.approx(2 / 3)  # row 1's maximum is off the diagonal
    ax = plot_similarity(sim, title="x")
    assert "diag 0.73" in ax.get_title()
    plt.close(ax.figure)
    with pytest.raises(ValueError):
        similarity_stats(torch.ones(2, 3))
    with pytest.raises(ValueError):
        similarity_stats(torch.ones(1, 1))


def test_format_mean_std():
    assert format_mean_std([]) == NO_RESULT
    assert format_mean_std([70.0]) == "70.00 (n=1)"
    assert format_mean_std([70.0, 72.0, 74.0]) == "72.00 ± 2.00 (n=3)"  # sample std (ddof=1)


def _results():
    rows = [("baseline", "a", s, 60.0 + s) for s in range(3)] + [("full", "a", s, 65.0 + 2 * s) for s in range(2)]
    return pd.DataFrame([{"variant": v, "dataset": d, "seed": s, "best": b, "last": b - 1, "teacher": 90.0}
                         for v, d, s, b in rows])


def test_ablation_table_marks_missing_variants_and_datasets():
    t = ablation_table(_results(), {"baseline": "Baseline", "full": "Both", "sfcl": "+SFCL"}, ["a", "b"])
    assert list(t.index) == ["Baseline", "Both", "+SFCL"] and list(t.columns) == ["a", "b"]
    assert t.loc["Baseline", "a"] == "61.00 ± 1.00 (n=3)"
    assert t.loc["Both", "a"].endswith("(n=2)")
    assert t.loc["+SFCL", "a"] == NO_RESULT and t.loc["Baseline", "b"] == NO_RESULT
    assert ablation_table(_results(), {"baseline": "B"}, ["a"], metric="last").loc["B", "a"].startswith("60.00")
    empty = ablation_table(pd.DataFrame(), {"baseline": "B"}, ["a"])
    assert empty.loc["B", "a"] == NO_RESULT


def test_plot_ablation_runs_with_partial_and_empty_results():
    axes = plot_ablation(_results(), {"baseline": "B", "full": "F", "sfcl": "S"}, ["a", "b"], reference="baseline")
    assert len(axes) == 2
    assert any(NO_RESULT in t.get_text() for t in axes[0].texts)  # sfcl has no result on "a"
    assert sum(NO_RESULT in t.get_text() for t in axes[1].texts) == 3
    plt.close(axes[0].figure)
    axes = plot_ablation(pd.DataFrame(), {"baseline": "B"}, ["a"])
    plt.close(axes[0].figure)


def test_paired_table_pairs_by_seed():
    # baseline seeds 0,1,2 = 60,61,62; full seeds 0,1 = 65,67: differences 5, 6 on the shared seeds only
    t = paired_table(_results(), {"baseline": "B", "full": "F", "sfcl": "S"}, "baseline", ["a", "b"])
    assert list(t.index) == ["F", "S"]
    assert t.loc["F", "a"] == "+5.50 ± 0.71 (higher in 2 of 2)"
    assert t.loc["S", "a"] == NO_RESULT and t.loc["F", "b"] == NO_RESULT
    one = _results()[lambda df: ~((df["variant"] == "full") & (df["seed"] == 1))]
    assert paired_table(one, {"full": "F"}, "baseline", ["a"]).loc["F", "a"] == "+5.00 (n=1)"
    assert paired_table(_results(), {"baseline": "B"}, "full", ["a"]).loc["B", "a"] == "-5.50 ± 0.71 (higher in 0 of 2)"
    assert paired_table(pd.DataFrame(), {"full": "F"}, "baseline", ["a"]).loc["F", "a"] == NO_RESULT
    with pytest.raises(ValueError, match="no column"):
        paired_table(_results(), {"full": "F"}, "baseline", ["a"], metric="top5")



def test_paired_verdict_is_one_rule_with_fixed_answers():
    from dfkd_lib.viz import paired_verdict

    assert paired_verdict([5.0, 6.0]) == "no verdict (2 paired seeds, 3 needed)"
    assert paired_verdict([5.0, 6.0, 7.0]) == "beats the baseline (+6.00 ± 1.00 points, higher on 3 of 3 seeds)"
    assert paired_verdict([0.5, 4.0, 0.1]).startswith("higher on average")  # mean 1.53 < sd 2.14
    assert paired_verdict([1.0, -3.0, 1.0]).startswith("does not beat the baseline (-0.33")
    assert paired_verdict([2, 3, 4], bold=True, reference="real KD").startswith("**beats** real KD")


def test_photo_grids_travel_as_jpeg_in_widgets():
    import matplotlib.pyplot as plt
    import numpy as np

    from dfkd_lib.viz import figure_jpeg, figure_png, image_format
    from dfkd_lib.viz import nested_stack

    def fig():
        f, ax = plt.subplots(figsize=(2, 2))
        ax.imshow(np.random.default_rng(0).random((32, 32, 3)))
        return f

    jpg, png = figure_jpeg(fig()), figure_png(fig())
    assert image_format(jpg) == "jpeg" and image_format(png) == "png"
    box = nested_stack([jpg, png], [("view", ["a", "b"], "dropdown")])
    assert [im.format for im in box.children[1].children] == ["jpeg", "png"]
