"""Attention modules of DFKD-FGVC (Shao et al., ICCV 2023) and the channel adapter of its distillation.

* :class:`SpatialAttention` -- the spatial-wise attention module (SAM) plugged into each generator block
  (Sec. 4.1, Eq. 4-6, Table 6 right).
* :class:`MixedHighOrderAttention` -- the mixed high-order attention (MHA) module applied to teacher and
  student features for MHAD (Sec. 4.2, Fig. 3), after Chen et al., "Mixed high-order attention network for
  person re-identification", ICCV 2019.
* :class:`Adapter` -- lifts a student's channels (or, for heterogeneous students, its penultimate width) to the
  teacher's (Sec. 4.2 and 5.2).

Every module here works on feature maps ``(N, C, H, W)`` of any spatial size (odd sizes and 1x1 included)
and keeps their shape, except :class:`Adapter`, which changes the channel count.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .mlp import two_hidden_layer_mlp

SOFTMAX_DIMS = ("spatial", "channel")


def _conv_bn_relu(conv: nn.Module, channels: int) -> nn.Sequential:
    return nn.Sequential(conv, nn.BatchNorm2d(channels), nn.ReLU(inplace=True))


class SpatialAttention(nn.Module):
    """Spatial-wise attention module (SAM) of the attention generator (DFKD-FGVC Eq. 4-6, Table 6 right).

    With ``c = max(1, C // r)`` (``C`` = ``channels``, ``r`` = ``reduction``)::

        A_d   = Conv1x1(F)                                     C  -> c       (Eq. 4)
        Psi   = ReLU(BN(Conv3x3(A_d)))                         c  -> 2c
        P, I  = MaxPool2x2(Psi)          (indices I kept; ceil mode, so odd and 1-pixel maps work)
        Gamma = ReLU(BN(Conv3x3(P)))                           2c -> 4c     (latent space)
        Psi'  = MaxUnpool(ReLU(BN(Deconv3x3(Gamma))), I)       4c -> 2c     (Eq. 5, back to H x W)
        A_s   = Conv1x1(ReLU(BN(Deconv3x3(Psi'))))             2c -> c -> C
        F~    = lambda * softmax(A_s) * F + F                                (Eq. 6)

    The deconvolutions are stride-1 3x3 transposed convolutions (padding 1, size-preserving); the max-unpool
    puts each decoded value back at the position the max-pool took it from (Sec. 5.5). Eq. 5 prints ``A_s``
    with ``C/r`` channels, which cannot multiply ``F``; Table 6 ends with a 1x1 ``C/r -> C`` conv, used here.

    Args:
        channels: ``C``, channels of the feature map (>= 1).
        reduction: ``r`` (>= 1); the paper does not give it, 8 by default. ``C // r`` is clamped to >= 1.
        lam: ``lambda`` >= 0, weight of the attended term (5e-2 in the paper, Table 4 sweeps 0..9e-2).
            ``lam = 0`` returns the input tensor itself (the module is skipped, as in Table 4's "no attention").
        softmax_dim: ``"spatial"`` (default, as the text says: a softmax over the ``H*W`` positions of each
            channel, so each channel's map sums to 1) or ``"channel"`` (over the ``C`` channels at each
            position, what a bare ``softmax`` call without ``dim`` gives on a 4-D tensor).

    Shapes: input ``(N, C, H, W)``, output ``(N, C, H, W)``, any ``H, W >= 1``. Note the scale: the spatial
    softmax has mean ``1/(H*W)`` and the channel softmax ``1/C``, so the attended term is roughly
    ``lambda/(H*W)`` (or ``lambda/C``) times ``F``: a gentle modulation, as the paper intends.

    Raises:
        ValueError: ``channels < 1``, ``reduction < 1``, ``lam < 0`` or an unknown ``softmax_dim``; a forward
            input that is not ``(N, channels, H, W)``.
    """

    def __init__(self, channels: int, reduction: int = 8, lam: float = 5e-2, softmax_dim: str = "spatial"):
        super().__init__()
        if channels < 1 or reduction < 1:
            raise ValueError(f"channels and reduction must be >= 1, got {channels}, {reduction}")
        if lam < 0:
            raise ValueError(f"lam (lambda) must be >= 0, got {lam}")
        if softmax_dim not in SOFTMAX_DIMS:
            raise ValueError(f"softmax_dim must be one of {SOFTMAX_DIMS}, got {softmax_dim!r}")
        self.channels, self.reduction, self.lam, self.softmax_dim = channels, reduction, float(lam), softmax_dim
        c = max(1, channels // reduction)
        self.hidden = c
        self.reduce = nn.Conv2d(channels, c, 1)                                         # A_d
        self.enc1 = _conv_bn_relu(nn.Conv2d(c, 2 * c, 3, 1, 1, bias=False), 2 * c)      # Psi
        self.pool = nn.MaxPool2d(2, 2, ceil_mode=True, return_indices=True)
        self.enc2 = _conv_bn_relu(nn.Conv2d(2 * c, 4 * c, 3, 1, 1, bias=False), 4 * c)  # Gamma
        self.dec1 = _conv_bn_relu(nn.ConvTranspose2d(4 * c, 2 * c, 3, 1, 1, bias=False), 2 * c)
        self.unpool = nn.MaxUnpool2d(2, 2)
        self.dec2 = _conv_bn_relu(nn.ConvTranspose2d(2 * c, c, 3, 1, 1, bias=False), c)
        self.expand = nn.Conv2d(c, channels, 1)                                         # A_s

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"SpatialAttention expected (N, {self.channels}, H, W), got {tuple(x.shape)}")

    def logits(self, x: torch.Tensor) -> torch.Tensor:
        """The pre-softmax map ``A_s`` (Eq. 5), ``(N, C, H, W)``, real-valued."""
        self._check(x)
        psi = self.enc1(self.reduce(x))
        pooled, indices = self.pool(psi)
        gamma = self.enc2(pooled)
        psi2 = self.unpool(self.dec1(gamma), indices, output_size=psi.shape[-2:])
        return self.expand(self.dec2(psi2))

    def attention_map(self, x: torch.Tensor) -> torch.Tensor:
        """``softmax(A_s)``, ``(N, C, H, W)``, values in (0, 1]: each channel's map sums to 1 over ``H*W``
        (``"spatial"``), or the ``C`` values at each position sum to 1 (``"channel"``). For visualisation."""
        a = self.logits(x)
        if self.softmax_dim == "channel":
            return torch.softmax(a, dim=1)
        return torch.softmax(a.flatten(2), dim=-1).view_as(a)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.lam == 0.0:
            self._check(x)
            return x
        return self.lam * self.attention_map(x) * x + x

    def extra_repr(self) -> str:
        return f"channels={self.channels}, r={self.reduction}, lam={self.lam}, softmax_dim={self.softmax_dim!r}"


class MixedHighOrderAttention(nn.Module):
    """Mixed high-order attention (MHA) of MHAD (DFKD-FGVC Sec. 4.2, Fig. 3; Chen et al. ICCV 2019).

    With ``c = max(1, C // 4)``, for each order ``j = 1..R``::

        z_j = ReLU( prod_{i=1..j} W_{j,i} x )          W_{j,i}: bias-free 1x1 conv C -> c   (N, c, H, W)
        a_j = Sigmoid( V_j z_j )                        V_j:     bias-free 1x1 conv c -> C   (N, C, H, W)
        A   = (a_1 + ... + a_R) / R                     values in (0, 1)
        out = A * x                                     (F~_m = A_m x F_m)

    The product of ``j`` linear maps is a ``j``-th order polynomial of the features at each position, which is
    what lets higher orders model interactions among parts; "mixed" ``R = 3`` uses orders 1, 2 and 3 together
    (Table 5). All convolutions are bias-free (our choice; the paper does not say).

    Parameter count: order ``j`` holds ``j`` convs of ``C*c`` weights plus one of ``c*C``, i.e.
    ``(j + 1) * C * c``; the module holds ``sum_{j=1..R} (j + 1) * C * c = C * c * R * (R + 3) / 2``
    (see :meth:`parameters_per_order`).

    Args:
        channels: ``C`` (>= 1).
        order: ``R`` (>= 1); 3 in the paper.

    Shapes: input and output ``(N, C, H, W)``, any ``H, W >= 1`` (a vector ``(N, D)`` can be passed as
    ``(N, D, 1, 1)``). The output has the sign of ``x`` and ``|out| <= |x|`` elementwise.

    Raises:
        ValueError: ``channels < 1`` or ``order < 1``; a forward input that is not ``(N, channels, H, W)``.
    """

    def __init__(self, channels: int, order: int = 3):
        super().__init__()
        if channels < 1 or order < 1:
            raise ValueError(f"channels and order must be >= 1, got {channels}, {order}")
        self.channels, self.order = channels, order
        self.hidden = c = max(1, channels // 4)
        self.factors = nn.ModuleList(
            nn.ModuleList(nn.Conv2d(channels, c, 1, bias=False) for _ in range(j)) for j in range(1, order + 1))
        self.heads = nn.ModuleList(nn.Conv2d(c, channels, 1, bias=False) for _ in range(order))

    @staticmethod
    def parameters_per_order(channels: int, order: int) -> int:
        """Closed formula ``(order + 1) * C * max(1, C // 4)`` for the weights of one order ``j = order``."""
        return (order + 1) * channels * max(1, channels // 4)

    def attention(self, x: torch.Tensor) -> torch.Tensor:
        """The mixed attention map ``A``, ``(N, C, H, W)``, values in (0, 1).

        Computed with two convolutions for all orders together (the ``R(R+1)/2`` factor convs stacked into
        one ``C -> c R(R+1)/2`` conv, the ``R`` heads as one grouped conv); the weights are those of
        :attr:`factors` and :attr:`heads`, so the result is the per-order formula above."""
        if x.dim() != 4 or x.shape[1] != self.channels:
            raise ValueError(f"MixedHighOrderAttention expected (N, {self.channels}, H, W), got {tuple(x.shape)}")
        w = torch.cat([conv.weight for convs in self.factors for conv in convs])
        parts = F.conv2d(x, w.to(x.dtype)).split(self.hidden, dim=1)
        zs, i = [], 0
        for j in range(1, self.order + 1):
            z = parts[i]
            for p in parts[i + 1:i + j]:
                z = z * p
            zs.append(F.relu(z))
            i += j
        v = torch.cat([head.weight for head in self.heads])
        a = torch.sigmoid(F.conv2d(torch.cat(zs, dim=1), v.to(x.dtype), groups=self.order))
        n, _, h, wd = a.shape
        return a.view(n, self.order, self.channels, h, wd).mean(dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.attention(x)

    def extra_repr(self) -> str:
        return f"channels={self.channels}, order={self.order}"


class Adapter(nn.Module):
    """Map student features to the teacher's width (DFKD-FGVC Sec. 4.2 "Adapter", Sec. 5.2).

    * ``penultimate=False`` (default): a bias-free 1x1 convolution, ``(N, C_s, H, W) -> (N, C_t, H, W)``,
      for stage feature maps.
    * ``penultimate=True``: an MLP with two hidden layers for pooled vectors of heterogeneous students
      (WRN, MobileNetV2), ``(N, D_s) -> (N, D_t)``: the MLP of SFCL's projector
      (:func:`~dfkd_lib.models.mlp.two_hidden_layer_mlp`), ``Linear(D_s, h) - ReLU - Linear(h, h) - ReLU -
      Linear(h, D_t)``, ``h = hidden`` (default ``D_t``).
      The output is linear (any real value); the input may also be ``(N, D_s, 1, 1)``, which is flattened.

    Args:
        in_channels: student channels / width ``C_s`` (>= 1).
        out_channels: teacher channels / width ``C_t`` (>= 1).
        penultimate: choose the MLP variant.
        hidden: hidden width of the MLP variant (ignored by the conv variant).

    Raises:
        ValueError: non-positive sizes; an input whose channel dimension is not ``in_channels``.
    """

    def __init__(self, in_channels: int, out_channels: int, penultimate: bool = False, hidden: int | None = None):
        super().__init__()
        if in_channels < 1 or out_channels < 1 or (hidden is not None and hidden < 1):
            raise ValueError(f"sizes must be >= 1, got in={in_channels}, out={out_channels}, hidden={hidden}")
        self.in_channels, self.out_channels, self.penultimate = in_channels, out_channels, penultimate
        if penultimate:
            self.net = two_hidden_layer_mlp(in_channels, hidden or out_channels, out_channels)
        else:
            self.net = nn.Conv2d(in_channels, out_channels, 1, bias=False)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.penultimate:
            if x.dim() == 4 and x.shape[2:] == (1, 1):
                x = x.flatten(1)
            if x.dim() != 2 or x.shape[1] != self.in_channels:
                raise ValueError(f"Adapter(penultimate) expected (N, {self.in_channels}), got {tuple(x.shape)}")
        elif x.dim() != 4 or x.shape[1] != self.in_channels:
            raise ValueError(f"Adapter expected (N, {self.in_channels}, H, W), got {tuple(x.shape)}")
        return self.net(x)

    def extra_repr(self) -> str:
        return f"{self.in_channels} -> {self.out_channels}, penultimate={self.penultimate}"


__all__ = ["SpatialAttention", "MixedHighOrderAttention", "Adapter", "SOFTMAX_DIMS"]
