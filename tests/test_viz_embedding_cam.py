"""Feature spaces (features, cached t-SNE, k-NN/silhouette) and Grad-CAM on tiny models: reference behaviour."""
import numpy as np
import pytest
import torch
from torch.utils.data import TensorDataset

from dfkd_lib.models import build_classifier
from dfkd_lib.viz.cam import cam_difference, grad_cam, stage_block
from dfkd_lib.viz.embedding import extract_features, feature_scores, plot_embedding, tsne


def _tiny(num_classes=3):
    torch.manual_seed(0)
    return build_classifier("resnet8", num_classes, 1, width=4)


def test_features_keep_the_model_as_it_was():
    model = _tiny().train()
    data = TensorDataset(torch.randn(10, 1, 16, 16), torch.arange(10) % 3)
    feats, labels = extract_features(model, data, limit=7)
    assert feats.shape == (7, 32) and labels.tolist() == [0, 1, 2, 0, 1, 2, 0]
    assert model.training and all(m.training for m in model.modules())
    assert extract_features(model, data, stage=1)[0].shape == (10, 8)
    with pytest.raises(ValueError, match="stage must be in 0..3"):
        extract_features(model, data, stage=4)


def test_tsne_is_cached_by_content(tmp_path):
    rng = np.random.default_rng(0)
    feats = rng.normal(size=(40, 5)).astype(np.float32)
    a = tsne(feats, perplexity=5, cache_dir=tmp_path)
    assert a.shape == (40, 2) and len(list(tmp_path.iterdir())) == 1
    assert np.array_equal(tsne(feats, perplexity=5, cache_dir=tmp_path), a)  # read back, not recomputed
    tsne(feats + 1, perplexity=5, cache_dir=tmp_path)  # other features (another checkpoint): a new entry
    assert len(list(tmp_path.iterdir())) == 2
    with pytest.raises(ValueError, match="perplexity must be in"):
        tsne(feats, perplexity=40, cache_dir=None)


def test_feature_scores_tell_separated_from_mixed_classes():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 20)
    centres = np.eye(3)[labels] * 10
    apart = feature_scores(centres + rng.normal(size=(60, 3)), labels)
    mixed = feature_scores(rng.normal(size=(60, 3)), labels)
    assert apart["knn_accuracy"] == 1.0 and apart["silhouette"] > 0.5
    assert mixed["knn_accuracy"] < 0.6 and abs(mixed["silhouette"]) < 0.2
    ax = plot_embedding(rng.normal(size=(60, 2)), labels, ["a", "b", "c"], title="t")
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c"]


def test_grad_cam_on_a_frozen_model_under_no_grad_leaves_it_untouched():
    model = _tiny().train().requires_grad_(False)
    x = torch.randn(4, 1, 32, 32)
    with torch.no_grad():
        maps = grad_cam(model, x, [0, 1, 2, 0], stage=2)
    assert maps.shape == (4, 32, 32) and maps.dtype == np.float32 and 0 <= maps.min() and maps.max() <= 1
    assert model.training and not any(p.requires_grad for p in model.parameters())
    assert all(not m._forward_hooks and not m._backward_hooks for m in model.modules())
    with pytest.raises(ValueError, match=r"class indices in \[0, 3\), got \[3\]"):
        grad_cam(model, x, [0, 1, 2, 3])
    with pytest.raises(ValueError, match="3 targets for 4 images"):
        grad_cam(model, x, [0, 1, 2])
    assert stage_block(model, 3) is model.layer4[-1]


def test_cam_difference_reference_values():
    a, b = np.zeros((1, 2, 2)), np.array([[[1.0, 0.0], [0.5, 0.0]]])
    d = cam_difference(a, b)
    assert d["mae"] == pytest.approx(255 * 1.5 / 4) and d["mse"] == pytest.approx(255 ** 2 * 1.25 / 4)
    with pytest.raises(ValueError, match="differ in shape"):
        cam_difference(a, np.zeros((2, 2, 2)))


def test_grad_cam_memory_does_not_grow_over_100_calls():
    def rss_mib():
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * 4096 / 2**20

    model = _tiny().requires_grad_(False)
    x = torch.randn(2, 1, 16, 16)
    for _ in range(10):  # warm-up: allocator pools, lazy imports
        grad_cam(model, x, [0, 1])
    before = rss_mib()
    for _ in range(100):
        grad_cam(model, x, [0, 1])
    assert rss_mib() - before < 20
    assert all(not m._forward_hooks and not m._backward_hooks for m in model.modules())


def test_highlight_keeps_layout_and_colours():
    rng = np.random.default_rng(0)
    labels = np.repeat(np.arange(3), 5)
    ax = plot_embedding(rng.normal(size=(15, 2)), labels, ["a", "b", "c"], highlight=[0, 2])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "c"]
    assert sum(len(c.get_offsets()) for c in ax.collections) == 15  # the other class is drawn, in grey


def test_accuracy_over_time_draws_one_mean_line_per_variant():
    import pandas as pd

    from dfkd_lib.viz import plot_accuracy_over_time

    hist = pd.DataFrame({"variant": ["a", "a", "a", "a", "b", "b"], "dataset": ["d"] * 6, "seed": [0, 0, 1, 1, 0, 0],
                         "epoch": [1, 2, 1, 2, 1, 2], "test_accuracy": [10.0, 20.0, 30.0, 40.0, 50.0, 60.0],
                         "wall_s": [60.0, 120.0, 180.0, 240.0, 60.0, 120.0]})
    ax = plot_accuracy_over_time(hist, {"a": "A", "b": "B", "c": "C (no runs)"}, "d", reference=55.0)
    lines = [l for l in ax.get_lines() if l.get_label() != "reference"]
    assert [l.get_label() for l in lines] == ["A (2 seeds)", "B (1 seed)"]
    assert list(lines[0].get_xdata()) == [2.0, 3.0] and list(lines[0].get_ydata()) == [20.0, 30.0]  # seed means
