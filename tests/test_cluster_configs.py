"""The cluster configs in cluster/: the Ray autoscaler's own schema check for the launcher YAMLs,
and the choices cluster/README.md relies on (the head never trains, GPUs scale from zero, the
pins of environment.yml, decode nodes labelled, KubeRay autoscaler v2, the RayJob's entrypoint)."""
import re
import shlex
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
LAUNCHER = ["aws.yaml", "gcp.yaml"]
ROLE = "smallbig/role"


def load(name: str) -> dict:
    return yaml.safe_load((CLUSTER / name).read_text())


def environment_pins() -> dict[str, str]:
    """``name -> version`` for every ``==`` pin of environment.yml's pip section."""
    env = yaml.safe_load((ROOT / "environment.yml").read_text())
    pip = next(d["pip"] for d in env["dependencies"] if isinstance(d, dict) and "pip" in d)
    return dict(re.fullmatch(r"([A-Za-z0-9_.\-\[\],]+)==(\S+)", p).groups() for p in pip if "==" in p)


def pins_in(commands: list[str]) -> dict[str, str]:
    pins = {}
    for command in commands:
        for word in shlex.split(command):
            match = re.fullmatch(r"([A-Za-z0-9_.\-\[\],]+)==(\S+)", word)
            if match:
                pins[match.group(1)] = match.group(2)
    return pins


def gpu_types(config: dict) -> dict:
    return {name: t for name, t in config["available_node_types"].items() if t["resources"].get("GPU", 0) > 0}


@pytest.mark.parametrize("name", LAUNCHER)
def test_launcher_config_passes_the_autoscalers_own_validation(name):
    from ray.autoscaler._private.util import prepare_config, validate_config

    config = load(name)
    if config["provider"]["type"] == "gcp":
        config["provider"]["project_id"] = "my-project"  # left for the user to fill in
    prepared = prepare_config(config)  # merges the provider's defaults, as `ray up` does
    validate_config(prepared)  # ray-schema.json plus the launcher's own checks
    assert prepared["head_node_type"] in prepared["available_node_types"]


@pytest.mark.parametrize("name", LAUNCHER)
def test_head_never_trains_or_decodes_and_gpus_scale_from_zero(name):
    config = load(name)
    head = config["available_node_types"][config["head_node_type"]]
    assert head["resources"].get("CPU") == 0 and head["resources"].get("GPU", 0) == 0
    gpus = gpu_types(config)
    assert gpus, "no GPU worker type"
    for node_type in gpus.values():
        assert node_type["min_workers"] == 0 and node_type["max_workers"] >= 1
        assert node_type["labels"][ROLE] == "train"
        assert "cu12" in node_type["docker"]["worker_image"]
    decode = [t for t in config["available_node_types"].values() if t.get("labels", {}).get(ROLE) == "decode"]
    assert decode and all(t["resources"].get("GPU", 0) == 0 and t["min_workers"] >= 1 for t in decode)
    assert config["idle_timeout_minutes"] > 0


def test_decode_label_is_the_one_the_pipeline_looks_for():
    from pipelines.cluster import DECODE_LABEL, TRAIN_LABEL_SELECTOR

    assert DECODE_LABEL == {ROLE: "decode"} and TRAIN_LABEL_SELECTOR == {ROLE: "!decode"}


@pytest.mark.parametrize("name", LAUNCHER)
def test_images_are_official_ray_260_images_not_ray_ml(name):
    text = (CLUSTER / name).read_text()
    images = re.findall(r"\b(?:image|worker_image|head_image):\s*(\S+)", text)
    assert images
    for image in images:
        assert "ray-ml" not in image
        assert re.fullmatch(r"rayproject/ray:2\.60\.0-py311-(cpu|cu12\d)", image), image


@pytest.mark.parametrize("name", LAUNCHER)
def test_setup_installs_the_pins_of_environment_yml_and_no_torchvision(name):
    config = load(name)
    commands = config["setup_commands"]
    assert pins_in(commands) == environment_pins()
    assert not any("torchvision" in c for c in commands)
    assert any("-e ~/smallbignet" in c and "--no-deps" in c for c in commands)


