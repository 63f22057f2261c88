"""Plots and widgets of the BN-inversion chapter (tiny inputs; figures are checked for structure only)."""
import json

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import pandas as pd  # noqa: E402
import pytest  # noqa: E402
import torch  # noqa: E402

from dfkd_lib.data import dataset_spec  # noqa: E402
from dfkd_lib.models import resnet8  # noqa: E402
from dfkd_lib.synthesizers import deep_inversion  # noqa: E402
from dfkd_lib.viz import figure_png  # noqa: E402
from dfkd_lib.viz import (compact_png, confidence_titles, nested_stack, plot_bn_layers, plot_inversion_terms,  # noqa: E402
                                    plot_image_rows, plot_progression, plot_student_bars, sweep_overview,
                                    teacher_confidence)

SPEC = dataset_spec("fashion-mnist")


@pytest.fixture(scope="module")
def inversion():
    torch.manual_seed(0)
    teacher = resnet8(num_classes=10, in_channels=1, width=4)
    res = deep_inversion(teacher, torch.tensor([0, 1, 2, 3]), SPEC, steps=4, snapshot_every=2, progress=False)
    return teacher, res


def test_teacher_confidence_and_titles(inversion):
    teacher, res = inversion
    teacher.train()
    p, pred = teacher_confidence(teacher, res.images, res.targets, batch_size=3)
    assert teacher.training  # mode restored
    assert p.shape == (4,) and pred.shape == (4,) and bool(((p >= 0) & (p <= 1)).all())
    with torch.no_grad():
        teacher.eval()
        probs = torch.softmax(teacher(res.images), 1)
    assert torch.allclose(p, probs[torch.arange(4), res.targets], atol=1e-6)
    titles = confidence_titles(SPEC, torch.tensor([1, 2]), torch.tensor([0.5, 0.25]), torch.tensor([1, 0]))
    assert titles[0] == "Trouser 0.50" and titles[1].startswith("Pullove 0.25") and "-> T-shirt" in titles[1]


def test_bn_layers_and_terms_plots(inversion):
    _, res = inversion
    ax = plot_bn_layers(res.history, reference={"noise": [1.0] * 12})
    recorded = [h for h in res.history if "BN_layers" in h]
    assert len(ax.lines) == len(recorded) + 1 and ax.get_yscale() == "log"
    plt.close(ax.figure)
    with pytest.raises(ValueError, match="BN_layers"):
        plot_bn_layers([{"step": 0, "CE": 1.0}])
    ax = plot_inversion_terms(res.history)
    assert {l.get_label() for l in ax.lines} == {"CE", "BN", "TV", "l2"}  # no "compete" without a student
    plt.close(ax.figure)


def test_progression_and_setting_grid(inversion):
    _, res = inversion
    fig = plot_progression(res.snapshots, SPEC, index=[0, 2], col_titles=["a", "b"])
    assert len(fig.axes) == 3 * 2  # snapshots at steps 0, 2, 4
    plt.close(fig)
    fig = plot_progression(res.snapshots, SPEC, steps=[0, 4])
    assert len(fig.axes) == 2 * 4
    plt.close(fig)
    with pytest.raises(ValueError, match="snapshot steps"):
        plot_progression(res.snapshots, SPEC, steps=[3])
    rows = [("a", res.images, ["t0", "t1", "t2", "t3"]), ("b", res.images[:2], ["u0", "u1"])]
    fig = plot_image_rows(rows, SPEC, col_titles=list("wxyz"), suptitle="x")
    assert len(fig.axes) == 2 * 4 and fig.axes[0].get_title() == "t0" and fig.axes[4].get_xlabel() == "w"
    assert not fig.axes[7].axison  # the short row leaves its last cells empty
    plt.close(fig)
    fig = plot_image_rows([("a", res.images)], SPEC, col_titles=list("wxyz"))
    assert fig.axes[1].get_title() == "x"
    plt.close(fig)
    with pytest.raises(ValueError, match="no rows"):
        plot_image_rows([], SPEC)


