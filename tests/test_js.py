"""Jensen-Shannon divergence and ADI's competition loss against hand computations."""
import math

import pytest
import torch

from dfkd_lib.losses.js import competition_loss, js_divergence

LOG2 = math.log(2)


def logits_of(probs):
    return torch.tensor(probs).log()


def test_js_by_hand():
    p, q = [0.5, 0.5], [0.9, 0.1]
    m = [0.7, 0.3]
    kl_pm = 0.5 * math.log(0.5 / 0.7) + 0.5 * math.log(0.5 / 0.3)
    kl_qm = 0.9 * math.log(0.9 / 0.7) + 0.1 * math.log(0.1 / 0.3)
    expected = 0.5 * kl_pm + 0.5 * kl_qm
    got = js_divergence(logits_of([p]), logits_of([q])).item()
    assert got == pytest.approx(expected, rel=1e-5)
    # the reverse direction of NVlabs' code gives another number: this is the textbook JS
    reverse = 0.5 * sum(mi * math.log(mi / pi) for mi, pi in zip(m, p)) + \
        0.5 * sum(mi * math.log(mi / qi) for mi, qi in zip(m, q))
    assert abs(got - reverse) > 1e-3


def test_js_batch_mean_and_reductions():
    lp = logits_of([[0.5, 0.5], [0.2, 0.8]])
    lq = logits_of([[0.9, 0.1], [0.2, 0.8]])
    per = js_divergence(lp, lq, reduction="none")
    assert per.shape == (2,)
    assert per[1].item() == pytest.approx(0.0, abs=1e-7)
    assert js_divergence(lp, lq).item() == pytest.approx(per.mean().item())
    assert js_divergence(lp, lq, reduction="sum").item() == pytest.approx(per.sum().item())


def test_js_symmetric_zero_and_bounded():
    torch.manual_seed(0)
    a, b = 5 * torch.randn(6, 10), 5 * torch.randn(6, 10)
    assert js_divergence(a, b).item() == pytest.approx(js_divergence(b, a).item(), rel=1e-6)
    assert js_divergence(a, a).item() == pytest.approx(0.0, abs=1e-7)
    assert js_divergence(a, a + 3.0).item() == pytest.approx(0.0, abs=1e-6)  # softmax is shift invariant
    big = 50 * torch.randn(64, 10)
    per = js_divergence(big, 50 * torch.randn(64, 10), reduction="none")
    assert torch.all(per >= 0) and torch.all(per <= LOG2)


def test_js_disjoint_one_hot_is_log2():
    lp = torch.tensor([[60.0, -60.0, -60.0]])
    lq = torch.tensor([[-60.0, 60.0, -60.0]])
    assert js_divergence(lp, lq).item() == pytest.approx(LOG2, abs=1e-6)


def test_js_temperature_and_gradient():
    torch.manual_seed(1)
    a, b = torch.randn(4, 5), torch.randn(4, 5)
    assert js_divergence(a, b, temperature=3.0).item() == pytest.approx(js_divergence(a / 3, b / 3).item(), rel=1e-6)
    assert js_divergence(a, b, temperature=100.0) < js_divergence(a, b)
    x = torch.tensor([[1e4, -1e4]], requires_grad=True)
    js_divergence(x, torch.tensor([[0.0, 1.0]])).backward()
    assert torch.isfinite(x.grad).all()


def test_competition_loss_is_one_minus_js_at_t3():
    torch.manual_seed(2)
    t, s = torch.randn(8, 10), torch.randn(8, 10)
    c = competition_loss(t, s)
    assert c.item() == pytest.approx(1 - js_divergence(t, s, temperature=3.0).item(), rel=1e-6)
    assert competition_loss(t, t).item() == pytest.approx(1.0)
    assert 1 - LOG2 <= c.item() <= 1


def test_js_errors():
    with pytest.raises(ValueError, match="same shape"):
        js_divergence(torch.zeros(2, 3), torch.zeros(2, 4))
    with pytest.raises(ValueError, match="temperature"):
        js_divergence(torch.zeros(2, 3), torch.zeros(2, 3), temperature=0)
    with pytest.raises(ValueError, match="reduction"):
        js_divergence(torch.zeros(2, 3), torch.zeros(2, 3), reduction="mean")
