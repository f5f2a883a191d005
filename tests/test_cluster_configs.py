"""The cluster configs in cluster/: the Ray autoscaler's own schema check for the launcher YAMLs,
and the choices cluster/README.md relies on (the head never trains, GPUs scale from zero, the
pins of environment.yml, decode nodes labelled, KubeRay autoscaler v2, the RayJob's entrypoint),
and what would stop them on a real cloud, read from the files as data: pods larger than their
nodes can allocate, an MLflow volume it cannot write, GPU hosts without a current image, a GCP
`scheduling` block the API refuses, pods without the dataset or bucket access, an MLflow URI that
does not resolve from the job's namespace."""
import re
import shlex
from pathlib import Path
from urllib.parse import urlparse

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[1]
CLUSTER = ROOT / "cluster"
LAUNCHER = ["aws.yaml", "gcp.yaml"]
ROLE = "smallbig/role"


def load(name: str) -> dict:
    return yaml.safe_load((CLUSTER / name).read_text())


def load_all(name: str) -> list[dict]:
    return [d for d in yaml.safe_load_all((CLUSTER / name).read_text()) if d]


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


def test_setup_and_image_install_every_runtime_dependency_of_the_project():
    """pyproject's dependencies, pinned or not (pillow resizes the clips in the decoders)."""
    tomllib = pytest.importorskip("tomllib")  # Python >= 3.11
    wanted = {re.split(r"[=<>\[ ]", d)[0].lower() for d in
              tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]}
    dockerfile = (CLUSTER / "kuberay" / "Dockerfile").read_text().replace("\\\n", " ")
    for name, commands in [(n, load(n)["setup_commands"]) for n in LAUNCHER] + \
            [("kuberay/Dockerfile", [line for line in dockerfile.splitlines() if line.startswith("RUN pip")])]:
        installed = {re.split(r"[=<>\[]", w)[0].lower() for c in commands for w in shlex.split(c)}
        assert wanted <= installed, (name, wanted - installed)
    run = next(line for line in dockerfile.splitlines() if line.startswith("RUN pip"))
    assert pins_in([run]) == environment_pins() and "torchvision" not in run


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


# ------------------------------------------------------------ what would happen on a real cloud

# The node types the configs and the docs name: (vCPUs, memory GiB, GPUs, EKS max pods). vCPUs,
# memory and GPUs from the providers' instance tables ("Amazon EC2 instance types": m6i, c6i,
# g5, p4d; Compute Engine "Machine families resource and comparison guide": n2, g2, a2; Compute
# Engine counts 1 GB as 2^30 bytes). EKS max pods: the VPC CNI's ENI formula, ENIs x (IPv4
# addresses per ENI - 1) + 2, as in the EKS AMI's eni-max-pods.txt ("Amazon EKS User Guide",
# maximum pods per instance type); None for Compute Engine types.
NODE_TYPES = {
    "m6i.2xlarge": (8, 32, 0, 58),
    "c6i.8xlarge": (32, 64, 0, 234),
    "g5.2xlarge": (8, 32, 1, 58),
    "p4d.24xlarge": (96, 1152, 8, 737),
    "n2-standard-8": (8, 32, 0, None),
    "n2-highcpu-32": (32, 32, 0, None),
    "g2-standard-8": (8, 32, 1, None),
    "g2-standard-16": (16, 64, 1, None),
    "a2-highgpu-8g": (96, 680, 8, None),
}
# What a pod may not count on, beyond the kubelet's own reserve: DaemonSets (kube-proxy, the CNI,
# the CSI node plugins, logging and metrics agents, GPU device plugins: 0.2-0.5 CPU together on
# EKS and GKE) and a margin, and memory the kernel keeps (the kubelet's capacity is MemTotal, a
# few percent under the instance's nominal size).
DAEMONSET_CPU, DAEMONSET_GIB, MEMTOTAL_SHARE = 1.0, 1.5, 0.94
EVICTION_GIB = 100 / 1024  # --eviction-hard memory.available<100Mi, EKS AMI and GKE alike
DECODE_CPUS_PER_GPU = 8  # cluster/README.md, "The ratio"; configs may round it down to 7.5
def kinetics_gpus() -> int:
    """GPUs the `kinetics` preset trains on: run.workers x run.gpus_per_worker."""
    from pipelines.presets import preset

    run = preset("kinetics").run
    return int(run.workers * run.gpus_per_worker)