def test_nested_stack_links_every_level():
    import ipywidgets as widgets

    fig, ax = plt.subplots(figsize=(1, 1))
    png = figure_png(fig)
    grid = [[[png, png, png] for _ in range(2)] for _ in range(2)]
    box = nested_stack(grid, [("a", [0, 1]), ("b", ["x", "y"]), ("class", ["c0", "c1", "c2"], "dropdown")],
                       start=[1, 0, 2])
    controls, outer = box.children
    a, b, cls = controls.children
    assert isinstance(a, widgets.SelectionSlider) and isinstance(cls, widgets.Dropdown)
    assert isinstance(outer, widgets.Stack) and outer.selected_index == 1 and len(outer.children) == 2
    inner = outer.children[1].children[0]
    assert inner.selected_index == 2 and isinstance(inner.children[2], widgets.Image)
    links = box.links
    assert len(links) == 1 + 2 + 4  # one Stack at level 0, two at level 1, four at level 2
    assert all(l.source[1] == "index" and l.target[1] == "selected_index" for l in links)
    assert [l.source[0] for l in links].count(cls) == 4 and {l.target[0] for l in links[3:]} == set(
        s for st in outer.children for s in st.children)
    with pytest.raises(ValueError, match="labels"):
        nested_stack(grid, [("a", [0, 1]), ("b", ["x"]), ("c", [0, 1, 2])])
    with pytest.raises(ValueError, match="kind"):
        nested_stack([png], [("a", [0], "knob")])
    plt.close("all")


def write_run(path, fast, acc, history=None):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"best_accuracy": acc, "last_accuracy": acc - 0.01, "teacher_accuracy": 0.9,
                                "wall_s": 120.0, "history": history or [{"epoch": 1, "test_accuracy": acc}],
                                "provenance": {"fast_mode": fast, "git_commit": "abcdef0123456789",
                                               "date_utc": "2026-12-01T00:00:00Z", "command": "cmd",
                                               "machine": "m"}}))


def test_sweep_overview_and_bars(tmp_path, monkeypatch):
    monkeypatch.delenv("DFKD_FAST", raising=False)  # real result names (fast mode reads *.fast.json)
    spec = tmp_path / "demo.json"
    spec.write_text(json.dumps({"name": "demo", "datasets": ["fashion-mnist"], "seeds": [0],
                                "variants": {"a": {}, "b": {}, "c": {}}}))
    write_run(tmp_path / "demo" / "a__fashion-mnist__s0.json", False, 0.5)
    write_run(tmp_path / "demo" / "b__fashion-mnist__s0.json", True, 0.3)
    table, hist, missing, ignored = sweep_overview(spec)
    assert table["variant"].tolist() == ["a"] and table["best"].iloc[0] == pytest.approx(50.0)
    assert table["commit"].iloc[0] == "abcdef0123" and table["wall_min"].iloc[0] == pytest.approx(2.0)
    assert missing == ["b", "c"] and len(ignored) == 1 and ignored[0].endswith("b__fashion-mnist__s0.json")
    assert list(hist) == ["a"]
    table_f, _, missing_f, ignored_f = sweep_overview(spec, include_fast=True)
    assert sorted(table_f["variant"]) == ["a", "b"] and missing_f == ["c"] and not ignored_f
    ax = plot_student_bars(table, ["a", "b", "c"], teacher_accuracy=90.0, num_classes=10, labels={"a": "A"})
    texts = [t.get_text() for t in ax.texts]
    assert texts.count("no result\nyet") == 2
    assert [t.get_text() for t in ax.get_xticklabels()] == ["A", "b", "c"]
    plt.close(ax.figure)
    empty = pd.DataFrame(columns=table.columns)
    ax = plot_student_bars(empty, ["a", "b"], teacher_accuracy=90.0)
    assert [t.get_text() for t in ax.texts].count("no result\nyet") == 2
    plt.close(ax.figure)
    (tmp_path / "demo").rename(tmp_path / "gone")
    table, _, missing, _ = sweep_overview(spec)
    assert table.empty and missing == ["a", "b", "c"]


def test_compact_png_is_grey_for_grey_figures(inversion):
    import io

    from PIL import Image

    from dfkd_lib.viz import show_images

    _, res = inversion
    grey = compact_png(show_images(res.images, SPEC, ncols=4, titles=list("abcd")))
    assert Image.open(io.BytesIO(grey)).mode == "L"
    fig, ax = plt.subplots(figsize=(1, 1))
    ax.plot([0, 1], [0, 1], c="r")
    assert Image.open(io.BytesIO(compact_png(fig))).mode == "RGB"
    assert not plt.get_fignums()  # both figures closed
