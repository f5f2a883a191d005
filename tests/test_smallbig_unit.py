"""The SmallBig unit (Eq. 2) and its pools, one idea per test."""
import pytest
import torch
import torch.nn.functional as F

from smallbig import PoolSize, SmallBigUnit, ViewOptions, build_model, make_big_view_pool
from torchvision_resnet import randomize_norms


def _unit(**options) -> SmallBigUnit:
    unit = SmallBigUnit(8, 6, **options)
    return randomize_norms(unit).eval()


def test_pool_sizes_parse_and_reject_even_windows():
    assert PoolSize.parse("3x5x7") == PoolSize(3, 5, 7)
    assert PoolSize.parse("Tx3x3") == PoolSize(None, 3, 3)
    with pytest.raises(ValueError):
        PoolSize.parse("3x3")
    with pytest.raises(ValueError):
        PoolSize.parse("2x3x3")


def test_centred_pool_keeps_shape_and_takes_the_tube_maximum():
    x = torch.randn(2, 4, 5, 6, 7)
    pooled = make_big_view_pool("3x5x5")(x)
    assert pooled.shape == x.shape
    t, h, w = 2, 3, 3  # an interior position: the max over its 3x5x5 tube
    assert pooled[1, 2, t, h, w] == x[1, 2, t - 1:t + 2, h - 2:h + 3, w - 2:w + 3].max()


def test_average_pool_ignores_padding():
    x = torch.ones(1, 2, 3, 4, 4)
    assert torch.allclose(make_big_view_pool("3x3x3", "avg")(x), x)


@pytest.mark.parametrize("frames", [4, 8, 16])
def test_whole_clip_pool_equals_the_official_fixed_kernel_for_any_length(frames):
    x = torch.randn(2, 4, frames, 6, 6)
    official = F.max_pool3d(x, (frames, 3, 3), stride=1, padding=(0, 1, 1))
    assert torch.equal(make_big_view_pool("Tx3x3")(x), official)


def test_fresh_unit_computes_only_its_small_view():
    unit = SmallBigUnit(8, 6, big_view="3x3x3")
    unit.eval()
    x = torch.randn(2, 8, 4, 5, 5)
    assert torch.allclose(unit(x), unit.norm(unit.conv(x)), atol=1e-6)


@pytest.mark.parametrize("big_view, kernel, stride", [
    ("3x3x3", (1, 1, 1), (1, 1, 1)),
    ("3x3x3", (1, 3, 3), (1, 2, 2)),   # the stride-2 layer: pool at stride 1, shared conv strides
    ("Tx3x3", (1, 1, 1), (1, 1, 1)),   # whole-clip view: one frame, broadcast over time
    ("3x1x1", (3, 1, 1), (1, 1, 1)),   # a temporal shared conv
])
def test_shared_conv_is_one_weight_applied_to_both_views(big_view, kernel, stride):
    unit = _unit(big_view=big_view, kernel=kernel, stride=stride)
    x = torch.randn(2, 8, 4, 6, 6)
    big = unit.pool(x)
    if kernel[0] > 1:
        big = big.expand_as(x)
    expected = unit.norm(unit.conv(x)) + unit.big_norm(unit.conv(big))
    assert torch.allclose(unit(x), expected, atol=1e-5)


def test_separate_convs_double_the_unit_parameters():
    shared = SmallBigUnit(8, 6, big_view="3x3x3")
    separate = SmallBigUnit(8, 6, big_view="3x3x3", options=ViewOptions(share_conv=False))
    assert separate.big_conv.weight.numel() == shared.conv.weight.numel()
    conv_params = lambda u: sum(p.numel() for n, p in u.named_parameters() if "conv" in n)
    assert conv_params(separate) == 2 * conv_params(shared)


def test_sharing_halves_the_conv_parameters_of_the_smallbig_layers():
    shared = build_model("smallbig_r23_full")
    separate = build_model("smallbig_r23_full_noshare")
    smallbig_convs = [m.conv.weight.numel() for m in shared.modules() if getattr(m, "has_big_view", False)]
    assert len(smallbig_convs) == 3 * (2 + 3 + 1)  # three layers in each res3-res5 block
    extra = sum(p.numel() for p in separate.parameters()) - sum(p.numel() for p in shared.parameters())
    assert extra == sum(smallbig_convs)


@pytest.mark.parametrize("big_view", ["3x3x3", "Tx3x3"])
def test_single_bn_equals_one_conv_applied_to_the_summed_views(big_view):
    unit = _unit(big_view=big_view, options=ViewOptions(norm="single"))
    x = torch.randn(2, 8, 4, 6, 6)
    two_convs = unit.norm(unit.conv(x) + unit.conv(unit.pool(x)))
    one_conv = unit.norm(unit.conv(x + unit.pool(x)))
    assert torch.allclose(two_convs, one_conv, atol=1e-5)
    assert torch.allclose(unit(x), one_conv, atol=1e-6)
    assert unit.big_norm is None


def test_big_view_norm_can_start_nonzero():
    unit = SmallBigUnit(8, 6, big_view="3x3x3", options=ViewOptions(zero_init_big_view=False))
    assert torch.equal(unit.big_norm.weight, torch.ones(6))