def _tiers(amount: float, tiers: list[tuple[float, float]]) -> float:
    reserved, start = 0.0, 0.0
    for size, share in tiers:
        reserved += share * max(0.0, min(amount, start + size) - start)
        start += size
    return reserved


def allocatable(node_type: str) -> tuple[float, float]:
    """CPUs and GiB a pod can request on an otherwise empty node of ``node_type``.

    CPU reserve: 6% of the first core, 1% of the second, 0.5% of the next two, 0.25% of the rest
    (GKE documentation, "Standard cluster architecture", node allocatable resources; the EKS
    AMI's bootstrap uses the same tiers for kube-reserved). Memory reserve: on GKE 25% of the
    first 4 GiB, 20% of the next 4, 10% of the next 8, 6% of the next 112, 2% above 128 GiB (same
    page); on EKS 255 MiB + 11 MiB per pod the node may run (the EKS AMI's kube-reserved). Both
    add the 100 MiB eviction threshold. Then the DaemonSet headroom above."""
    vcpus, gib, _, max_pods = NODE_TYPES[node_type]
    cpu_reserve = _tiers(vcpus, [(1, 0.06), (1, 0.01), (2, 0.005), (float("inf"), 0.0025)])
    if max_pods is None:  # GKE
        mem_reserve = _tiers(gib, [(4, 0.25), (4, 0.20), (8, 0.10), (112, 0.06), (float("inf"), 0.02)])
    else:  # EKS
        mem_reserve = (255 + 11 * max_pods) / 1024
    return (vcpus - cpu_reserve - DAEMONSET_CPU,
            gib * MEMTOTAL_SHARE - mem_reserve - EVICTION_GIB - DAEMONSET_GIB)


_UNITS = {"Ki": 2 ** -20, "Mi": 2 ** -10, "Gi": 1, "Ti": 2 ** 10, "k": 1e3 / 2 ** 30, "M": 1e6 / 2 ** 30,
          "G": 1e9 / 2 ** 30}


def cpus(quantity) -> float:
    text = str(quantity)
    return float(text[:-1]) / 1000 if text.endswith("m") else float(text)


def gib(quantity) -> float:
    match = re.fullmatch(r"([0-9.]+)([A-Za-z]*)", str(quantity))
    return float(match.group(1)) * (_UNITS[match.group(2)] if match.group(2) else 2 ** -30)


def pod_requests(pod_spec: dict, sidecars: list[dict] = ()) -> tuple[float, float]:
    """The CPUs and GiB the scheduler reserves for a pod (requests; limits where none)."""
    total_cpu = total_gib = 0.0
    for container in list(pod_spec["containers"]) + list(sidecars):
        resources = container.get("resources", {})
        asked = {**resources.get("limits", {}), **resources.get("requests", {})}
        assert "cpu" in asked and "memory" in asked, f"{container.get('name')}: no CPU or memory request"
        total_cpu += cpus(asked["cpu"])
        total_gib += gib(asked["memory"])
    return total_cpu, total_gib


RAY_MANIFESTS = ["kuberay/raycluster.yaml", "kuberay/rayjob.yaml"]
# KubeRay's autoscaler sidecar when autoscalerOptions.resources is not set: 500m CPU, 512Mi.
AUTOSCALER_DEFAULT = {"name": "autoscaler", "resources": {"requests": {"cpu": "500m", "memory": "512Mi"}}}


def ray_pods(name: str) -> dict[str, tuple[dict, list[dict]]]:
    """``group -> (pod template, sidecars KubeRay adds)`` for a RayCluster or RayJob manifest."""
    spec = _cluster_spec(load(name))
    autoscaler = dict(AUTOSCALER_DEFAULT)
    if spec.get("autoscalerOptions", {}).get("resources"):
        autoscaler = {"name": "autoscaler", "resources": spec["autoscalerOptions"]["resources"]}
    pods = {"head": (spec["headGroupSpec"]["template"], [autoscaler] if spec.get("enableInTreeAutoscaling") else [])}
    pods.update({g["groupName"]: (g["template"], []) for g in spec["workerGroupSpecs"]})
    return pods


def mlflow_pod() -> dict:
    return next(d for d in load_all("kuberay/mlflow.yaml") if d["kind"] == "Deployment")["spec"]["template"]


def sized_for(template: dict) -> list[str]:
    types = template.get("metadata", {}).get("annotations", {}).get("smallbig/node-types", "").split()
    assert types, "a pod template without its smallbig/node-types annotation"
    unknown = [t for t in types if t not in NODE_TYPES]
    assert not unknown, f"add {unknown} to NODE_TYPES with their figures"
    return types


