"""Ray Train end to end on real decoded clips: checkpoints, resume by name, a killed worker, MLflow.

One Ray instance (2 CPUs) for the module; every run uses the `smoke` preset on a tiny
three-class dataset of real mp4 files.
"""
import os
import signal
import tempfile
import threading
from pathlib import Path

import psutil
import pytest
import torch

from pipelines.presets import preset
from pipelines.training.checkpoints import CHECKPOINT_FILE
from pipelines.training.driver import fit
from pipelines.training.pause_points import PAUSE_DIR_ENV
from pipelines.training.predictions import VideoPredictions
from train_helpers import CLASSES, PausePoints, write_tiny_dataset

ray = pytest.importorskip("ray")
from mlflow.tracking import MlflowClient  # noqa: E402


@pytest.fixture(scope="module")
def workspace(tmp_path_factory):
    root = tmp_path_factory.mktemp("training")
    os.environ["RAY_AUTH_MODE"] = "disabled"
    os.environ["RAY_TRAIN_HEALTH_CHECK_INTERVAL_S"] = "0.2"
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{root / 'mlflow.db'}"
    os.environ.update(PausePoints(root / "pauses").env)  # before Ray starts: every Ray process has it
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield root, write_tiny_dataset(root / "data")
    ray.shutdown()
    del os.environ["MLFLOW_TRACKING_URI"]
    del os.environ[PAUSE_DIR_ENV]


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
    assert result.test["test_videos"] == 3 * 2

    client, runs = mlflow_runs("two-workers")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    run = runs[0]
    assert logged_epochs(client, run.info.run_id) == [0, 1]
    for key in ("train_loss", "val_top1", "val_top5", "val_mean_class_acc", "train_clips_per_s", "lr", "test_top1"):
        assert key in run.data.metrics, key
    assert run.data.params["model.name"] == "smallbig_r23_full" and int(run.data.params["model.params"]) > 1e6
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id, "test")}
    assert {"test/metrics.json", "test/per_class.csv", "test/predictions.csv", "test/confusion.png"} <= artifacts
    with tempfile.TemporaryDirectory() as folder:
        predictions = VideoPredictions.read_csv(client.download_artifacts(run.info.run_id, "test/predictions.csv", folder))
    assert predictions.classes == list(CLASSES)
    # one row per test video (write_tiny_dataset names them test_<class>_<i>.mp4), with that video's label
    names = [Path(video).name for video in predictions.videos]
    assert sorted(names) == sorted(f"test_{name}_{i}.mp4" for name in CLASSES for i in range(2))
    assert [name.startswith(f"test_{CLASSES[label]}_") for name, label in zip(names, predictions.labels)] == [True] * 6
    # test_top1, as returned and as tracked, is the share of those videos whose best score is their label
    right = predictions.scores.argmax(axis=1) == predictions.labels
    assert result.test["test_top1"] == pytest.approx(100 * right.mean())
    assert run.data.metrics["test_top1"] == pytest.approx(result.test["test_top1"])
    assert run.data.metrics["test_workers"] == 2 and "test_seconds" in run.data.metrics  # scored on 2 workers


def test_the_views_scored_on_two_workers_are_the_views_scored_in_one_process(workspace, two_worker_run):
    """Sharding the test changes who scores each view, not its score: the run's per-video scores
    equal those of the whole test list scored here, in one process, up to float rounding."""
    from pipelines.data.annotations import read_dataset_folder
    from pipelines.data.dataset import DecodePool
    from pipelines.training.checkpoints import load_trained
    from pipelines.training.scoring import score_views
    from pipelines.training.testing import per_video

    _, data = workspace
    model, config, _ = load_trained(two_worker_run.checkpoint)
    videos = read_dataset_folder(data, "test")
    views = score_views(model, videos, config.data.clip, rank=0, world=1, batch_size=4,
                        pool=DecodePool(max_actors=1), cache=None)
    ids, scores, _ = per_video(views)
    client, runs = mlflow_runs("two-workers")
    with tempfile.TemporaryDirectory() as folder:
        logged = VideoPredictions.read_csv(client.download_artifacts(runs[0].info.run_id, "test/predictions.csv",
                                                                     folder))
    here = {videos.records[int(i)].path: row for i, row in zip(ids, scores)}
    assert sorted(here) == sorted(logged.videos)
    for video, row in zip(logged.videos, logged.scores):
        assert row == pytest.approx(here[video], rel=1e-4, abs=1e-6)


def test_rerun_with_the_same_name_resumes_instead_of_restarting(workspace, two_worker_run):
    result = fit(smoke(workspace, "two-workers", **{"optim.epochs": 3}), run_test=False)
    assert result.metrics["epoch"] == 2
    client, runs = mlflow_runs("two-workers")
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    assert logged_epochs(client, runs[0].info.run_id) == [0, 1, 2]  # epochs 0 and 1 were not trained again


# Where the worker-kill scenario kills a training worker, in order: each point held until the kill.
KILLS = (("epoch1.train", "mid-epoch"), ("epoch2.val", "during validation"),
         ("epoch2", "right after epoch 2's checkpoint was registered"))


