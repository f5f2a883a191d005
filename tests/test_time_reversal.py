"""Which models can tell a clip from the same clip played backwards.

A centred max pool, a whole-clip pool, global pooling, feature gates (global average) and
non-local attention (a weighted sum over all positions, with no position code) are
symmetric in time, so a network whose convs all have temporal extent 1 gives the same
logits for both orders: it cannot tell "left" from "right". A temporal conv, a temporal
shift (TSM: one fold looks ahead, another back), TAM's learned neighbour weights or
bLVNet's odd/even frame split breaks the symmetry.
"""
import fnmatch

import pytest
import torch

from smallbig import TemporalAggregation, build_model, list_models
from torchvision_resnet import randomize_norms

CLIP = torch.randn(2, 3, 8, 48, 48, generator=torch.Generator().manual_seed(1))
SMALL_CLIP = torch.randn(1, 3, 8, 32, 32, generator=torch.Generator().manual_seed(2))

# The specification: every registered model matching one of these can tell the arrow of
# time; every other registered model (2D ResNets, SmallBig as released) is exactly invariant.
SEES_THE_ARROW_OF_TIME = (
    "r*_3d",                       # 3x1x1 first convs
    "slowonly_r50*",               # 3x1x1 first convs in res4-res5
    "smallbig_r50_full_temporal",  # a temporal shared conv
    "nonlocal_r*",                 # on the 3D 3x1x1 backbone (the attention itself is symmetric)
    "tsm_r*",                      # shifts one fold back and one forward
    "blvnet_tam_r*",               # odd frames big, even frames little; TAM's weights
    "s3d", "s3dg",                 # separable k x 1 x 1 temporal convs
)


def _activate(model):
    """Random norms switch the big views and non-local blocks on; TAM gets weights of order one.

    Fresh TAM weights are small (Kaiming, as released): behind eval-mode norms with random
    statistics the clip's signal would fade to nothing and every model would look invariant.
    """
    randomize_norms(model)
    g = torch.Generator().manual_seed(3)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, TemporalAggregation):
                m.conv.weight.copy_(torch.rand(m.conv.weight.shape, generator=g) + 0.2)
    return model


def _logits_both_ways(name, clip=CLIP, **options):
    # float64 keeps rounding far below the effect.
    model = _activate(build_model(name, num_classes=5, **options)).eval().double()
    clip = clip.double()
    with torch.no_grad():
        return model(clip), model(clip.flip(2))


def _sees_time(forward, backward):
    # Invariant models agree to ~1e-15 in float64; random deep nets on tiny clips differ by 1e-3..1e-1.
    return (forward - backward).abs().max() > 1e-4 * forward.abs().max()


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_is_invariant_to_reversal_unless_it_has_a_temporal_operator(name):
    forward, backward = _logits_both_ways(name, SMALL_CLIP, base_width=16)  # width does not change the symmetry
    if any(fnmatch.fnmatch(name, pattern) for pattern in SEES_THE_ARROW_OF_TIME):
        assert _sees_time(forward, backward)
    else:
        assert torch.allclose(forward, backward, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("name, options", [
    ("r23_3d", {}),
    ("smallbig_r23_full", {"temporal_stages": ["res3", "res4", "res5"]}),  # temporal shared conv
    ("r23_2d", {"temporal_module": "tam"}),                                # TAM alone
])
def test_temporal_operators_tell_a_clip_from_its_reversal(name, options):
    assert _sees_time(*_logits_both_ways(name, **options))


def test_nonlocal_attention_alone_cannot_tell_the_arrow_of_time():
    """C2D + non-local: attention weighs positions by content, not by order."""
    forward, backward = _logits_both_ways("nonlocal_r23", temporal_stages=[])
    assert torch.allclose(forward, backward, atol=1e-9, rtol=1e-9)