def test_allocatable_arithmetic_matches_published_examples():
    # GKE's documented CPU example: 4 cores reserve 60 + 10 + 5 + 5 = 80 millicores.
    assert _tiers(4, [(1, 0.06), (1, 0.01), (2, 0.005), (float("inf"), 0.0025)]) == pytest.approx(0.08)
    # and a 32 GiB node 1 + 0.8 + 0.8 + 0.96 = 3.56 GiB of memory.
    assert _tiers(32, [(4, 0.25), (4, 0.20), (8, 0.10), (112, 0.06), (float("inf"), 0.02)]) == pytest.approx(3.56)
    # The cases do not fit: 32 CPUs on a 32-vCPU node, 8 CPUs / 48 GiB on a g5.2xlarge.
    assert allocatable("c6i.8xlarge")[0] < 32 and allocatable("n2-highcpu-32")[0] < 32
    assert allocatable("g5.2xlarge")[0] < 8 and allocatable("g5.2xlarge")[1] < 48


@pytest.mark.parametrize("name", RAY_MANIFESTS)
def test_every_ray_pod_fits_the_allocatable_cpu_and_memory_of_its_node_types(name):
    for group, (template, sidecars) in ray_pods(name).items():
        cpu, mem = pod_requests(template["spec"], sidecars)
        for node_type in sized_for(template):
            free_cpu, free_gib = allocatable(node_type)
            assert cpu <= free_cpu and mem <= free_gib, \
                f"{name} {group}: {cpu:g} CPU / {mem:g} GiB on {node_type} ({free_cpu:.2f} / {free_gib:.2f} free)"
            gpus = int(template["spec"]["containers"][0]["resources"].get("limits", {}).get("nvidia.com/gpu", 0))
            assert gpus <= NODE_TYPES[node_type][2], f"{group}: {gpus} GPUs on {node_type}"


def test_mlflow_fits_next_to_the_ray_head_on_one_head_node():
    head, sidecars = ray_pods("kuberay/raycluster.yaml")["head"]
    mlflow = mlflow_pod()
    assert sized_for(mlflow) == sized_for(head)
    cpu_head, gib_head = pod_requests(head["spec"], sidecars)
    cpu_mlflow, gib_mlflow = pod_requests(mlflow["spec"])
    for node_type in sized_for(head):
        free_cpu, free_gib = allocatable(node_type)
        assert cpu_head + cpu_mlflow <= free_cpu and gib_head + gib_mlflow <= free_gib, node_type


@pytest.mark.parametrize("name", LAUNCHER)
def test_launcher_node_types_advertise_no_more_than_their_machines_have(name):
    for key, node_type in load(name)["available_node_types"].items():
        config = node_type["node_config"]
        machine = config.get("InstanceType") or config.get("machineType")
        vcpus, _, gpus, _ = NODE_TYPES[machine]
        assert node_type["resources"].get("CPU", vcpus) <= vcpus, key
        assert node_type["resources"].get("GPU", gpus) == gpus, key


def test_mlflow_pod_can_write_its_volume_and_runs_a_cpu_image():
    pod = mlflow_pod()["spec"]
    container = pod["containers"][0]
    assert re.search(r"-py311-cpu$", container["image"]), "the MLflow server needs no CUDA"
    mount = next(m for m in container["volumeMounts"] if m["name"] == "db")
    store = next(c for c in container["command"] if c.startswith("--backend-store-uri="))
    assert store.split("sqlite:///", 1)[1].startswith(mount["mountPath"] + "/")
    security = {**pod.get("securityContext", {}), **container.get("securityContext", {})}
    user, group = security.get("runAsUser", 1000), security.get("runAsGroup", 100)  # the ray user of Ray's image
    assert user != 0
    fixed_by_init = any(("chown" in " ".join(c.get("command", []) + c.get("args", [])) and mount["mountPath"] in
                         " ".join(c.get("command", []) + c.get("args", []))) for c in pod.get("initContainers", []))
    assert pod.get("securityContext", {}).get("fsGroup") == group or fixed_by_init, \
        "a new volume's root belongs to root: sqlite cannot create the database as uid 1000"


