"""SpaceshipNet's synthesiser: a pool of generator features and channel-wise feature exchange (CFE) between them
(Yu et al., "Data-Free Knowledge Distillation via Feature Exchange and Activation Region Constraint", CVPR 2023,
Sec. 3 and supplementary A.2)."""
from __future__ import annotations

import torch
from torch import nn

from .generator import GeneratorSynthesizer


def channel_exchange(a: torch.Tensor, b: torch.Tensor, fraction: float = 0.5,
                     generator: torch.Generator | None = None) -> torch.Tensor:
    """``a`` with a random ``fraction`` of its channels taken from ``b`` (the channels drawn anew for each image).

    Args:
        a, b: feature maps ``(N, C, H, W)`` of the same shape (``b[i]`` is image ``i``'s partner).
        fraction: share of the ``C`` channels exchanged, in ``[0, 1]`` (``round(fraction * C)`` channels).
        generator: CPU random generator for the channel choice (default: torch's global one).

    Returns:
        A new tensor ``(N, C, H, W)``.

    Raises:
        ValueError: shapes differ, or ``fraction`` outside ``[0, 1]``.
    """
    if a.shape != b.shape or a.dim() != 4:
        raise ValueError(f"channel_exchange needs two (N, C, H, W) maps of one shape, got {tuple(a.shape)}, "
                         f"{tuple(b.shape)}")
    if not 0 <= fraction <= 1:
        raise ValueError(f"fraction must lie in [0, 1], got {fraction}")
    n, c = a.shape[:2]
    swap = torch.rand(n, c, generator=generator).argsort(1) < round(fraction * c)   # (N, C), fraction*C True
    return torch.where(swap.to(a.device)[:, :, None, None], b, a)


class FeatureExchangeSynthesizer(GeneratorSynthesizer):
    """A generator trained on fixed noise batches, whose features are pooled and exchanged to make student batches.

    Generator steps: each iteration of the loop draws one noise batch ``z`` with balanced target classes ``y``
    (passed to the method as ``Step.labels``) and makes its ``t`` generator steps on it; after the last one the
    generator's features of ``z`` at ``levels`` (see :meth:`~dfkd_lib.models.generators.DCGANGenerator.levels`)
    join a FIFO feature pool. Student batches: a level is drawn, ``n`` pooled features of it, and with
    probability ``p`` each is exchanged (:func:`channel_exchange`, ``fraction`` of the channels) with another
    of the drawn ones before the rest of the generator (:meth:`~dfkd_lib.models.generators.DCGANGenerator.forward_from`,
    eval mode) turns them into images.

    Args:
        generator: a :class:`~dfkd_lib.models.generators.DCGANGenerator` (or subclass).
        num_classes: the teacher's classes ``K`` (the targets cycle through them).
        levels: the pooled levels (0: after the stem's BN, 1 and 2: after the first two blocks), SpaceshipNet's
            three places "before the first two upsampling layers and the last convolution".
        p: probability of an exchange per student batch image (0.7); fraction: channels exchanged (0.5).
        capacity: images whose features are kept.

    Raises:
        ValueError: ``p`` or ``fraction`` outside ``[0, 1]``, ``capacity < 1``, or no levels.
    """

    def __init__(self, generator: nn.Module, num_classes: int, levels: tuple[int, ...] = (0, 1, 2), p: float = 0.7,
                 fraction: float = 0.5, capacity: int = 4096):
        if not (0 <= p <= 1 and 0 <= fraction <= 1) or capacity < 1 or not levels:
            raise ValueError(f"need p and fraction in [0, 1], capacity >= 1 and some levels; got {p}, {fraction}, "
                             f"{capacity}, {levels}")
        super().__init__(generator)
        self.num_classes = int(num_classes)
        self.levels, self.p, self.fraction, self.capacity = tuple(levels), float(p), float(fraction), int(capacity)
        self.features: list[torch.Tensor] | None = None
        self._z = self._y = None
        self._count = 0
        self._rng = torch.Generator()

    def setup(self, config, device) -> None:
        super().setup(config, device)
        self._rng.manual_seed(config.seed + 2)

    def synthesis_step(self, teacher, student, method, config):
        t = config.generator_steps or method.generator_steps
        n = config.batch_size
        if self._count % t == 0:
            self._z = self.generator.sample_z(n, self.device)
            self._y = ((torch.arange(n) + self._count // t * n) % self.num_classes).to(self.device)
        _, logs = self.update(self._z, teacher, student, method, config, labels=self._y)
        self._count += 1
        if self._count % t == 0:
            self._store()
        return logs

    @torch.no_grad()
    def _store(self) -> None:
        self.generator.eval()
        levels = self.generator.levels(self._z)
        self.generator.train()
        new = [levels[i].detach() for i in self.levels]
        self.features = new if self.features is None else \
            [torch.cat([old, f])[-self.capacity:] for old, f in zip(self.features, new)]

    @torch.no_grad()
    def sample(self, n: int) -> torch.Tensor:
        if self.features is None:  # before the first stored batch (the engine's shape probe)
            return super().sample(n)
        j = int(torch.randint(len(self.levels), (1,), generator=self._rng))
        pool = self.features[j]
        h = pool[torch.randint(len(pool), (n,), generator=self._rng).to(pool.device)]
        partner = h[torch.randperm(n, generator=self._rng).to(h.device)]
        exchange = (torch.rand(n, generator=self._rng) < self.p).to(h.device)[:, None, None, None]
        h = torch.where(exchange, channel_exchange(h, partner, self.fraction, self._rng), h)
        with self.sampling_mode():
            return self.generator.forward_from(self.levels[j], h)

    def state_dict(self) -> dict:
        return {**super().state_dict(), "features": self.features, "count": self._count, "z": self._z,
                "y": self._y, "rng": self._rng.get_state()}

    def load_state_dict(self, state: dict) -> None:
        super().load_state_dict(state)
        self.features, self._count, self._z, self._y = state["features"], state["count"], state["z"], state["y"]
        self._rng.set_state(state["rng"])
