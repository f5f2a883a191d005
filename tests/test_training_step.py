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


def test_a_one_clip_batch_cannot_train_where_the_maps_are_1x1_so_training_drops_incomplete_batches():
    """At 32 px the whole-clip big view of res5 is 1x1x1: BatchNorm needs two clips to train."""
    model = build_model("smallbig_r23_full", num_classes=3, num_frames=4).train()
    model(torch.randn(2, 3, 4, 32, 32)).sum().backward()  # two clips train
    with pytest.raises(ValueError, match="more than 1 value per channel"):
        model(torch.randn(1, 3, 4, 32, 32))


@pytest.mark.parametrize("videos, batch, workers, steps", [(19, 4, 2, 2), (12, 4, 2, 1), (8, 4, 1, 2), (7, 4, 1, 1)])
def test_steps_per_epoch_count_full_batches_of_equal_shards(videos, batch, workers, steps):
    from pipelines.training.driver import steps_per_epoch

    assert steps_per_epoch(videos, batch, workers) == steps


def test_a_training_set_smaller_than_one_batch_per_worker_is_refused_with_the_numbers():
    from pipelines.training.driver import steps_per_epoch

    with pytest.raises(ValueError, match="5 training videos give 2 per worker, fewer than one batch of 4"):
        steps_per_epoch(5, 4, 2)


def test_explicit_bf16_autocast_runs_on_the_cpu_and_auto_stays_full_precision():
    from pipelines.training.step import amp_dtype

    cpu = torch.device("cpu")
    assert amp_dtype("auto", cpu) is None and amp_dtype("none", cpu) is None
    assert amp_dtype("bf16", cpu) == torch.bfloat16 and amp_dtype("fp16", cpu) == torch.float16


def test_the_optimizer_takes_momentum_and_weight_decay_from_the_config_and_scales_the_lr():
    from pipelines.config import OptimSection
    from pipelines.training.step import make_optimizer

    model = torch.nn.Linear(3, 2)
    optim = OptimSection(lr=0.1, base_batch=8, momentum=0.5, weight_decay=0.01)
    group = make_optimizer(model, optim, global_batch=32).param_groups[0]
    assert group["lr"] == pytest.approx(0.4)  # four times the base batch, four times the lr
    assert group["momentum"] == 0.5 and group["weight_decay"] == 0.01
