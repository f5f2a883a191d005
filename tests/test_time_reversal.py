"""Which models can tell a clip from the same clip played backwards.

A centred max pool, a whole-clip pool, global pooling, feature gates (global average) and
non-local attention (a weighted sum over all positions, with no position code) are
symmetric in time, so a network whose convs all have temporal extent 1 gives the same
logits for both orders: it cannot tell "left" from "right". A temporal conv, a temporal
shift (TSM: one fold looks ahead, another back), TAM's learned neighbour weights or
bLVNet's odd/even frame split breaks the symmetry.

The check itself is ``smallbig.reversal`` (also ``python run.py reversal --model NAME``):
random norms and TAM weights switch every path on, and float64 keeps rounding far below
the effect.
"""
import fnmatch

import pytest
import torch

from smallbig import build_model, list_models
from smallbig.reversal import (
    activate,
    check_model,
    check_reversal,
    is_invariant,
    logits_both_ways,
    random_clip,
    sees_time,
)

CLIP = torch.randn(2, 3, 8, 48, 48, generator=torch.Generator().manual_seed(1))
SMALL_CLIP = random_clip(batch=1, frames=8, size=32, seed=2)

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


def _logits_both_ways(name, clip=CLIP, **options):
    return logits_both_ways(activate(build_model(name, num_classes=5, **options)), clip)


@pytest.mark.parametrize("name", list_models())
def test_every_registered_model_is_invariant_to_reversal_unless_it_has_a_temporal_operator(name):
    forward, backward = _logits_both_ways(name, SMALL_CLIP, base_width=16)  # width does not change the symmetry
    if any(fnmatch.fnmatch(name, pattern) for pattern in SEES_THE_ARROW_OF_TIME):
        assert sees_time(forward, backward)
    else:
        assert is_invariant(forward, backward)


@pytest.mark.parametrize("name, options", [
    ("r23_3d", {}),
    ("smallbig_r23_full", {"temporal_stages": ["res3", "res4", "res5"]}),  # temporal shared conv
    ("r23_2d", {"temporal_module": "tam"}),                                # TAM alone
])
def test_temporal_operators_tell_a_clip_from_its_reversal(name, options):
    assert sees_time(*_logits_both_ways(name, **options))


def test_nonlocal_attention_alone_cannot_tell_the_arrow_of_time():
    """C2D + non-local: attention weighs positions by content, not by order."""
    forward, backward = _logits_both_ways("nonlocal_r23", temporal_stages=[])
    assert is_invariant(forward, backward)


def test_the_check_reports_rounding_for_an_invariant_model_and_a_real_difference_otherwise():
    invariant = check_reversal("smallbig_r23_full", base_width=16)
    order_aware = check_reversal("r23_3d", base_width=16)
    assert invariant.invariant and invariant.dtype == "float64"
    assert invariant.max_abs_diff < 1e-12 * (1 + invariant.max_abs_logit)  # rounding, relative to the logits
    assert not order_aware.invariant and order_aware.max_abs_diff > 1e-4 * order_aware.max_abs_logit
    assert invariant.input_shape == (1, 3, 8, 32, 32)


class _Deaf(torch.nn.Module):
    """Logits that do not depend on the clip at all."""

    def __init__(self):
        super().__init__()
        self.logits = torch.nn.Parameter(torch.randn(1, 5))

    def forward(self, clip):
        return self.logits.expand(clip.shape[0], -1) + 0 * clip.mean()


def test_a_model_that_ignores_its_input_is_reported_as_such_not_as_time_symmetric():
    check = check_model(_Deaf(), "deaf", SMALL_CLIP)
    assert check.ignores_input and not check.invariant
    assert "does not depend on its input" in check.summary()
    symmetric = check_reversal("smallbig_r23_full", base_width=16)
    assert symmetric.invariant and not symmetric.ignores_input


def test_the_printed_difference_is_the_same_run_to_run_and_leaves_the_callers_random_state_alone():
    torch.manual_seed(123)
    expected_next = torch.rand(1)
    torch.manual_seed(123)
    first = check_reversal("r23_3d", base_width=16)
    assert torch.equal(torch.rand(1), expected_next)  # the caller's generator was not advanced
    second = check_reversal("r23_3d", base_width=16)
    assert first.max_abs_diff == second.max_abs_diff > 0
    assert check_reversal("r23_3d", base_width=16, seed=1).max_abs_diff != first.max_abs_diff
