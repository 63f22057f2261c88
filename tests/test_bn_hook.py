"""dfkd_lib.hooks.BNStatistics (DeepInversion's R_feature) against hand computations and explicit loops."""
import math

import pytest
import torch
from torch import nn

from dfkd_lib.hooks import BNStatistics, NoBatchNormError, batchnorm_layers


def stats_by_loops(x):
    """Per-channel mean and biased variance over (N, H, W) with explicit loops."""
    n, c, h, w = x.shape
    means, variances = [], []
    for ch in range(c):
        vals = [float(x[b, ch, i, j]) for b in range(n) for i in range(h) for j in range(w)]
        mu = sum(vals) / len(vals)
        means.append(mu)
        variances.append(sum((v - mu) ** 2 for v in vals) / len(vals))
    return means, variances


def layer_loss(x, rm, rv):
    mu, var = stats_by_loops(x)
    return math.sqrt(sum((a - b) ** 2 for a, b in zip(mu, rm))) + \
        math.sqrt(sum((a - b) ** 2 for a, b in zip(var, rv)))


def test_single_channel_by_hand():
    bn = nn.BatchNorm2d(1).eval()  # running mean 0, running var 1
    x = torch.tensor([[[[1.0, 2.0], [3.0, 4.0]]]])
    with BNStatistics(bn) as stats:
        bn(x)
        # mean 2.5, biased variance 1.25: |2.5 - 0| + |1.25 - 1|
        assert stats.loss().item() == pytest.approx(2.75)
        assert stats.per_layer() == pytest.approx([2.75])


def two_layer_model():
    model = nn.Sequential(nn.BatchNorm2d(2), nn.BatchNorm2d(2)).eval()
    model[0].running_mean.copy_(torch.tensor([0.5, -1.0]))
    model[0].running_var.copy_(torch.tensor([2.0, 0.5]))
    model[1].running_mean.copy_(torch.tensor([0.1, 0.2]))
    model[1].running_var.copy_(torch.tensor([1.0, 3.0]))
    return model


def test_two_layers_against_loops_and_first_bn_multiplier():
    model = two_layer_model()
    torch.manual_seed(0)
    x = torch.randn(3, 2, 2, 3)
    l1 = layer_loss(x, [0.5, -1.0], [2.0, 0.5])
    with torch.no_grad():
        mid = model[0](x)  # eval BN: (x - running_mean) / sqrt(running_var + eps)
    l2 = layer_loss(mid, [0.1, 0.2], [1.0, 3.0])
    with BNStatistics(model) as stats:
        model(x)
        assert stats.per_layer() == pytest.approx([l1, l2], rel=1e-5)
        assert stats.loss().item() == pytest.approx(l1 + l2, rel=1e-5)
    with BNStatistics(model, first_bn_multiplier=10.0) as stats:
        model(x)
        assert stats.loss().item() == pytest.approx(10 * l1 + l2, rel=1e-5)
        assert stats.per_layer() == pytest.approx([l1, l2], rel=1e-5)  # per-layer values stay unweighted


def test_gradient_reaches_input_and_statistics_untouched():
    model = two_layer_model()
    before = {k: v.clone() for k, v in model.state_dict().items()}
    x = torch.randn(4, 2, 3, 3, requires_grad=True)
    with BNStatistics(model) as stats:
        model(x)
        stats.loss().backward()
    assert x.grad is not None and torch.isfinite(x.grad).all() and x.grad.abs().sum() > 0
    for k, v in model.state_dict().items():
        assert torch.equal(v, before[k]), k


def test_hooks_removed_and_loss_before_forward():
    model = two_layer_model()
    stats = BNStatistics(model)
    with stats:
        assert all(len(m._forward_hooks) == 1 for m in batchnorm_layers(model))
        with pytest.raises(RuntimeError, match="before a forward"):
            stats.loss()
    assert all(len(m._forward_hooks) == 0 for m in batchnorm_layers(model))


def test_no_batchnorm_is_a_clear_error():
    with pytest.raises(NoBatchNormError, match="no BatchNorm2d"):
        BNStatistics(nn.Sequential(nn.Conv2d(1, 2, 3), nn.ReLU()))
    assert issubclass(NoBatchNormError, ValueError)


def test_batch_statistics_normalises_by_the_batch_and_restores_everything():
    from dfkd_lib.hooks import batch_statistics

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.ReLU(), nn.Flatten())
    net[1].running_mean.fill_(5.0)  # running statistics far from any batch
    net.eval()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    x = torch.randn(16, 1, 6, 6)
    with torch.no_grad():
        eval_out = net(x)
        with batch_statistics(net) as m:
            assert m is net and net[1].training and not net[0].training
            batch_out = net(x)
    with torch.no_grad():
        ref = torch.relu(nn.functional.batch_norm(net[0](x), None, None, net[1].weight, net[1].bias, training=True))
    assert torch.allclose(batch_out, ref.flatten(1), atol=1e-5) and not torch.allclose(batch_out, eval_out)
    assert not net.training and not net[1].training and net[1].momentum == 0.1
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items())


def test_batch_statistics_needs_batchnorm():
    from dfkd_lib.hooks import NoBatchNormError, batch_statistics

    with pytest.raises(NoBatchNormError):
        batch_statistics(nn.Linear(2, 2))


def test_predict_with_batch_statistics_differs_and_leaves_the_model_as_it_was():
    from torch.utils.data import DataLoader, TensorDataset

    from dfkd_lib.teachers import predict

    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(1, 4, 3), nn.BatchNorm2d(4), nn.Flatten(), nn.Linear(64, 3))
    net[1].running_mean.fill_(3.0)
    net.train()
    before = {k: v.clone() for k, v in net.state_dict().items()}
    loader = DataLoader(TensorDataset(torch.randn(64, 1, 6, 6), torch.zeros(64, dtype=torch.long)), batch_size=32)
    with torch.no_grad():
        run, _ = predict(net, loader)
        bat, _ = predict(net, loader, bn_statistics="batch")
    assert run.shape == bat.shape == (64,) and not torch.equal(run, bat)
    assert net.training and all(torch.equal(before[k], v) for k, v in net.state_dict().items())
    with pytest.raises(ValueError, match="bn_statistics"):
        predict(net, loader, bn_statistics="train")
