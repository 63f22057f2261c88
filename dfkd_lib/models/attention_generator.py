"""The attention generator of DFKD-FGVC (Shao et al., ICCV 2023, Sec. 4.1, Fig. 2, Table 6).

:class:`AttentionGenerator` is :class:`~dfkd_lib.models.generators.DCGANGenerator` with a spatial attention
module (:class:`~dfkd_lib.models.attention.SpatialAttention`, SAM, Eq. 4-6) after each of its four blocks::

    z (N, nz) -> FC, reshape, BN -> [Deconv x2, SN, BN, LReLU, SAM] x 4 -> Conv3x3 -> Tanh/Sigmoid -> (N, C, S, S)

Everything else (output space, ``for_dataset``, ``sample_z``, the parameter names of the shared layers) is the
parent's, so a plain generator's ``state_dict`` loads into an attention generator
(:meth:`AttentionGenerator.load_plain_state_dict`); with ``lam = 0`` the two then give identical images
(Table 4, "lambda = 0: the generator does not exploit the attention mechanism").
"""
from __future__ import annotations

import torch
from torch import nn

from .attention import SpatialAttention
from .generators import DCGANGenerator


class AttentionGenerator(DCGANGenerator):
    """DCGAN generator with a SAM after each of the four blocks (DFKD-FGVC Table 6 left).

    Args:
        *args, **kwargs: those of :class:`~dfkd_lib.models.generators.DCGANGenerator` (``nz``,
            ``out_channels``, ``image_size``, ``channels``, ``spectral``, ``output``, ``mean``, ``std``).
        reduction: SAM's ``r`` (8; the paper does not give it).
        lam: SAM's ``lambda`` >= 0 (5e-2, Table 4).
        softmax_dim: ``"spatial"`` (default) or ``"channel"``, see
            :class:`~dfkd_lib.models.attention.SpatialAttention`.

    Shapes: ``z (N, nz) -> (N, out_channels, image_size, image_size)``; block ``i`` (0..3) works on
    ``(N, channels[i+1], image_size / 2**(3-i), ...)``, so a 32-pixel generator's first SAM sees 4x4 maps
    and a 16-pixel one 2x2 maps.

    Raises:
        ValueError: as the parent, and for invalid SAM options.
    """

    def __init__(self, *args, reduction: int = 8, lam: float = 5e-2, softmax_dim: str = "spatial", **kwargs):
        # make_attention is called from the parent's __init__, so the SAM options must exist before it runs.
        self.sam_options = {"reduction": reduction, "lam": lam, "softmax_dim": softmax_dim}
        super().__init__(*args, **kwargs)

    def make_attention(self, index: int, channels: int) -> nn.Module:
        """A :class:`~dfkd_lib.models.attention.SpatialAttention` over the ``channels`` of block ``index``."""
        return SpatialAttention(channels, **self.sam_options)

    @property
    def attention_modules(self) -> list[SpatialAttention]:
        """The four SAMs, block 0 (smallest maps) to block 3."""
        return [block.attention for block in self.blocks]

    def set_lam(self, lam: float) -> None:
        """Set ``lambda`` of every SAM (e.g. 0 to switch attention off, Table 4)."""
        if lam < 0:
            raise ValueError(f"lam (lambda) must be >= 0, got {lam}")
        for sam in self.attention_modules:
            sam.lam = float(lam)
        self.sam_options["lam"] = float(lam)

    def load_plain_state_dict(self, state_dict: dict) -> None:
        """Load a :class:`DCGANGenerator` ``state_dict`` (same ``nz``, sizes and ``spectral``) into the shared
        layers, leaving the SAMs as they are.

        Raises:
            ValueError: the state dict has keys this generator does not know (another architecture), or lacks
                a key of a shared (non-SAM) layer. Shape mismatches raise ``RuntimeError`` from PyTorch.
        """
        result = self.load_state_dict(state_dict, strict=False)
        missing = [k for k in result.missing_keys if ".attention." not in k]
        if result.unexpected_keys or missing:
            raise ValueError(f"not a compatible DCGANGenerator state dict: unexpected keys "
                             f"{result.unexpected_keys}, missing shared keys {missing}")

    def attention_maps(self, z: torch.Tensor, channel_mean: bool = False) -> list[torch.Tensor]:
        """Each block's ``softmax(A_s)`` for the batch ``z (N, nz)``, for visualisation.

        Returns four tensors, block 0 to 3, of shape ``(N, channels[i+1], H_i, W_i)`` (or ``(N, 1, H_i, W_i)``
        with ``channel_mean``) with ``H_i = image_size / 2**(3-i)``, values in (0, 1]. The maps are computed
        even when ``lam = 0`` (they are then not applied). Runs without gradients; call ``.eval()`` first to
        use BN running statistics (in train mode this forward updates them like any other).
        """
        inputs: list[torch.Tensor] = []
        hooks = [sam.register_forward_pre_hook(lambda module, args: inputs.append(args[0]))
                 for sam in self.attention_modules]
        try:
            with torch.no_grad():
                self(z)
                maps = [sam.attention_map(x) for sam, x in zip(self.attention_modules, inputs)]
        finally:
            for h in hooks:
                h.remove()
        if channel_mean:
            maps = [a.mean(dim=1, keepdim=True) for a in maps]
        return maps


__all__ = ["AttentionGenerator"]