@pytest.fixture(scope="module")
def killed_three_times(workspace):
    """One 4-epoch run on two workers, one of them SIGKILLed at each point of ``KILLS`` (the
    training worker that reached it)."""
    root, _ = workspace
    pauses, name = PausePoints(root / "pauses"), "killed"
    for point, _ in KILLS:
        pauses.hold(name, point)
    killed, errors = [], []

    def kill_a_worker_at_each_point():
        try:
            for point, _ in KILLS:
                pauses.wait(name, point)
                worker = psutil.Process(pauses.arriving_pid(name, point))
                assert worker.cmdline()[0].startswith("ray::RayTrainWorker"), worker.cmdline()  # a worker, not the driver
                worker.send_signal(signal.SIGKILL)
                killed.append(point)
                pauses.release(name, point)
        except Exception as error:  # reported by the fixture, not lost in a thread
            errors.append(error)
            for point, _ in KILLS:
                pauses.release(name, point)

    killer = threading.Thread(target=kill_a_worker_at_each_point, daemon=True)
    killer.start()
    result = fit(smoke(workspace, name, **{"optim.epochs": 4, "run.max_failures": len(KILLS)}), run_test=False)
    killer.join(timeout=30)
    assert not errors, errors
    assert killed == [point for point, _ in KILLS]
    return name, result, pauses


def test_a_worker_killed_mid_epoch_in_validation_or_after_a_checkpoint_loses_only_the_unfinished_epoch(
        killed_three_times):
    name, result, pauses = killed_three_times
    assert result.metrics["epoch"] == 3
    trained = [pauses.arrivals(name, f"epoch{epoch}.train") for epoch in range(4)]
    # epoch 1 was killed mid-epoch and epoch 2 in validation: each trained again from the last
    # checkpoint; epoch 2, once checkpointed, was not trained a third time after the last kill
    assert trained == [1, 2, 2, 1]
    assert pauses.arrivals(name, "epoch2.val") == 2


def test_each_epoch_reaches_mlflow_exactly_once_whenever_a_worker_dies(killed_three_times):
    name, _, _ = killed_three_times
    client, runs = mlflow_runs(name)
    assert len(runs) == 1 and runs[0].info.status == "FINISHED"
    run_id = runs[0].info.run_id
    assert logged_epochs(client, run_id) == [0, 1, 2, 3]
    for key in runs[0].data.metrics:  # no metric has a step twice
        steps = [m.step for m in client.get_metric_history(run_id, key)]
        assert len(steps) == len(set(steps)), (key, steps)


def epoch_metric(client, run_id, key):
    return [m.value for m in sorted(client.get_metric_history(run_id, key), key=lambda m: m.step)]


# One worker with one thread on both paths: the same float sums in the same order.
ONE_THREAD = {"optim.epochs": 3, "run.workers": 1, "run.cpus_per_worker": 1}


@pytest.fixture(scope="module")
def streamed_run(workspace):
    return fit(smoke(workspace, "streamed", **ONE_THREAD, **{"data.cache": "none"}), run_test=False)


@pytest.mark.slow
def test_a_streamed_run_starts_its_decoders_once_and_serves_every_video_once_per_epoch(streamed_run):
    result = streamed_run
    assert result.metrics["train_decoders_started"] == 1  # one actor for three epochs, not three
    assert result.metrics["val_decoders_started"] == 0  # validation led the same stream, decoded once
    client, runs = mlflow_runs("streamed")
    assert epoch_metric(client, runs[0].info.run_id, "videos_served") == [3 * 4] * 3


def history(name):
    client, runs = mlflow_runs(name)
    return {key: epoch_metric(client, runs[0].info.run_id, key)
            for key in ("train_loss", "train_top1", "val_loss", "val_top1", "val_top5", "lr")}


@pytest.mark.slow
def test_the_same_seed_gives_the_same_metrics_run_after_run_cached_or_streamed(workspace, streamed_run):
    fit(smoke(workspace, "same-seed-cached", **ONE_THREAD, **{"data.cache": "memory"}), run_test=False)
    # another run, on the other path: the same clips in the same order give the same numbers
    assert history("same-seed-cached") == history("streamed")


@pytest.mark.slow
def test_the_same_smoke_run_from_two_folders_logs_the_same_numbers(workspace):
    """Two clones in different folders, each writing the built-in benchmark into its own storage
    and tracking to its own MLflow store: the same bytes, the same clips, the same numbers."""
    root, _ = workspace
    original = os.environ["MLFLOW_TRACKING_URI"]
    histories, fingerprints = [], []
    for place in ("clone-a", "far/away/clone-b"):
        storage = root / place / "runs"
        storage.mkdir(parents=True)
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{storage / 'mlflow.db'}"
        try:
            fit(preset("smoke").with_overrides({"run.storage": str(storage), "run.name": "from-a-clone",
                                                "run.workers": 1, "data.cache": "memory",
                                                "data.synthetic.videos_per_class": 3}), run_test=False)
            histories.append(history("from-a-clone"))
            fingerprints.append(mlflow_runs("from-a-clone")[1][0].data.tags["dataset_fingerprint"])
        finally:
            os.environ["MLFLOW_TRACKING_URI"] = original
    assert fingerprints[0] == fingerprints[1] != "none"
    assert len(histories[0]["train_loss"]) == 2  # both epochs
    assert histories[0] == histories[1]
