"""Label-free selection among data-free runs: agreement with the teacher on other runs' synthetic images."""
import pytest
import torch
from torch import nn

from dfkd_lib.selection import agreement, leave_one_out_agreement


def test_agreement_and_leave_one_out_by_hand():
    class Fixed(nn.Module):  # predicts the class given by the sign of the first pixel
        def __init__(self, flip=False):
            super().__init__()
            self.flip, self.nz, self.w = flip, 1, nn.Parameter(torch.zeros(1))

        def forward(self, x):
            if x.dim() == 2:  # as a generator: z -> images (N, 1, 1, 1)
                return x.view(-1, 1, 1, 1)
            s = x.flatten(1)[:, :1] * (-1 if self.flip else 1)
            return torch.cat([s, -s], 1)

    x = torch.tensor([1.0, -2.0, 3.0, -4.0]).view(4, 1, 1, 1)
    assert agreement(Fixed(), Fixed(), x) == 1.0 and agreement(Fixed(), Fixed(flip=True), x) == 0.0
    runs = {"same": (Fixed(), Fixed()), "flipped": (Fixed(flip=True), Fixed())}
    assert leave_one_out_agreement(Fixed(), runs, n=8) == {"same": 1.0, "flipped": 0.0}
    with pytest.raises(ValueError, match="two runs"):
        leave_one_out_agreement(Fixed(), {"one": runs["same"]})
