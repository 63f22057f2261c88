"""The MLP with two hidden layers that SFCL's projector and the heterogeneous students' adapter share."""
from __future__ import annotations

from torch import nn


def two_hidden_layer_mlp(in_dim: int, hidden_dim: int, out_dim: int) -> nn.Sequential:
    """``Linear(in_dim, hidden_dim) - ReLU - Linear(hidden_dim, hidden_dim) - ReLU - Linear(hidden_dim, out_dim)``,
    ``(N, in_dim) -> (N, out_dim)``, linear output (DFKD-FGVC Sec. 4.3's projector "with two hidden linear layers";
    Sec. 4.2's adapter for pooled vectors).

    Raises:
        ValueError: a size below 1.
    """
    if min(in_dim, hidden_dim, out_dim) < 1:
        raise ValueError(f"sizes must be >= 1, got {in_dim}, {hidden_dim}, {out_dim}")
    return nn.Sequential(nn.Linear(in_dim, hidden_dim), nn.ReLU(inplace=True), nn.Linear(hidden_dim, hidden_dim),
                         nn.ReLU(inplace=True), nn.Linear(hidden_dim, out_dim))
