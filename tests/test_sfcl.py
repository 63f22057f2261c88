"""L_SFCL (DFKD-FGVC Eq. 8-9) against a hand computation, closed forms and fixed values; the projector."""
import math

import pytest
import torch
from torch import nn

from dfkd_lib.losses.sfcl import Projector, sfcl_loss


def _hand_sfcl(z_t, z_s, tau):
    """Eq. 9 written out: anchor t_i, positive s_i, sum over all 2N vectors with the indicator 1[k != i]."""
    def unit(v):
        n = math.sqrt(sum(x * x for x in v))
        return [x / n for x in v]

    def sim(u, v):  # Eq. 8 on unit vectors
        return sum(a * b for a, b in zip(u, v))

    t = [unit(v) for v in z_t.tolist()]
    s = [unit(v) for v in z_s.tolist()]
    n = len(t)
    everything = t + s  # index k in [0, 2N): teacher k < N, student k - N otherwise
    total = 0.0
    for i in range(n):
        numerator = math.exp(sim(t[i], s[i]) / tau)
        denominator = 0.0
        for k in range(2 * n):
            indicator = 1.0 if k != i else 0.0  # excludes only the anchor itself
            denominator += indicator * math.exp(sim(t[i], everything[k]) / tau)
        total += -math.log(numerator / denominator)
    return total / n


@pytest.mark.parametrize("n,d", [(2, 3), (3, 4), (5, 2), (8, 16)])
@pytest.mark.parametrize("tau", [0.07, 0.5, 1.0])
def test_sfcl_matches_hand_loops(n, d, tau):
    g = torch.Generator().manual_seed(n * 100 + d)
    z_t, z_s = torch.randn(n, d, generator=g, dtype=torch.float64), torch.randn(n, d, generator=g, dtype=torch.float64)
    assert sfcl_loss(z_t, z_s, tau).item() == pytest.approx(_hand_sfcl(z_t, z_s, tau), rel=1e-9)


def test_sfcl_closed_forms():
    eye = torch.eye(2)
    # student == teacher, orthogonal rows: each anchor has e^{1/tau} over e^{1/tau} + 1 + 1
    assert sfcl_loss(eye, eye, 1.0).item() == pytest.approx(math.log(1 + 2 / math.e), rel=1e-6)
    assert sfcl_loss(eye, eye, 0.5).item() == pytest.approx(math.log(1 + 2 * math.exp(-2)), rel=1e-6)
    # student rows swapped: positive sim 0, the other student vector sim 1 -> log(2 + e)
    assert sfcl_loss(eye, eye.flip(0), 1.0).item() == pytest.approx(math.log(2 + math.e), rel=1e-6)
    # student = -teacher: positive sim -1 -> log(1 + 2 e^{1/tau})
    assert sfcl_loss(eye, -eye, 0.5).item() == pytest.approx(math.log(1 + 2 * math.exp(2)), rel=1e-6)


def test_sfcl_fixed_reference_values():
    # tau = 0.5 by hand: the three anchors give log(10.362/4.113) = 0.924, log(17.616/7.389) = 0.869 and
    # log(19.972/0.2431) = 4.409 (sims 1/sqrt(2) -> e^1.414 = 4.113, 1 -> e^2, -1/sqrt(2) -> e^-1.414); mean 2.067
    z_t = torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]])
    z_s = torch.tensor([[1.0, 1.0], [0.0, 1.0], [-1.0, 0.0]])
    assert sfcl_loss(z_t, z_s, 0.5).item() == pytest.approx(2.0670797850, abs=1e-6)
    assert sfcl_loss(z_t, z_s, 0.07).item() == pytest.approx(8.3850444419, abs=1e-5)
    assert sfcl_loss(torch.eye(2), torch.eye(2), 1.0).item() == pytest.approx(0.5514447139320511, abs=1e-6)


def test_sfcl_properties():
    torch.manual_seed(0)
    z_t, z_s = torch.randn(4, 6), torch.randn(4, 6)
    base = sfcl_loss(z_t, z_s)
    torch.testing.assert_close(sfcl_loss(3 * z_t, 0.5 * z_s), base)  # scale-free (Eq. 8)
    perm = torch.randperm(4)
    torch.testing.assert_close(sfcl_loss(z_t[perm], z_s[perm]), base)  # order of the batch is irrelevant
    assert sfcl_loss(z_t, z_t).item() < base.item()  # a perfect student scores better than a random one
    assert base.item() > 0


def test_sfcl_is_not_symmetric():
    z_t = torch.tensor([[1.0, 0.0], [1.0, 1.0], [0.0, 1.0]])
    z_s = torch.tensor([[1.0, 0.2], [0.0, 1.0], [-1.0, 0.5]])
    assert sfcl_loss(z_t, z_s).item() != pytest.approx(sfcl_loss(z_s, z_t).item())


def test_sfcl_gradients_reach_both_inputs():
    z_t, z_s = torch.randn(3, 4, requires_grad=True), torch.randn(3, 4, requires_grad=True)
    sfcl_loss(z_t, z_s).backward()
    assert z_t.grad.abs().sum() > 0 and z_s.grad.abs().sum() > 0


def test_sfcl_errors():
    with pytest.raises(ValueError, match="same shape"):
        sfcl_loss(torch.randn(3, 4), torch.randn(3, 5))
    with pytest.raises(ValueError, match="same shape"):
        sfcl_loss(torch.randn(3, 4), torch.randn(2, 4))
    with pytest.raises(ValueError, match="same shape"):
        sfcl_loss(torch.randn(4), torch.randn(4))
    with pytest.raises(ValueError, match="N >= 2"):
        sfcl_loss(torch.randn(1, 4), torch.randn(1, 4))
    for tau in (0.0, -0.1):
        with pytest.raises(ValueError, match="tau"):
            sfcl_loss(torch.randn(3, 4), torch.randn(3, 4), tau)


def test_projector():
    p = Projector(16, 12, 8)
    linears = [m for m in p.net if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(16, 12), (12, 12), (12, 8)]
    assert sum(isinstance(m, nn.ReLU) for m in p.net) == 2
    assert p(torch.randn(5, 16)).shape == (5, 8)
    with pytest.raises(ValueError):
        p(torch.randn(5, 15))
    with pytest.raises(ValueError):
        Projector(16, 0, 8)
