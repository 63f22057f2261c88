"""The feature convention every dfkd_lib classifier follows: ``model(x, return_features=True)`` returns
``(logits, Features)``."""
from __future__ import annotations

from typing import NamedTuple

import torch


class Features(NamedTuple):
    """Intermediate features of a classifier.

    Attributes:
        stages: output of each residual stage, ``(N, C_i, H_i, W_i)``, shallow to deep.
        penultimate: globally pooled feature fed to the classifier head, ``(N, D)``.
    """

    stages: list[torch.Tensor]
    penultimate: torch.Tensor