@pytest.mark.parametrize("name", LAUNCHER)
def test_token_auth_on_every_node_and_head_ip_for_the_mlflow_uri(name):
    config = load(name)
    head, worker = " ".join(config["head_start_ray_commands"]), " ".join(config["worker_start_ray_commands"])
    assert "RAY_AUTH_MODE=token" in head and "RAY_AUTH_MODE=token" in worker
    assert "RAY_HEAD_IP=" in head
    assert "~/.ray/auth_token" in config["file_mounts"]


def test_runtime_env_sends_the_tracking_server_to_every_worker_and_leaves_bulk_behind():
    from ray.runtime_env import RuntimeEnv

    env = load("runtime_env.yaml")
    RuntimeEnv(**env)  # Ray accepts it
    assert env["env_vars"]["MLFLOW_TRACKING_URI"] == "http://${RAY_HEAD_IP}:5000"
    assert {"/.venv/", "/runs/", "/.git/", "/data/"} <= set(env["excludes"])
    assert "RAY_AUTH_TOKEN" not in env["env_vars"]


def _cluster_spec(manifest: dict) -> dict:
    return manifest["spec"]["rayClusterSpec"] if manifest["kind"] == "RayJob" else manifest["spec"]


@pytest.mark.parametrize("name", ["kuberay/raycluster.yaml", "kuberay/rayjob.yaml"])
def test_kuberay_cluster_autoscales_with_v2_gpu_from_zero_and_head_without_cpus(name):
    manifest = load(name)
    assert manifest["apiVersion"] == "ray.io/v1"
    spec = _cluster_spec(manifest)
    assert spec["rayVersion"] == "2.60.0"
    assert spec["enableInTreeAutoscaling"] is True and spec["autoscalerOptions"]["version"] == "v2"
    assert spec["headGroupSpec"]["rayStartParams"]["num-cpus"] == "0"
    groups = {g["groupName"]: g for g in spec["workerGroupSpecs"]}
    gpu = [g for g in groups.values()
           if "nvidia.com/gpu" in g["template"]["spec"]["containers"][0]["resources"]["limits"]]
    assert gpu and all(g["minReplicas"] == 0 and g["maxReplicas"] >= 1 and g["labels"][ROLE] == "train" for g in gpu)
    decode = [g for g in groups.values() if g.get("labels", {}).get(ROLE) == "decode"]
    assert decode and all(g["minReplicas"] >= 1 for g in decode)
    for container in [spec["headGroupSpec"]["template"]["spec"]["containers"][0]] + \
            [g["template"]["spec"]["containers"][0] for g in groups.values()]:
        assert "ray-ml" not in container["image"]


def test_rayjob_runs_the_ablation_sweep_and_deletes_its_cluster():
    job = load("kuberay/rayjob.yaml")
    assert job["kind"] == "RayJob" and job["spec"]["shutdownAfterJobFinishes"] is True
    words = shlex.split(job["spec"]["entrypoint"])
    assert words[:3] == ["python", "run.py", "ablation"]
    assert words[words.index("--grid") + 1] == "receptive_field"
    assert words[words.index("--preset") + 1] == "kinetics"
    assert any(w.startswith("run.storage=s3://") for w in words)  # checkpoints on shared storage
    runtime_env = yaml.safe_load(job["spec"]["runtimeEnvYAML"])
    assert runtime_env["env_vars"]["MLFLOW_TRACKING_URI"] == "http://mlflow:5000"


def test_mlflow_deployment_answers_to_its_service_name_and_serves_artifacts():
    documents = list(yaml.safe_load_all((CLUSTER / "kuberay" / "mlflow.yaml").read_text()))
    kinds = {d["kind"]: d for d in documents}
    assert {"Deployment", "Service", "PersistentVolumeClaim"} <= set(kinds)
    assert kinds["Service"]["metadata"]["name"] == "mlflow"
    command = kinds["Deployment"]["spec"]["template"]["spec"]["containers"][0]["command"]
    assert "--serve-artifacts" in command
    allowed = next(c for c in command if c.startswith("--allowed-hosts=")).split("=", 1)[1].split(",")
    assert "mlflow:5000" in allowed


