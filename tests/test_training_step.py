"""The big views start silent and come alive after one optimizer step."""
import pytest
import torch

from smallbig import build_model


@pytest.mark.parametrize("name", ["smallbig_r23_3x3x3", "smallbig_r23_full"])
def test_one_step_lets_the_big_views_change_the_output(name):
    model = build_model(name, num_classes=4)
    clip, labels = torch.randn(4, 3, 4, 48, 48), torch.tensor([0, 1, 2, 3])
    units = [m for m in model.modules() if getattr(m, "has_big_view", False)]
    assert units and all(u.big_norm.weight.abs().sum() == 0 for u in units)

    optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    torch.nn.functional.cross_entropy(model(clip), labels).backward()
    for unit in units:  # the small view trains the shared conv, the big view its own norm
        assert unit.conv.weight.grad.abs().sum() > 0
        assert unit.big_norm.weight.grad.abs().sum() > 0
    optimizer.step()

    model.eval()
    with torch.no_grad():
        trained = model(clip)
        for unit in units:
            unit.big_norm.weight.zero_(), unit.big_norm.bias.zero_()
        silenced = model(clip)
    assert (trained - silenced).abs().max() > 1e-4


@pytest.mark.parametrize("frames", [4, 8, 16])
def test_whole_clip_variant_runs_for_any_clip_length_with_the_same_weights(frames):
    torch.manual_seed(0)
    model = build_model("smallbig_r23_tx3x3", num_classes=3, num_frames=8).eval()
    with torch.no_grad():
        logits = model(torch.randn(1, 3, frames, 32, 32))
    assert logits.shape == (1, 3)
    # The same weights for every length: the model holds no frame count.
    assert sum(p.numel() for p in model.parameters()) == sum(
        p.numel() for p in build_model("smallbig_r23_tx3x3", num_classes=3, num_frames=16).parameters())
