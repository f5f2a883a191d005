"""A Ray this project starts on one machine runs what a run there needs, and no more."""
import psutil
import pytest

ray = pytest.importorskip("ray")


def test_a_run_on_a_ray_started_here_has_no_watcher_for_nodes_a_cloud_can_reclaim(monkeypatch, tmp_path):
    import ray.train
    from ray.train.torch import TorchTrainer
    from ray.util.state import list_actors

    from pipelines.cluster import PREEMPTION_WATCHER, start_ray

    if ray.is_initialized():
        pytest.skip("Ray is already running in this process")
    monkeypatch.delenv(PREEMPTION_WATCHER, raising=False)  # start_ray sets it; the test's end unsets it
    context = start_ray(num_cpus=1, dashboard=True)  # the state API below asks the dashboard
    try:
        TorchTrainer(lambda: None, scaling_config=ray.train.ScalingConfig(num_workers=1),
                     run_config=ray.train.RunConfig(name="local", storage_path=str(tmp_path))).fit()
        started = {actor.class_name for actor in list_actors(  # this Ray's, even if others run here
            address=context.address_info["gcs_address"], limit=1000, raise_on_missing_output=False)}
    finally:
        ray.shutdown()
    assert {"TrainController", "RayTrainWorker"} <= started  # the run's own actors are listed
    assert "PreemptionWatcher" not in started


def test_a_ray_started_here_runs_no_dashboard_unless_asked():
    from pipelines.cluster import start_ray

    if ray.is_initialized():
        pytest.skip("Ray is already running in this process")
    context = start_ray(num_cpus=1)
    try:
        assert not context.dashboard_url
        # with a dashboard, one process per module of it (ray-dashboard-JobHead-0, -StateHead-0, ...)
        started = {child.name() for child in psutil.Process().children(recursive=True)}
        assert not any(name.startswith("ray-dashboard-") for name in started), started
    finally:
        ray.shutdown()