def test_every_aws_node_type_names_a_current_image():
    for key, node_type in load("aws.yaml")["available_node_types"].items():
        image = node_type["node_config"].get("ImageId", "")
        # Without one, Ray 2.60 launches "Deep Learning AMI (Ubuntu 18.04) V71.0" (driver far below 570).
        assert image and image.lower() != "latest_dlami", f"{key}: no ImageId"
        if node_type["resources"].get("GPU", 0):
            # The base DLAMI with the open-source NVIDIA driver (>= 570 for cu128), resolved per region.
            assert re.fullmatch(r"resolve:ssm:/aws/service/deeplearning/ami/x86_64/"
                                r"base-oss-nvidia-driver-gpu-ubuntu-2[24]\.04/latest/ami-id|ami-[0-9a-f]{8,17}", image), key


def test_every_gcp_gpu_node_type_names_an_image_with_a_current_driver():
    for key, node_type in gpu_types(load("gcp.yaml")).items():
        images = [d["initializeParams"]["sourceImage"] for d in node_type["node_config"]["disks"] if d.get("boot")]
        assert len(images) == 1, key
        match = re.search(r"-cu(\d+)-.*nvidia-(\d+)$", images[0])
        assert match and int(match.group(1)) >= 128 and int(match.group(2)) >= 570, images[0]


def test_gcp_scheduling_blocks_are_mappings_the_compute_api_accepts():
    for key, node_type in load("gcp.yaml")["available_node_types"].items():
        scheduling = node_type["node_config"].get("scheduling")
        if scheduling is None:
            continue
        assert isinstance(scheduling, dict), f"{key}: scheduling must be a mapping (ray-project/ray#46248)"
        if node_type["resources"].get("GPU", 0):
            assert scheduling["onHostMaintenance"] == "TERMINATE", key
        if scheduling.get("preemptible"):
            assert scheduling.get("automaticRestart") is False and scheduling.get("onHostMaintenance") == "TERMINATE"


def test_launcher_workers_get_bucket_access_and_the_dataset():
    aws, gcp = load("aws.yaml"), load("gcp.yaml")
    # Ray gives only the head an instance profile / service account; workers write checkpoints too.
    assert all("IamInstanceProfile" in t["node_config"] for t in aws["available_node_types"].values())
    for key, node_type in gcp["available_node_types"].items():
        if key != gcp["head_node_type"]:
            accounts = node_type["node_config"]["serviceAccounts"]
            assert accounts and "cloud-platform" in accounts[0]["scopes"][0], key
    for config in (aws, gcp):
        init = " ".join(config["initialization_commands"])
        assert "/mnt/data/kinetics400" in init
        assert "-v /mnt/data:/mnt/data:ro" in config["docker"]["run_options"]
    # and every sweep or training command of the README names a dataset and shared storage
    readme = (CLUSTER / "README.md").read_text().replace("\\\n", " ")
    commands = re.findall(r"python run\.py (?:ablation|train)[^\n]*", readme)
    assert commands
    for command in commands:
        words = shlex.split(command.replace("`", ""))
        paths = [w.split("=", 1)[1] for w in words if w.startswith("data.path=")]
        assert paths and paths[0].startswith(("/mnt/data/", "/data/")), command
        assert any(w.startswith("run.storage=") and "://" in w for w in words), command


def _volumes_and_identity(template: dict) -> dict:
    spec = template["spec"]
    claims = {v["name"]: v["persistentVolumeClaim"]["claimName"] for v in spec.get("volumes", [])
              if "persistentVolumeClaim" in v}
    mounts = {(claims[m["name"]], m["mountPath"], m.get("readOnly", False))
              for c in spec["containers"] for m in c.get("volumeMounts", []) if m["name"] in claims}
    return {"serviceAccountName": spec.get("serviceAccountName"), "claims": mounts,
            "images": [c["image"] for c in spec["containers"]],
            "resources": [c["resources"] for c in spec["containers"]],
            "node-types": sized_for(template)}


