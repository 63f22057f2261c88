"""Image generators ``G(z)`` for adversarial data-free distillation.

:class:`DCGANGenerator` is the DCGAN body of DFKD-FGVC Table 6 (left) without attention: FC -> reshape ->
BN, then four up-sampling blocks ``[ConvTranspose2d(k=4, s=2, p=1) (spectral norm), BN, LeakyReLU(0.2),
attention]`` and a 3x3 conv to the image channels. Each block has an ``attention`` slot that is
``nn.Identity()`` here; :class:`~dfkd_lib.models.attention_generator.AttentionGenerator` fills it with a
spatial attention module (SAM).

Output space (``output=``): ``"sigmoid"`` (default) maps to [0, 1] pixels and then applies the dataset's
normalisation, so images land exactly in the teacher's input space; ``"tanh"`` is the paper's literal
choice (values in [-1, 1] fed to the teacher directly, although the teacher expects normalised input).
"""
from __future__ import annotations

from typing import Sequence

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class UpBlock(nn.Module):
    """One generator block: x2 transposed conv (optionally spectral-normalised), BN, LeakyReLU(0.2), attention.

    Input ``(N, c_in, H, W)``, output ``(N, c_out, 2H, 2W)``.
    """

    def __init__(self, c_in: int, c_out: int, spectral: bool = True, attention: nn.Module | None = None):
        super().__init__()
        deconv = nn.ConvTranspose2d(c_in, c_out, 4, 2, 1, bias=False)
        self.up = spectral_norm(deconv) if spectral else deconv
        self.bn = nn.BatchNorm2d(c_out)
        self.act = nn.LeakyReLU(0.2, inplace=True)
        self.attention = attention if attention is not None else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.attention(self.act(self.bn(self.up(x))))


class DCGANGenerator(nn.Module):
    """Unconditional DCGAN generator ``z (N, nz) -> images (N, C, S, S)`` (DFKD-FGVC Table 6 without SAM).

    Args:
        nz: latent size (the paper does not give it; 256 as in DFAD).
        out_channels: image channels ``C``.
        image_size: output side ``S``, a multiple of 16 (the first feature map is ``S/16``).
        channels: FC width then the outputs of the four blocks; default ``(512, 256, 128, 64, 64)`` as in
            Table 6; :meth:`scaled` divides them for CPU-sized runs.
        spectral: spectral normalisation on the up-sampling convolutions (Sec. 4.1).
        output: ``"sigmoid"`` (then ``mean``/``std`` normalise) or ``"tanh"``.
        mean, std: per-channel normalisation of the teacher's input space (used with ``"sigmoid"``).

    Raises:
        ValueError: ``image_size`` not a multiple of 16, a wrong number of channels, an unknown ``output``.
    """

    def __init__(self, nz: int = 256, out_channels: int = 3, image_size: int = 32,
                 channels: Sequence[int] = (512, 256, 128, 64, 64), spectral: bool = True,
                 output: str = "sigmoid", mean: Sequence[float] | None = None, std: Sequence[float] | None = None):
        super().__init__()
        if image_size % 16:
            raise ValueError(f"image_size must be a multiple of 16 (four x2 blocks), got {image_size}")
        if len(channels) != 5:
            raise ValueError(f"channels must give 5 widths (FC + four blocks), got {tuple(channels)}")
        if output not in ("sigmoid", "tanh"):
            raise ValueError(f"output must be 'sigmoid' or 'tanh', got {output!r}")
        self.nz, self.out_channels, self.image_size, self.output = nz, out_channels, image_size, output
        self.init_size = image_size // 16
        self.channels = tuple(channels)
        self.fc = nn.Linear(nz, channels[0] * self.init_size ** 2)
        self.bn0 = nn.BatchNorm2d(channels[0])
        self.blocks = nn.ModuleList(
            [UpBlock(channels[i], channels[i + 1], spectral, self.make_attention(i, channels[i + 1]))
             for i in range(4)])
        self.to_image = nn.Conv2d(channels[-1], out_channels, 3, 1, 1)
        mean = torch.tensor(mean if mean is not None else [0.0] * out_channels).view(1, -1, 1, 1)
        std = torch.tensor(std if std is not None else [1.0] * out_channels).view(1, -1, 1, 1)
        self.register_buffer("mean", mean, persistent=False)
        self.register_buffer("std", std, persistent=False)

    def make_attention(self, index: int, channels: int) -> nn.Module | None:
        """The module placed after block ``index`` (0..3); none in the plain generator."""
        return None

    @classmethod
    def for_dataset(cls, spec, nz: int = 256, width: int = 64, **kwargs) -> "DCGANGenerator":
        """A generator for a :class:`~dfkd_lib.data.DatasetSpec`; ``width`` scales Table 6's channels
        ``(8w, 4w, 2w, w, w)`` (``width=64`` is the paper's)."""
        w = width
        return cls(nz=nz, out_channels=spec.in_channels, image_size=spec.image_size,
                   channels=(8 * w, 4 * w, 2 * w, w, w), mean=spec.mean, std=spec.std, **kwargs)

    def features(self, z: torch.Tensor) -> list[torch.Tensor]:
        """Outputs of the four blocks, ``(N, channels[i+1], S/2**(3-i), ...)``, for visualisation."""
        return self.levels(z)[1:]

    def _stem(self, z: torch.Tensor) -> torch.Tensor:
        if z.dim() != 2 or z.shape[1] != self.nz:
            raise ValueError(f"expected z of shape (N, {self.nz}), got {tuple(z.shape)}")
        out = self.fc(z).view(z.shape[0], self.channels[0], self.init_size, self.init_size)
        return self.bn0(out)

    def head(self, h: torch.Tensor) -> torch.Tensor:
        """Last block's features -> images in the teacher's input space."""
        img = self.to_image(h)
        if self.output == "tanh":
            return torch.tanh(img)
        return (torch.sigmoid(img) - self.mean) / self.std

    def forward(self, z: torch.Tensor) -> torch.Tensor:
        return self.forward_from(0, self._stem(z))

    def levels(self, z: torch.Tensor) -> list[torch.Tensor]:
        """The generator's features by level: ``[stem, block 0, ..., block 3]``; level ``i`` is the input of
        block ``i`` (the stem is ``(N, channels[0], S/16, S/16)``), so ``forward_from(i, levels(z)[i]) == G(z)``."""
        out = [self._stem(z)]
        for block in self.blocks:
            out.append(block(out[-1]))
        return out

    def forward_from(self, level: int, h: torch.Tensor) -> torch.Tensor:
        """Images from the features ``h`` of ``level`` (0..4, see :meth:`levels`): blocks ``level..3``, then the
        head (SpaceshipNet's channel-wise feature exchange feeds exchanged features in here).

        Raises:
            ValueError: ``level`` outside 0..4.
        """
        if not 0 <= level <= len(self.blocks):
            raise ValueError(f"level must be in 0..{len(self.blocks)}, got {level}")
        for block in self.blocks[level:]:
            h = block(h)
        return self.head(h)

    def sample_z(self, n: int, device=None, generator: torch.Generator | None = None) -> torch.Tensor:
        """``z ~ N(0, I)`` of shape ``(n, nz)`` (Algorithm 1, lines 4 and 13)."""
        return torch.randn(n, self.nz, device=device, generator=generator)
