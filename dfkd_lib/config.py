"""The schedule and optimisers of a distillation run: :class:`DistillConfig`, each default stated once here."""
from __future__ import annotations

from dataclasses import dataclass, replace


@dataclass
class DistillConfig:
    """Schedule and optimisers of a distillation run (defaults: DFKD-FGVC Sec. 5.1 / Algorithm 1).

    Attributes:
        epochs: number of epochs (200 in the paper).
        iterations_per_epoch: Algorithm 1 iterations per epoch (not given by the paper; 50 as in DFAD).
        batch_size: synthetic images per step (64).
        lr_generator, betas: Adam for the generator (1e-3, (0.5, 0.999)).
        lr_student, momentum, weight_decay: SGD for the student and the method's modules (1e-2, 0.9, 5e-4),
            cosine-annealed per epoch when ``cosine``.
        seed: seeds Python, numpy and torch at the start (and the synthesiser's noise).
        amp: ``"bf16"`` autocast for the forward passes, or ``None`` (fp32).
        generator_steps, student_steps: override the method's ``t`` and ``k`` when not ``None``.
        pool_size: images kept in a memory bank (:class:`~dfkd_lib.synthesizers.pool.ImagePool`) of past generator
            batches; 0 (default) keeps none and every student step draws a fresh batch, as Algorithm 1 does.
            With a bank, student steps sample from everything generated so far (CMI, Fast-DFKD), so a few
            generator steps feed many student steps.
        pool_fraction: share in [0, 1] of each student batch drawn from the bank (the rest fresh from the
            generator); used only when ``pool_size > 0``.
        channels_last: run teacher, student and generator in ``torch.channels_last`` memory format.
        augment: random crop (edge padding of 4 pixels) and horizontal flip of every student batch before the
            student step (:func:`~dfkd_lib.augment.augment_batch`, as CMI and Fast-DFKD augment their memory
            bank); off in Algorithm 1.
        generator_sampling: ``"eval"`` (default): the student's fresh images come from the generator in eval mode
            (its BN layers normalise by their running statistics, which sampling leaves unchanged); ``"train"``:
            in train mode (BN by each batch's own statistics, the running ones updated), as DFAD's public code
            samples. Generator steps always run in train mode.
        compile: ``torch.compile`` the networks the steps call (teacher, student, the generator, the method's
            modules; :func:`~dfkd_lib.engine.compile_networks`), in place. The first run of a configuration spends
            minutes compiling; later runs read torch's on-disk cache. A run may resume with another value.
    """

    epochs: int = 200
    iterations_per_epoch: int = 50
    batch_size: int = 64
    lr_generator: float = 1e-3
    betas: tuple[float, float] = (0.5, 0.999)
    lr_student: float = 1e-2
    momentum: float = 0.9
    weight_decay: float = 5e-4
    cosine: bool = True
    seed: int = 0
    amp: str | None = None
    generator_steps: int | None = None
    student_steps: int | None = None
    pool_size: int = 0
    pool_fraction: float = 1.0
    channels_last: bool = False
    augment: bool = False
    generator_sampling: str = "eval"
    compile: bool = False

    def __post_init__(self):
        if self.epochs < 1 or self.iterations_per_epoch < 1 or self.batch_size < 1:
            raise ValueError(f"epochs, iterations_per_epoch and batch_size must be >= 1, got {self.epochs}, "
                             f"{self.iterations_per_epoch}, {self.batch_size}")
        if self.pool_size < 0 or not 0.0 <= self.pool_fraction <= 1.0:
            raise ValueError(f"pool_size must be >= 0 and pool_fraction in [0, 1], got {self.pool_size}, "
                             f"{self.pool_fraction}")
        if self.generator_sampling not in ("eval", "train"):
            raise ValueError(f"generator_sampling must be 'eval' or 'train', got {self.generator_sampling!r}")
        for name in ("generator_steps", "student_steps"):
            v = getattr(self, name)
            if v is not None and v < 0:
                raise ValueError(f"{name} must be >= 0 or None, got {v}")

    @classmethod
    def book(cls, **changes) -> "DistillConfig":
        """The book's CPU schedule (:data:`BOOK_SCHEDULE`), with ``changes`` on top; the class defaults are the
        paper's schedule (200 epochs x 50 iterations of the method's ``t`` and ``k``)."""
        return replace(cls(**BOOK_SCHEDULE), **changes)


#: Fields that change how fast a run goes and its floating-point rounding, not the method: a result made with
#: other values still counts as current (:func:`dfkd_lib.sweep.is_current`), and the file records what was used.
EXECUTION_FIELDS = ("amp", "channels_last", "compile")

#: Fields a run may change when it resumes from its checkpoint (:func:`dfkd_lib.engine.distill`): how the
#: networks are run, not what the saved state means.
RESUMABLE_CHANGES = ("compile",)


#: The schedule the book's results and the ``distill`` command use: 10 epochs x 20 iterations of t = 5 generator
#: and k = 10 student steps of 64 images, student batches from a bank of the 640 most recent synthetic images
#: (1,000 generator and 2,000 student steps; DFKD-FGVC's Algorithm 1 with CMI's memory bank).
BOOK_SCHEDULE = dict(epochs=10, iterations_per_epoch=20, generator_steps=5, student_steps=10, pool_size=640)
