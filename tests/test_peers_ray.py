"""Every peer trains under Ray Train: one DDP-prepared SGD step each, on real decoded clips.

One TorchTrainer run for all peers (a run per peer would cost a minute of start-up each);
the step is the same forward/backward/step the training loop takes.
"""
import os
import sys
import tempfile

import pytest

import smallbig
from pipelines.data.annotations import read_dataset_folder
from pipelines.presets import preset
from train_helpers import CLASSES, write_tiny_dataset

ray = pytest.importorskip("ray")


def one_step_of_every_peer(config: dict) -> None:
    import ray.train
    import ray.train.torch
    import torch

    from pipelines.data.batches import iter_clip_batches

    batch = next(iter(iter_clip_batches(ray.train.get_dataset_shard("train"), 4)))
    metrics = {"clips": float(len(batch.labels))}
    for name in config["models"]:
        torch.manual_seed(0)
        model = smallbig.build_model(name, num_classes=config["classes"], num_frames=4, base_width=16)
        model = ray.train.torch.prepare_model(model)
        before = [p.detach().clone() for p in model.parameters()]
        optimizer = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
        loss = torch.nn.functional.cross_entropy(model(batch.clips), batch.labels)
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
        changed = [not torch.equal(b, p.detach()) for b, p in zip(before, model.parameters())]
        metrics[f"{name}.loss"] = float(loss)
        metrics[f"{name}.changed"] = sum(changed) / len(changed)
    with tempfile.TemporaryDirectory() as folder:  # Train V2 keeps the metrics that come with a checkpoint
        ray.train.report(metrics, checkpoint=ray.train.Checkpoint.from_directory(folder))


def test_every_peer_takes_a_training_step_under_ray_train(tmp_path):
    from ray.train.torch import TorchTrainer

    from pipelines.cluster import fit_decode_pool
    from pipelines.data.dataset import build_dataset

    os.environ["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] = "0.2"
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # workers cannot import a test module
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        data = write_tiny_dataset(tmp_path / "data", {"train": 2})
        spec = preset("smoke").data.clip
        clips = build_dataset(read_dataset_folder(data, "train"), spec, "train", pool=fit_decode_pool(1, 1.0, 2))
        trainer = TorchTrainer(
            one_step_of_every_peer,
            train_loop_config={"models": list(smallbig.PEERS), "classes": len(CLASSES)},
            scaling_config=ray.train.ScalingConfig(num_workers=1, resources_per_worker={"CPU": 1}),
            run_config=ray.train.RunConfig(name="peer-steps", storage_path=str(tmp_path / "runs")),
            datasets={"train": clips.dataset},
        )
        metrics = trainer.fit().metrics
    finally:
        ray.shutdown()
    assert metrics["clips"] >= 2  # a batch of real clips (the shard may split the first batch)
    for name in smallbig.PEERS:
        assert 0 < metrics[f"{name}.loss"] < 10, name
        # most parameters took the step; those behind a zero-initialised BN (non-local) wait for the next one
        assert metrics[f"{name}.changed"] > 0.8, name