def test_rayjob_and_raycluster_get_the_dataset_and_bucket_access_the_same_way():
    base = {(d["kind"], d["metadata"]["name"]): d for d in load_all("kuberay/base.yaml")}
    account = next(name for kind, name in base if kind == "ServiceAccount")
    claim = next(name for kind, name in base if kind == "PersistentVolumeClaim")
    cluster, job = ray_pods("kuberay/raycluster.yaml"), ray_pods("kuberay/rayjob.yaml")
    assert cluster.keys() == job.keys()
    for group in cluster:
        seen = _volumes_and_identity(cluster[group][0])
        assert seen == _volumes_and_identity(job[group][0]), group
        assert seen["serviceAccountName"] == account, group  # IRSA / Workload Identity bind to it
        assert (claim, "/data", True) in seen["claims"], group
    # the GPU group gets the CUDA image, the others the CPU one
    for group, (template, _) in cluster.items():
        gpu = "nvidia.com/gpu" in template["spec"]["containers"][0]["resources"].get("limits", {})
        assert template["spec"]["containers"][0]["image"].endswith("-cu128" if gpu else "-cpu"), group
    # the MLflow server and the dataset copy run as the same account (artifacts, the bucket)
    assert mlflow_pod()["spec"]["serviceAccountName"] == account
    copy = next(d for d in base.values() if d["kind"] == "Job")["spec"]["template"]["spec"]
    assert copy["serviceAccountName"] == account
    assert {v["persistentVolumeClaim"]["claimName"] for v in copy["volumes"]} == {claim}
    # the job's entrypoint reads the dataset where the pods mount it
    words = shlex.split(load("kuberay/rayjob.yaml")["spec"]["entrypoint"])
    assert "data.path=/data/kinetics400" in words


def test_the_mlflow_uri_of_the_job_resolves_to_the_service_in_its_namespace():
    namespaces = [d for d in load_all("kuberay/base.yaml") if d["kind"] == "Namespace"]
    assert len(namespaces) == 1
    namespace = namespaces[0]["metadata"]["name"]
    for name in ["kuberay/base.yaml", "kuberay/mlflow.yaml", *RAY_MANIFESTS]:
        for document in load_all(name):
            if document["kind"] != "Namespace":
                assert document["metadata"].get("namespace") == namespace, f"{name}: {document['kind']}"
    service = next(d for d in load_all("kuberay/mlflow.yaml") if d["kind"] == "Service")
    ports = {p["port"] for p in service["spec"]["ports"]}

    def resolves(uri: str) -> bool:
        url = urlparse(uri)
        host = url.hostname.split(".")
        short = host == [service["metadata"]["name"]]  # same namespace: the search path finds it
        qualified = host[:2] == [service["metadata"]["name"], namespace] and host[2:] in ([], ["svc"],
                                                                                          ["svc", "cluster", "local"])
        return url.scheme == "http" and (short or qualified) and url.port in ports

    uris = [yaml.safe_load(load("kuberay/rayjob.yaml")["spec"]["runtimeEnvYAML"])["env_vars"]["MLFLOW_TRACKING_URI"]]
    for name in RAY_MANIFESTS:
        for template, _ in ray_pods(name).values():
            uris += [e["value"] for c in template["spec"]["containers"] for e in c.get("env", [])
                     if e["name"] == "MLFLOW_TRACKING_URI"]
    assert len(uris) > 1 and all(resolves(u) for u in uris), uris


def test_decode_cpus_per_gpu_follow_the_chosen_ratio():
    floor = DECODE_CPUS_PER_GPU * 15 / 16  # 7.5: a pod keeps 30 of a node's 32 vCPUs
    for name in LAUNCHER:
        types = load(name)["available_node_types"].values()
        decode = [t for t in types if t.get("labels", {}).get(ROLE) == "decode"]
        at_start = sum(t["min_workers"] * t["resources"]["CPU"] for t in decode)
        most = sum(t["max_workers"] * t["resources"]["CPU"] for t in decode)
        most_gpus = sum(t.get("max_workers", 0) * t["resources"].get("GPU", 0) for t in types)
        assert at_start >= floor * kinetics_gpus() and most >= floor * most_gpus, name
    for name in RAY_MANIFESTS:
        spec = _cluster_spec(load(name))
        decode = [g for g in spec["workerGroupSpecs"] if g.get("labels", {}).get(ROLE) == "decode"]
        gpus = [g for g in spec["workerGroupSpecs"] if g.get("labels", {}).get(ROLE) == "train"]
        cpus_of = lambda g: cpus(g["template"]["spec"]["containers"][0]["resources"]["requests"]["cpu"])  # noqa: E731
        gpus_of = lambda g: int(g["template"]["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"])  # noqa: E731
        at_start = sum(g["minReplicas"] * cpus_of(g) for g in decode)
        assert at_start >= floor * min(kinetics_gpus(), sum(g["maxReplicas"] * gpus_of(g) for g in gpus)), name


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
    from types import SimpleNamespace

    import torch

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
