"""Total variation and l2 image priors against hand computations and explicit loops."""
import math

import pytest
import torch

from dfkd_lib.losses.priors import image_differences, l2_prior, total_variation


def tv_by_loops(x, norm):
    """Per-image four-direction TV with explicit Python loops over pixels."""
    n, c, h, w = x.shape
    out = []
    for b in range(n):
        directions = {"h": [], "v": [], "anti": [], "diag": []}
        for ch in range(c):
            for i in range(h):
                for j in range(w):
                    if j + 1 < w:
                        directions["h"].append(float(x[b, ch, i, j] - x[b, ch, i, j + 1]))
                    if i + 1 < h:
                        directions["v"].append(float(x[b, ch, i, j] - x[b, ch, i + 1, j]))
                    if i + 1 < h and j + 1 < w:
                        directions["anti"].append(float(x[b, ch, i + 1, j] - x[b, ch, i, j + 1]))
                        directions["diag"].append(float(x[b, ch, i, j] - x[b, ch, i + 1, j + 1]))
        if norm == "l2":
            out.append(sum(math.sqrt(sum(d * d for d in v)) for v in directions.values()))
        else:
            out.append(sum(sum(abs(d) for d in v) / len(v) for v in directions.values()))
    return out, directions


def test_tv_2x2_by_hand():
    x = torch.tensor([[[[1.0, 2.0], [3.0, 5.0]]]])
    # horizontal (-1, -2), vertical (-2, -3), anti-diagonal 3 - 2 = 1, diagonal 1 - 5 = -4
    assert total_variation(x).item() == pytest.approx(math.sqrt(5) + math.sqrt(13) + 1 + 4, rel=1e-6)
    assert total_variation(x, norm="l1").item() == pytest.approx(1.5 + 2.5 + 1 + 4, rel=1e-6)


def test_tv_checkerboard_has_no_diagonal_term():
    x = torch.tensor([[[[0.0, 1.0, 0.0], [1.0, 0.0, 1.0], [0.0, 1.0, 0.0]]]])
    assert total_variation(x).item() == pytest.approx(2 * math.sqrt(6), rel=1e-6)
    assert total_variation(x, norm="l1").item() == pytest.approx(2.0, rel=1e-6)


def test_tv_distinguishes_the_two_diagonals():
    i = torch.arange(4.0).view(4, 1)
    j = torch.arange(5.0).view(1, 5)
    h, v, anti, diag = image_differences((i + j).expand(4, 5).reshape(1, 1, 4, 5))
    assert torch.all(h == -1) and torch.all(v == -1) and torch.all(anti == 0) and torch.all(diag == -2)
    h, v, anti, diag = image_differences((i - j).expand(4, 5).reshape(1, 1, 4, 5))
    assert torch.all(h == 1) and torch.all(v == -1) and torch.all(anti == 2) and torch.all(diag == 0)
    assert h.shape == (1, 1, 4, 4) and v.shape == (1, 1, 3, 5) and anti.shape == diag.shape == (1, 1, 3, 4)


@pytest.mark.parametrize("norm", ["l2", "l1"])
def test_tv_matches_loops_and_reductions(norm):
    torch.manual_seed(0)
    x = torch.randn(3, 2, 4, 5)
    per_image, _ = tv_by_loops(x, norm)
    none = total_variation(x, reduction="none", norm=norm)
    assert none.shape == (3,)
    assert none.tolist() == pytest.approx(per_image, rel=1e-5)
    assert total_variation(x, "mean", norm).item() == pytest.approx(sum(per_image) / 3, rel=1e-5)
    assert total_variation(x, "sum", norm).item() == pytest.approx(sum(per_image), rel=1e-5)


def test_tv_global_is_nvlabs_batch_norm():
    torch.manual_seed(1)
    x = torch.randn(3, 2, 4, 5)
    expected = 0.0
    for d in image_differences(x):
        expected += math.sqrt(sum(float(v) ** 2 for v in d.flatten()))
    assert total_variation(x, "global").item() == pytest.approx(expected, rel=1e-5)
    # for equal per-image norms the global form is sqrt(N) times the mean form
    same = x[:1].repeat(4, 1, 1, 1)
    assert total_variation(same, "global").item() == pytest.approx(2 * total_variation(same).item(), rel=1e-5)
    # l1 "global" (mean over every element of the batch) equals the batch mean of the per-image means
    assert total_variation(x, "global", "l1").item() == pytest.approx(total_variation(x, "mean", "l1").item())


def test_tv_constant_image_is_zero_with_finite_gradient():
    x = torch.full((2, 1, 3, 3), 0.7, requires_grad=True)
    loss = total_variation(x)
    loss.backward()
    assert loss.item() == 0.0
    assert torch.isfinite(x.grad).all()


def test_l2_prior_by_hand():
    x = torch.tensor([[[[3.0, 4.0]]], [[[6.0, 8.0]]]])
    assert l2_prior(x, "none").tolist() == pytest.approx([5.0, 10.0])
    assert l2_prior(x).item() == pytest.approx(7.5)
    assert l2_prior(x, "sum").item() == pytest.approx(15.0)
    assert l2_prior(x, "global").item() == pytest.approx(math.sqrt(125.0))


def test_priors_reject_bad_input():
    with pytest.raises(ValueError, match="N, C, H, W"):
        total_variation(torch.zeros(3, 4))
    with pytest.raises(ValueError, match="reduction"):
        total_variation(torch.zeros(1, 1, 2, 2), reduction="batchmean")
    with pytest.raises(ValueError, match="norm"):
        total_variation(torch.zeros(1, 1, 2, 2), norm="l3")
    with pytest.raises(ValueError, match="N, C, H, W"):
        l2_prior(torch.zeros(4))
