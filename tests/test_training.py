"""Ray Train end to end on real decoded clips: checkpoints, resume by name, a killed worker, MLflow.

One Ray instance (2 CPUs) for the module; every run uses the `smoke` preset on a tiny
three-class dataset of real mp4 files.
"""
import os
import signal
import tempfile
import threading
import time
from pathlib import Path

import pytest
import torch

from pipelines.presets import preset
from pipelines.training.checkpoints import CHECKPOINT_FILE
from pipelines.training.driver import fit
from pipelines.training.predictions import VideoPredictions
from train_helpers import CLASSES, write_tiny_dataset

ray = pytest.importorskip("ray")
from mlflow.tracking import MlflowClient  # noqa: E402


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("training")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    os.environ["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] = "0.2"
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    ray.init(num_cpus=2, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield root, write_tiny_dataset(root / "data")
    ray.shutdown()
    del os.environ["MLFLOW_TRACKING_URI"]


def smoke(workspace, name, **overrides):
    root, data = workspace
    return preset("smoke").with_overrides({"data.path": str(data), "run.storage": str(root / "runs"),
                                           "run.name": name, "run.workers": 2, **overrides})


def mlflow_runs(name):
    client = MlflowClient()
    experiment = client.get_experiment_by_name("smallbig")
    runs = client.search_runs([experiment.experiment_id], filter_string=f"tags.`mlflow.runName` = '{name}'")
    return client, runs


def logged_epochs(client, run_id):
    return sorted(int(m.value) for m in client.get_metric_history(run_id, "epoch"))


@pytest.fixture(scope="module")
def two_worker_run(workspace):
    return fit(smoke(workspace, "two-workers"))


def test_smoke_training_on_two_workers_checkpoints_evaluates_and_is_tracked(two_worker_run):
    result = two_worker_run
    # 12 videos: 6 per worker, one full batch of 4 each; incomplete batches are dropped in training
    assert result.metrics["epoch"] == 1 and result.metrics["train_samples"] == 2 * 4
    state = torch.load(Path(result.checkpoint) / CHECKPOINT_FILE, weights_only=True)
    assert state["classes"] == list(CLASSES) and state["epoch"] == 1 and state["config"]["preset"] == "smoke"
    assert result.test["test_videos"] == 3 * 2 and 0 <= result.test["test_top1"] <= 100

    client, runs = mlflow_runs("two-workers")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    run = runs[0]
    assert logged_epochs(client, run.info.run_id) == [0, 1]
    for key in ("train_loss", "val_top1", "val_top5", "val_mean_class_acc", "train_clips_per_s", "lr", "test_top1"):
        assert key in run.data.metrics, key
    assert run.data.params["model.name"] == "smallbig_r23_full" and int(run.data.params["model.params"]) > 1e6
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "test")}
    assert {"test/metrics.json", "test/per_class.csv", "test/predictions.csv", "test/confusion.png"} <= artifacts
    with tempfile.TemporaryDirectory() as folder:  # one line per test video, consistent with the metric
        predictions = VideoPredictions.read_csv(client.download_artifacts(run.info.run_id, "test/predictions.csv", folder))
    assert len(predictions) == 3 * 2 and predictions.classes == list(CLASSES)
    assert 100 * predictions.correct().mean() == pytest.approx(result.test["test_top1"])


def test_rerun_with_the_same_name_resumes_instead_of_restarting(workspace, two_worker_run):
    result = fit(smoke(workspace, "two-workers", **{"optim.epochs": 3}), run_test=False)
    assert result.metrics["epoch"] == 2
    client, runs = mlflow_runs("two-workers")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert logged_epochs(client, runs[0].info.run_id) == [0, 1, 2]  # epochs 0 and 1 were not trained again


def test_a_killed_worker_restarts_from_the_last_checkpoint(workspace):
    root, _ = workspace
    config = smoke(workspace, "killed", **{"optim.epochs": 3, "run.max_failures": 1})
    killed = []
    gcs_address = ray.get_runtime_context().gcs_address

    def kill_a_worker_after_the_first_checkpoint():
        from ray.util.state import list_actors

        deadline = time.time() + 300
        while time.time() < deadline and not list((root / "runs" / "killed").glob("checkpoint_*")):
            time.sleep(0.5)
        workers = list_actors(address=gcs_address,  # this test's cluster, even if others run here
                              filters=[("class_name", "=", "RayTrainWorker"), ("state", "=", "ALIVE")])
        if workers:
            os.kill(workers[0].pid, signal.SIGKILL)
            killed.append(workers[0].pid)

    killer = threading.Thread(target=kill_a_worker_after_the_first_checkpoint, daemon=True)
    killer.start()
    result = fit(config, run_test=False)
    killer.join(timeout=5)
    assert killed, "no training worker was found to kill"
    assert result.metrics["epoch"] == 2
    client, runs = mlflow_runs("killed")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert logged_epochs(client, runs[0].info.run_id) == [0, 1, 2]  # each epoch counted once


def epoch_metric(client, run_id, key):
    return [m.value for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


@pytest.mark.slow
def test_a_streamed_run_starts_its_decoders_once_and_serves_every_video_once_per_epoch(workspace):
    result = fit(smoke(workspace, "streamed", **{"optim.epochs": 3, "run.workers": 1, "data.cache": "none"}),
                 run_test=False)
    assert result.metrics["train_decoders_started"] == 1  # one actor for three epochs, not three
    assert result.metrics["val_decoders_started"] == 1  # validation decoded once, reused every epoch
    client, runs = mlflow_runs("streamed")
    assert epoch_metric(client, runs[0].info.run_id, "videos_served") == [3 * 4] * 3


@pytest.mark.slow
def test_the_same_seed_gives_the_same_metrics_run_after_run(workspace):
    histories = []
    for name in ("same-seed-a", "same-seed-b"):
        fit(smoke(workspace, name, **{"run.workers": 1}), run_test=False)
        client, runs = mlflow_runs(name)
        histories.append({key: epoch_metric(client, runs[0].info.run_id, key)
                          for key in ("train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "lr")})
    assert histories[0] == histories[1]