# ------------------------------------------------------------ what the layout needs from the pipelines

def test_decode_pool_goes_to_decode_nodes_only_when_the_cluster_has_them():
    from pipelines.cluster import DECODE_LABEL, fit_decode_pool
    from pipelines.data.dataset import DecodePool

    assert fit_decode_pool(2, 0.5, cluster_cpus=2, decode_cpus=0) == DecodePool(1.0, 1, 1, 8)  # one machine
    pinned = fit_decode_pool(8, 1.0, cluster_cpus=100, decode_cpus=64)
    assert pinned == DecodePool(1.0, 1, 64, 8, DECODE_LABEL)  # training elsewhere: all 64 CPUs decode


def test_trials_side_by_side_split_training_and_decode_cpus_by_their_share():
    from pipelines.cluster import DECODE_LABEL, worker_resources
    from pipelines.data.dataset import DecodePool
    from pipelines.presets import preset

    smoke = preset("smoke")  # one CPU worker
    # Two CPU nodes that train (1 CPU each) and a 2-CPU decode node, two trials at once: each
    # trial gets 2 of the 4 CPUs, i.e. one training CPU and one decode CPU.
    assert worker_resources(smoke, 2, total_cpus=4, decode_cpus=2) == (1.0, DecodePool(1.0, 1, 1, 8, DECODE_LABEL))
    # The whole cluster to one run: as before.
    assert worker_resources(smoke, 4, total_cpus=4, decode_cpus=2) == (1.0, DecodePool(1.0, 1, 2, 8, DECODE_LABEL))
    # Always one decode actor, however small the share; no decode nodes: half trains, half decodes.
    assert worker_resources(smoke, 1, total_cpus=8, decode_cpus=2)[1] == DecodePool(1.0, 1, 1, 8, DECODE_LABEL)
    assert worker_resources(smoke, 2, total_cpus=2, decode_cpus=0) == (1.0, DecodePool(1.0, 1, 1, 8))


def test_checkpoint_uris_keep_their_scheme_and_load_through_pyarrow(tmp_path):
    import torch
    from types import SimpleNamespace

    from pipelines.training.checkpoints import CHECKPOINT_FILE, checkpoint_location, load_checkpoint

    assert checkpoint_location(SimpleNamespace(path="bucket/runs/a/checkpoint_1"), "s3://bucket/runs") == \
        "s3://bucket/runs/a/checkpoint_1"
    assert checkpoint_location(SimpleNamespace(path="/abs/runs/a/checkpoint_1"), "runs") == "/abs/runs/a/checkpoint_1"
    torch.save({"epoch": 3}, tmp_path / CHECKPOINT_FILE)
    location = checkpoint_location(SimpleNamespace(path=str(tmp_path)), "file:///anything")
    assert location == tmp_path.as_uri() and load_checkpoint(location)["epoch"] == 3


def test_a_local_mlflow_store_is_refused_across_nodes_and_a_server_is_not():
    from pipelines.tracking import check_store_reachable

    check_store_reachable("sqlite:////tmp/mlflow.db", nodes=1)
    check_store_reachable("http://10.0.0.5:5000", nodes=8)
    with pytest.raises(ValueError, match="MLFLOW_TRACKING_URI"):
        check_store_reachable("sqlite:////tmp/mlflow.db", nodes=2)


def test_start_ray_leaves_the_submitted_jobs_env_vars_to_the_job(monkeypatch):
    import json

    from pipelines.cluster import job_env_vars

    monkeypatch.delenv("RAY_JOB_CONFIG_JSON_ENV_VAR", raising=False)
    assert job_env_vars() == {}
    monkeypatch.setenv("RAY_JOB_CONFIG_JSON_ENV_VAR", json.dumps(
        {"runtime_env": {"working_dir": "gcs://_ray_pkg_x.zip", "env_vars": {"MLFLOW_TRACKING_URI": "http://h:5000"}}}))
    assert job_env_vars() == {"MLFLOW_TRACKING_URI": "http://h:5000"}
