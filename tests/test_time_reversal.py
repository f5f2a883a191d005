"""Which models can tell a clip from the same clip played backwards.

A centred max pool, a whole-clip pool and global pooling are symmetric in time, so a
network whose convs all have temporal extent 1 gives the same logits for both orders:
it cannot tell "left" from "right". A temporal conv breaks the symmetry.
"""
import pytest
import torch

from smallbig import build_model
from torchvision_resnet import randomize_norms

CLIP = torch.randn(2, 3, 8, 48, 48, generator=torch.Generator().manual_seed(1))


def _logits_both_ways(name, **options):
    # Random norms switch the big views on; float64 keeps rounding far below the effect.
    model = randomize_norms(build_model(name, num_classes=5, **options)).eval().double()
    clip = CLIP.double()
    with torch.no_grad():
        return model(clip), model(clip.flip(2))


@pytest.mark.parametrize("name", [
    "r23_2d", "smallbig_r23_3x1x1", "smallbig_r23_3x3x3", "smallbig_r23_tx3x3", "smallbig_r23_typical",
    "smallbig_r23_full", "smallbig_r23_full_avgpool", "smallbig_r23_full_paper", "smallbig_r23_full_se",
])
def test_models_without_temporal_convs_cannot_tell_the_arrow_of_time(name):
    forward, backward = _logits_both_ways(name)
    assert torch.allclose(forward, backward, atol=1e-9, rtol=1e-9)


@pytest.mark.parametrize("name, options", [
    ("r23_3d", {}),
    ("smallbig_r23_full", {"temporal_stages": ["res3", "res4", "res5"]}),  # temporal shared conv
])
def test_temporal_convs_tell_a_clip_from_its_reversal(name, options):
    forward, backward = _logits_both_ways(name, **options)
    assert (forward - backward).abs().max() > 1e-2 * forward.abs().max()
