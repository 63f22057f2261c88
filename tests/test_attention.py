"""SAM, MHA, Adapter (dfkd_lib.models.attention) and the attention generator (DFKD-FGVC Sec. 4.1-4.2)."""
import copy

import pytest
import torch
from torch import nn

from dfkd_lib.data import DatasetSpec
from dfkd_lib.models.attention import Adapter, MixedHighOrderAttention, SpatialAttention
from dfkd_lib.models.attention_generator import AttentionGenerator
from dfkd_lib.models.generators import DCGANGenerator

SIZES = [(1, 1), (2, 2), (3, 3), (4, 4), (5, 7), (8, 8), (16, 16)]


# --------------------------------------------------------------------------------------------- SpatialAttention
@pytest.mark.parametrize("hw", SIZES)
@pytest.mark.parametrize("channels,reduction", [(1, 8), (3, 2), (16, 8), (64, 8)])
@pytest.mark.parametrize("softmax_dim", ["spatial", "channel"])
def test_sam_shapes_and_softmax(hw, channels, reduction, softmax_dim):
    torch.manual_seed(0)
    sam = SpatialAttention(channels, reduction, lam=5e-2, softmax_dim=softmax_dim)
    x = torch.randn(2, channels, *hw)
    assert sam(x).shape == x.shape
    assert sam.logits(x).shape == x.shape
    a = sam.attention_map(x)
    assert a.shape == x.shape
    assert (a > 0).all() and (a <= 1).all()
    sums = a.sum(dim=(2, 3)) if softmax_dim == "spatial" else a.sum(dim=1)
    torch.testing.assert_close(sums, torch.ones_like(sums))
    assert sam.hidden == max(1, channels // reduction)


def test_sam_layers_follow_table6():
    sam = SpatialAttention(64, reduction=8)
    c = 8
    assert (sam.reduce.in_channels, sam.reduce.out_channels, sam.reduce.kernel_size) == (64, c, (1, 1))
    assert (sam.enc1[0].in_channels, sam.enc1[0].out_channels, sam.enc1[0].kernel_size) == (c, 2 * c, (3, 3))
    assert (sam.enc2[0].in_channels, sam.enc2[0].out_channels) == (2 * c, 4 * c)
    assert isinstance(sam.dec1[0], nn.ConvTranspose2d) and sam.dec1[0].stride == (1, 1)
    assert (sam.dec1[0].in_channels, sam.dec1[0].out_channels) == (4 * c, 2 * c)
    assert (sam.dec2[0].in_channels, sam.dec2[0].out_channels) == (2 * c, c)
    assert (sam.expand.in_channels, sam.expand.out_channels, sam.expand.kernel_size) == (c, 64, (1, 1))


def test_sam_forward_is_eq6():
    torch.manual_seed(1)
    sam = SpatialAttention(8, 2, lam=0.3).eval()
    x = torch.randn(3, 8, 5, 6)
    a_s = sam.logits(x)
    soft = torch.softmax(a_s.reshape(3, 8, 30), dim=-1).reshape(3, 8, 5, 6)
    torch.testing.assert_close(sam(x), 0.3 * soft * x + x)
    sam_c = SpatialAttention(8, 2, lam=0.3, softmax_dim="channel").eval()
    sam_c.load_state_dict(sam.state_dict())
    torch.testing.assert_close(sam_c(x), 0.3 * torch.softmax(a_s, dim=1) * x + x)


def test_sam_unpool_restores_pool_positions():
    # the decoder puts values back only where the max-pool took them from: check the unpool step directly
    torch.manual_seed(2)
    sam = SpatialAttention(4, 1).eval()
    psi = sam.enc1(sam.reduce(torch.randn(1, 4, 5, 5)))
    pooled, idx = sam.pool(psi)
    assert pooled.shape[-2:] == (3, 3)  # ceil mode keeps the odd border
    up = sam.unpool(pooled, idx, output_size=psi.shape[-2:])
    assert up.shape == psi.shape
    nonzero = up != 0
    torch.testing.assert_close(up[nonzero], psi[nonzero])
    assert nonzero.sum() <= pooled.numel()


def test_sam_lam0_returns_input_exactly():
    sam = SpatialAttention(16, 8, lam=0.0)
    x = torch.randn(2, 16, 4, 4)
    assert torch.equal(sam(x), x)


def test_sam_backward_reaches_every_parameter():
    sam = SpatialAttention(8, 2, lam=5e-2)
    x = torch.randn(2, 8, 4, 4, requires_grad=True)
    sam(x).pow(2).sum().backward()
    for name, p in sam.named_parameters():
        assert p.grad is not None and torch.isfinite(p.grad).all(), name
        assert p.grad.abs().sum() > 0, name


def test_sam_errors():
    with pytest.raises(ValueError):
        SpatialAttention(0)
    with pytest.raises(ValueError):
        SpatialAttention(8, reduction=0)
    with pytest.raises(ValueError):
        SpatialAttention(8, lam=-1.0)
    with pytest.raises(ValueError):
        SpatialAttention(8, softmax_dim="pixel")
    with pytest.raises(ValueError):
        SpatialAttention(8)(torch.randn(2, 4, 4, 4))
    with pytest.raises(ValueError):
        SpatialAttention(8, lam=0)(torch.randn(2, 4, 4, 4))


# --------------------------------------------------------------------------------------------- MHA
@pytest.mark.parametrize("channels", [1, 3, 4, 8, 30, 64])
@pytest.mark.parametrize("order", [1, 2, 3, 4])
def test_mha_parameter_count_per_order(channels, order):
    c = max(1, channels // 4)
    n = lambda r: sum(p.numel() for p in MixedHighOrderAttention(channels, r).parameters())
    per_order = n(order) - (n(order - 1) if order > 1 else 0)
    assert per_order == (order + 1) * channels * c
    assert MixedHighOrderAttention.parameters_per_order(channels, order) == per_order
    assert n(order) == channels * c * order * (order + 3) // 2
    m = MixedHighOrderAttention(channels, order)
    assert [len(f) for f in m.factors] == list(range(1, order + 1))
    assert all(conv.bias is None for f in m.factors for conv in f) and all(h.bias is None for h in m.heads)


@pytest.mark.parametrize("shape", [(2, 8, 4, 4), (3, 16, 1, 1), (1, 5, 3, 7), (2, 64, 8, 8)])
@pytest.mark.parametrize("order", [1, 3])
def test_mha_shapes_and_range(shape, order):
    m = MixedHighOrderAttention(shape[1], order)
    x = torch.randn(*shape)
    a = m.attention(x)
    assert a.shape == x.shape and (a >= 0).all() and (a <= 1).all()
    y = m(x)
    assert y.shape == x.shape
    assert (y.abs() <= x.abs()).all() and ((y * x) >= 0).all()


def test_mha_matches_hand_computation():
    torch.manual_seed(3)
    m = MixedHighOrderAttention(8, 2)
    x = torch.randn(2, 8, 3, 3)
    w = lambda conv: conv.weight[:, :, 0, 0]  # (out, in)
    lin = lambda conv, v: torch.einsum("oi,nihw->nohw", w(conv), v)
    a1 = torch.sigmoid(lin(m.heads[0], torch.relu(lin(m.factors[0][0], x))))
    z2 = lin(m.factors[1][0], x) * lin(m.factors[1][1], x)
    a2 = torch.sigmoid(lin(m.heads[1], torch.relu(z2)))
    torch.testing.assert_close(m(x), x * (a1 + a2) / 2)


def test_mha_errors():
    with pytest.raises(ValueError):
        MixedHighOrderAttention(8, 0)
    with pytest.raises(ValueError):
        MixedHighOrderAttention(0, 3)
    with pytest.raises(ValueError):
        MixedHighOrderAttention(8, 3)(torch.randn(2, 4, 4, 4))


# --------------------------------------------------------------------------------------------- Adapter
@pytest.mark.parametrize("c_in,c_out,hw", [(4, 8, (4, 4)), (16, 16, (1, 1)), (3, 64, (5, 7))])
def test_adapter_conv(c_in, c_out, hw):
    a = Adapter(c_in, c_out)
    assert isinstance(a.net, nn.Conv2d) and a.net.kernel_size == (1, 1)
    x = torch.randn(2, c_in, *hw)
    y = a(x)
    assert y.shape == (2, c_out, *hw)
    torch.testing.assert_close(y, torch.einsum("oi,nihw->nohw", a.net.weight[:, :, 0, 0], x))


def test_adapter_penultimate_mlp():
    a = Adapter(12, 20, penultimate=True, hidden=7)
    linears = [m for m in a.net if isinstance(m, nn.Linear)]
    assert [(l.in_features, l.out_features) for l in linears] == [(12, 7), (7, 7), (7, 20)]
    x = torch.randn(3, 12)
    assert a(x).shape == (3, 20)
    torch.testing.assert_close(a(x[:, :, None, None]), a(x))
    assert Adapter(12, 20, penultimate=True).net[0].out_features == 20


def test_adapter_errors():
    with pytest.raises(ValueError):
        Adapter(4, 8)(torch.randn(2, 5, 4, 4))
    with pytest.raises(ValueError):
        Adapter(4, 8, penultimate=True)(torch.randn(2, 5))
    with pytest.raises(ValueError):
        Adapter(0, 8)


# --------------------------------------------------------------------------------------------- generator
def _pair(image_size=16, lam=0.0, **kw):
    torch.manual_seed(4)
    plain = DCGANGenerator(nz=8, out_channels=3, image_size=image_size, channels=(16, 16, 8, 8, 8), **kw)
    att = AttentionGenerator(nz=8, out_channels=3, image_size=image_size, channels=(16, 16, 8, 8, 8),
                             reduction=4, lam=lam, **kw)
    att.load_plain_state_dict(plain.state_dict())
    return plain, att


@pytest.mark.parametrize("mode", ["train", "eval"])
@pytest.mark.parametrize("output", ["sigmoid", "tanh"])
def test_attention_generator_lam0_equals_plain(mode, output):
    plain, att = _pair(lam=0.0, output=output)
    plain.train(mode == "train"), att.train(mode == "train")
    z = torch.randn(4, 8)
    for _ in range(2):  # twice: spectral norm's power iteration and BN state evolve identically
        assert torch.equal(att(z), plain(z))


def test_attention_generator_lam_positive_differs_and_set_lam():
    plain, att = _pair(lam=0.5)
    plain.eval(), att.eval()
    z = torch.randn(4, 8)
    assert not torch.allclose(att(z), plain(z))
    att.set_lam(0.0)
    assert torch.equal(att(z), plain(z))
    assert all(sam.lam == 0.0 for sam in att.attention_modules)


@pytest.mark.parametrize("image_size", [16, 32])
def test_attention_generator_shapes_and_maps(image_size):
    _, att = _pair(image_size=image_size, lam=5e-2)
    z = torch.randn(3, 8)
    assert att(z).shape == (3, 3, image_size, image_size)
    assert all(isinstance(b.attention, SpatialAttention) for b in att.blocks)
    maps = att.attention_maps(z)
    assert [m.shape for m in maps] == [(3, c, image_size // 2 ** (3 - i), image_size // 2 ** (3 - i))
                                       for i, c in enumerate((16, 8, 8, 8))]
    for m in maps:
        torch.testing.assert_close(m.sum(dim=(2, 3)), torch.ones(m.shape[:2]))
    means = att.attention_maps(z, channel_mean=True)
    assert all(m.shape[1] == 1 for m in means)
    assert not any(m.requires_grad for m in maps)


def test_attention_generator_maps_match_sam_on_block_features():
    _, att = _pair(lam=5e-2)
    att.eval()
    z = torch.randn(2, 8)
    feats = []
    out = att._stem(z)
    for block in att.blocks:
        h = block.act(block.bn(block.up(out)))
        feats.append(block.attention.attention_map(h))
        out = block.attention(h)
    for got, want in zip(att.attention_maps(z), feats):
        torch.testing.assert_close(got, want)


def test_attention_generator_for_dataset_and_bad_state_dict():
    spec = DatasetSpec("toy", 4, 1, 32, (0.5,), (0.25,))
    g = AttentionGenerator.for_dataset(spec, nz=8, width=4, lam=0.1, reduction=2)
    assert isinstance(g, AttentionGenerator) and g.channels == (32, 16, 8, 4, 4)
    assert g.attention_modules[0].lam == 0.1 and g.attention_modules[0].reduction == 2
    assert g(torch.randn(2, 8)).shape == (2, 1, 32, 32)
    other = DCGANGenerator(nz=8, out_channels=1, image_size=32, channels=(32, 16, 8, 4, 4), spectral=False)
    with pytest.raises(ValueError):
        g.load_plain_state_dict(other.state_dict())
    sd = copy.deepcopy(DCGANGenerator.for_dataset(spec, nz=8, width=4).state_dict())
    del sd["fc.weight"]
    with pytest.raises(ValueError):
        g.load_plain_state_dict(sd)
