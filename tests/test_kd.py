import math

import pytest
import torch

from dfkd_lib.losses import kd_loss


def test_kd_matches_hand_computation():
    s = torch.tensor([[1.0, 0.0], [0.0, 0.0]])
    t = torch.tensor([[0.0, 1.0], [0.0, 0.0]])
    # sample 1: p_T = (1/(1+e), e/(1+e)), p_S = (e/(1+e), 1/(1+e)); KL = sum p_T log(p_T/p_S); sample 2: KL = 0
    a, b = 1 / (1 + math.e), math.e / (1 + math.e)
    kl1 = a * math.log(a / b) + b * math.log(b / a)
    assert kd_loss(s, t).item() == pytest.approx(kl1 / 2, rel=1e-6)
    assert kd_loss(s, t, reduction="sum").item() == pytest.approx(kl1, rel=1e-6)
    assert kd_loss(s, t, reduction="none").tolist() == pytest.approx([kl1, 0.0], abs=1e-6)


def test_kd_temperature_scaling_and_zero():
    s, t = torch.randn(5, 7), torch.randn(5, 7)
    # T^2 * KL at temperature T equals T^2 * KL(softmax(t/T) || softmax(s/T))
    T = 4.0
    pt, ps = torch.softmax(t / T, 1), torch.softmax(s / T, 1)
    ref = (pt * (pt.log() - ps.log())).sum(1).mean() * T * T
    assert kd_loss(s, t, T).item() == pytest.approx(ref.item(), rel=1e-5)
    assert kd_loss(t, t).item() == pytest.approx(0.0, abs=1e-7)


def test_kd_bad_input():
    with pytest.raises(ValueError, match="same classes"):
        kd_loss(torch.randn(2, 4), torch.randn(2, 10))
    with pytest.raises(ValueError, match="temperature"):
        kd_loss(torch.randn(2, 4), torch.randn(2, 4), temperature=0)
    with pytest.raises(ValueError, match="reduction"):
        kd_loss(torch.randn(2, 4), torch.randn(2, 4), reduction="mean")
