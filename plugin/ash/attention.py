"""The ASH spatial-attention module.

The channel-wise mean and max of a feature map (2 channels) go through one
2→1 convolution (3×3 by default, as in the authors' code; CBAM uses 7×7),
padding k//2, no bias, and a sigmoid; the result multiplies every channel.
Small salient regions (lesions) can thus be weighted up against the large
areas that all grades share.
"""

from __future__ import annotations

import torch
from torch import nn


class SpatialAttention(nn.Module):
    """Returns the re-weighted feature map and the attention map (N, 1, H, W) in [0, 1]."""

    def __init__(self, kernel_size: int = 3) -> None:
        super().__init__()
        if kernel_size % 2 != 1:
            raise ValueError(f"kernel_size must be odd, got {kernel_size}")
        self.conv = nn.Conv2d(2, 1, kernel_size, padding=kernel_size // 2, bias=False)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = torch.cat([x.mean(dim=1, keepdim=True), x.amax(dim=1, keepdim=True)], dim=1)
        attention = torch.sigmoid(self.conv(pooled))
        return x * attention, attention
