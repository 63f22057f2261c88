"""Choosing among data-free runs without real data: how often each student agrees with the teacher on synthetic
images that it was not trained on.

The test split must not pick a hyper-parameter (a weight such as SFCL's gamma), and a data-free setting has no
real validation split. What every run does leave is its generator. :func:`leave_one_out_agreement` shows each run's
student the images of the *other* runs' generators, which it never trained on, and counts how often its class is
the teacher's: a label-free score that can rank runs. Whether it ranks them as the test split does is a question
for the data (the birds chapter measures it).
"""
from __future__ import annotations

import torch
from torch import nn

from .utils import eval_mode


@torch.no_grad()
def predictions(model: nn.Module, images: torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Predicted classes ``(N,)`` of ``model`` (in eval mode, its mode given back) for ``images`` ``(N, C, H, W)``.

    Raises:
        ValueError: ``images`` is empty or not 4-D.
    """
    if images.dim() != 4 or len(images) == 0:
        raise ValueError(f"images must be a non-empty (N, C, H, W) batch, got shape {tuple(images.shape)}")
    with eval_mode(model):
        return torch.cat([model(x).argmax(1) for x in images.split(batch_size)])


def agreement(teacher: nn.Module, student: nn.Module, images: torch.Tensor, batch_size: int = 256) -> float:
    """Fraction of ``images`` ``(N, C, H, W)`` (in the teacher's input space) on which the student's predicted
    class is the teacher's, in ``[0, 1]`` (see :func:`predictions`)."""
    return (predictions(teacher, images, batch_size) == predictions(student, images, batch_size)).float().mean().item()


@torch.no_grad()
def generator_images(generator: nn.Module, n: int, seed: int = 0) -> torch.Tensor:
    """``n`` images of ``generator`` (eval mode, its mode given back) from ``z`` drawn with ``seed`` on the CPU."""
    z = torch.randn(n, generator.nz, generator=torch.Generator().manual_seed(seed))
    with eval_mode(generator):
        return generator(z.to(next(generator.parameters()).device))


def leave_one_out_agreement(teacher: nn.Module, runs: dict[str, tuple[nn.Module, nn.Module]], n: int = 256,
                            seed: int = 0) -> dict[str, float]:
    """For each run, the :func:`agreement` of its student on ``n`` images of every *other* run's generator.

    Args:
        teacher: the teacher all runs distilled.
        runs: ``{name: (student, generator)}``, at least two runs.
        n: images per generator; seed: their noise seed (the same for every generator).

    Returns:
        ``{name: agreement in [0, 1]}``.

    Raises:
        ValueError: fewer than two runs.
    """
    if len(runs) < 2:
        raise ValueError(f"leave-one-out needs at least two runs, got {len(runs)}")
    images = {name: generator_images(g, n, seed) for name, (_, g) in runs.items()}
    labels = {name: predictions(teacher, x) for name, x in images.items()}   # the teacher's, once per generator
    out = {}
    for name, (student, _) in runs.items():
        others = [o for o in runs if o != name]
        same = sum(int((predictions(student, images[o]) == labels[o]).sum()) for o in others)
        out[name] = same / (n * len(others))
    return out
