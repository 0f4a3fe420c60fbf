"""Networks, attention and losses."""

from __future__ import annotations

import pytest
import torch

from ash.attention import SpatialAttention
from ash.losses import ash_pairwise_loss, dpsh_loss
from ash.models import HashNet, NetConfig, codes


@pytest.mark.parametrize("backbone", ["ashnet", "ashresnet"])
@pytest.mark.parametrize("bits", [12, 24, 36, 48])
def test_shapes_for_each_backbone_and_length(backbone: str, bits: int) -> None:
    torch.manual_seed(0)
    net = HashNet(NetConfig(backbone=backbone, bits=bits, input_size=64)).eval()
    h, att = net(torch.rand(3, 3, 64, 64) * 255)
    assert h.shape == (3, bits)
    assert h.abs().max() <= 1
    assert att.shape[:2] == (3, 1)
    assert codes(h).dtype == torch.uint8


def test_efficientnet_lite0_with_attention_after_the_40_channel_stage() -> None:
    torch.manual_seed(0)
    net = HashNet(NetConfig(backbone="effnet", bits=24, input_size=96)).eval()
    h, att = net(torch.rand(2, 3, 96, 96) * 255)
    assert h.shape == (2, 24)
    assert att.shape == (2, 1, 12, 12)  # stride 8
    assert float(att.min()) >= 0 and float(att.max()) <= 1


def test_attention_map_is_in_unit_interval_and_multiplies() -> None:
    torch.manual_seed(1)
    sa = SpatialAttention(3)
    x = torch.randn(2, 8, 10, 10) * 5
    y, a = sa(x)
    assert a.shape == (2, 1, 10, 10)
    assert float(a.min()) >= 0 and float(a.max()) <= 1
    assert torch.allclose(y, x * a)
    assert sa.conv.weight.shape == (1, 2, 3, 3) and sa.conv.bias is None
    with pytest.raises(ValueError):
        SpatialAttention(4)


def test_ablation_has_no_attention_parameters() -> None:
    with_att = HashNet(NetConfig(input_size=64))
    without = HashNet(NetConfig(input_size=64, attention=False))
    n = sum(p.numel() for p in with_att.parameters()) - sum(p.numel() for p in without.parameters())
    assert n == 2 * 3 * 3
    _, att = without.eval()(torch.rand(1, 3, 64, 64))
    assert torch.all(att == 1)


def test_bad_configs() -> None:
    with pytest.raises(ValueError, match="backbone"):
        HashNet(NetConfig(backbone="vgg"))
    with pytest.raises(ValueError, match="bits"):
        HashNet(NetConfig(bits=0))


def test_ash_loss_zero_for_identical_similar_pairs() -> None:
    h = torch.tensor([[1.0, -1.0, 1.0], [1.0, -1.0, 1.0]])
    assert float(ash_pairwise_loss(h, torch.tensor([2, 2]))) == pytest.approx(0.0)


def test_ash_loss_margin_for_dissimilar_pairs() -> None:
    y = torch.tensor([0, 1])
    far = torch.tensor([[1.0, 1.0, 1.0, 1.0], [-1.0, -1.0, -1.0, -1.0]])  # d = 4 > margin 1
    near = torch.tensor([[1.0, 1.0, 1.0, 1.0], [1.0, 1.0, 1.0, 1.0]])  # d = 0
    assert float(ash_pairwise_loss(far, y)) == pytest.approx(0.0)
    assert float(ash_pairwise_loss(near, y)) == pytest.approx(0.5 * 1.0)
    # The authors' margin m·K (here 2) is still below d = 4 for K = 4 ...
    assert float(ash_pairwise_loss(far, y, form="authors")) == pytest.approx(0.0)
    # ... but for K = 16 the margin (8) exceeds any reachable d (≤ 4).
    far16 = torch.cat([torch.ones(1, 16), -torch.ones(1, 16)])
    assert float(ash_pairwise_loss(far16, y, form="authors")) == pytest.approx(0.5 * (8 - 4))
    with pytest.raises(ValueError):
        ash_pairwise_loss(far, y, form="other")


def test_dpsh_prefers_agreeing_similar_pairs() -> None:
    y = torch.tensor([0, 0])
    agree = torch.tensor([[1.0, 1.0, -1.0], [1.0, 1.0, -1.0]])
    disagree = torch.tensor([[1.0, 1.0, -1.0], [-1.0, -1.0, 1.0]])
    assert float(dpsh_loss(agree, y)) < float(dpsh_loss(disagree, y))
    assert float(dpsh_loss(agree, torch.tensor([0, 1]))) > float(dpsh_loss(disagree, torch.tensor([0, 1])))
