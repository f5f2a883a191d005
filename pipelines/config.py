"""An experiment's configuration: nested dataclasses, YAML files, ``a.b=value`` overrides, CLI flags.

Built once (``run.py``, from a preset in ``pipelines.presets``) and passed down as a plain
dict, since it crosses Ray process boundaries; only ``smallbig.build_model`` reads the model
section. Unknown keys are errors that list the valid ones, wherever they come from.
"""
from __future__ import annotations

import argparse
import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .data.cache import CACHE_MODES
from .data.sampling import ClipSpec
from .data.synthetic import SyntheticSpec
from .errors import UsageError

AMP_MODES = ("auto", "none", "bf16", "fp16")


def _check_choice(name: str, value: Any, choices: tuple[str, ...]) -> None:
    """An enumerated field takes one of its values, checked when the config is built (a typo
    must stop the run, not quietly pick another branch)."""
    if value not in choices:
        raise UsageError(f"{name} {value!r}: expected one of {', '.join(choices)}")


@dataclass
class ModelSection:
    name: str = "smallbig_r23_full"
    options: dict = field(default_factory=dict)  # overrides of smallbig.ModelConfig
    channels_last: bool = True
    init_2d: str | None = None  # a 2D ResNet state dict (torchvision key names) to inflate
    compile: bool = False  # torch.compile the model in each worker (off until measured to help)


@dataclass
class DataSection:
    path: str = "synthetic"  # a dataset folder (classes.txt, train/val/test.txt) or "synthetic"
    clip: ClipSpec = field(default_factory=ClipSpec)
    batch_size: int = 8  # per training worker
    cache: str = "auto"  # decoded clips in Ray's object store: auto (when they fit), memory, none
    max_bad_fraction: float = 0.05
    synthetic: SyntheticSpec = field(default_factory=SyntheticSpec)  # the built-in benchmark's size

    def __post_init__(self) -> None:
        _check_choice("cache", self.cache, CACHE_MODES)


@dataclass
class OptimSection:
    """SGD with a cosine schedule and linear warmup; ``lr`` is for ``base_batch`` clips."""

    lr: float = 0.02
    base_batch: int = 128
    momentum: float = 0.9
    weight_decay: float = 1e-4
    epochs: int = 110
    warmup_epochs: float = 1.0
    label_smoothing: float = 0.0
    amp: str = "auto"  # auto: bf16 on a GPU that has it, else fp16 with a GradScaler; full precision on CPU

    def __post_init__(self) -> None:
        _check_choice("amp", self.amp, AMP_MODES)

    def scaled_lr(self, global_batch: int) -> float:
        """The linear scaling rule: lr grows with the global batch."""
        return self.lr * global_batch / self.base_batch


@dataclass
class RunSection:
    name: str | None = None  # same name = resume; never put a timestamp here
    storage: str = "runs"  # a folder (made absolute) or a URI (s3://, gs://) on a cluster
    workers: int = 1
    gpus_per_worker: float = 0.0
    cpus_per_worker: float | None = None  # None: derived from the cluster, leaving room to decode
    # torch's CPU threads per training worker and for the test. Fixed, not sized to the CPUs a run
    # is given: CPU kernels sum in an order set by the thread count, so a lone run and a sweep
    # trial (or two machines) would otherwise train different numbers from the same seed.
    threads: int = 1
    max_failures: int = 1
    checkpoints_to_keep: int = 2
    seed: int = 0
    experiment: str = "smallbig"  # the MLflow experiment

    def __post_init__(self) -> None:
        if not isinstance(self.threads, int) or self.threads < 1:
            raise UsageError(f"threads {self.threads!r}: expected an integer >= 1")


@dataclass
class ClusterSection:
    """What a cluster's nodes ask of a run beyond CPUs and GPUs.

    ``worker_resources``: custom resources each training worker (and each test task, which is
    sized like one) asks for, e.g. ``{"accelerator_type:H100": 0.001}`` to train only on H100
    nodes, or the resource an autoscaler's node type offers so that the trials' requests are
    what brings those nodes up.
    """

    worker_resources: dict = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not isinstance(self.worker_resources, dict):
            raise UsageError(f"worker_resources {self.worker_resources!r}: expected a mapping "
                             "{resource name: amount per worker}")
        for name, amount in self.worker_resources.items():
            if name in ("CPU", "GPU") or not isinstance(amount, (int, float)) or amount <= 0:
                raise UsageError(f"worker_resources[{name!r}] = {amount!r}: expected a custom resource "
                                 "(CPU and GPU have their own run.* fields) and an amount > 0")


@dataclass
class ExperimentConfig:
    preset: str = "custom"
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    run: RunSection = field(default_factory=RunSection)
    cluster: ClusterSection = field(default_factory=ClusterSection)

    def to_dict(self) -> dict:
        return _to_plain(self)

    @classmethod
    def from_dict(cls, data: dict, source: str = "config") -> "ExperimentConfig":
        return _from_plain(cls, data, source)

    def with_overrides(self, overrides: dict[str, Any], source: str = "--set") -> "ExperimentConfig":
        """Apply ``{"optim.lr": 0.1, "model.options.pool_type": "avg"}``; unknown keys are errors."""
        data = self.to_dict()
        for dotted, value in overrides.items():
            node, keys = data, dotted.split(".")
            for depth, key in enumerate(keys[:-1]):
                if not isinstance(node.get(key), dict):
                    raise UsageError(f"{source}: {dotted!r}: {'.'.join(keys[:depth + 1])!r} is not a section")
                node = node[key]
            node[keys[-1]] = value
        return ExperimentConfig.from_dict(data, source)


def qualify(key: str) -> str:
    """The rule for short override keys: one without a dot is a model option (``pool_type`` ->
    ``model.options.pool_type``); one with a dot names any experiment field (``optim.lr``)."""
    return key if "." in key else f"model.options.{key}"


def _to_plain(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    return value


def _from_plain(cls, data: dict, source: str, path: str = ""):
    """``cls`` from nested dicts; a field whose type is a dataclass is built from its dict in turn."""
    if not isinstance(data, dict):
        raise UsageError(f"{source}: {path or 'top level'} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{path}." if path else ""
        raise UsageError(f"{source}: unknown key(s) {[where + k for k in unknown]}; "
                         f"valid keys{' in ' + path if path else ''}: {sorted(fields)}")
    hints = typing.get_type_hints(cls)
    kwargs = {}
    for name, value in data.items():
        if dataclasses.is_dataclass(hints[name]) and isinstance(value, dict):
            value = _from_plain(hints[name], value, source, f"{path}.{name}" if path else name)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise UsageError(f"{source}: {path or 'config'}: {error}") from None


def load_yaml(path: str | Path) -> dict:
    """A YAML file of experiment fields (nested like the dataclasses), as flat dotted keys."""
    import yaml

    try:
        with open(path) as handle:
            data = yaml.safe_load(handle) or {}
    except yaml.YAMLError as error:
        raise UsageError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: expected a mapping at the top level")
    return _dotted(data)


def _dotted(tree: dict, prefix: str = "") -> dict:
    flat = {}
    for key, value in tree.items():
        if isinstance(value, dict) and key != "options":
            flat.update(_dotted(value, f"{prefix}{key}."))
        else:
            flat[f"{prefix}{key}"] = value
    return flat


def parse_overrides(pairs: list[str] | None) -> dict[str, Any]:
    """``key=value`` pairs; values are read as YAML (``3``, ``true``, ``[3x3x3, null, null]``)."""
    import yaml

    options = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--set {pair!r}: expected key=value")
        options[key.strip()] = yaml.safe_load(value)
    return options


# ------------------------------------------------------------------------------- command line

@dataclass(frozen=True)
class Flag:
    """A command-line flag that sets one experiment field; its type is the field's."""

    option: str  # "--workers"
    field: str  # "run.workers"
    help: str


EXPERIMENT_FLAGS = (
    Flag("--model", "model.name", "a registered model (see `run.py models`; default: the preset's)"),
    Flag("--data", "data.path", "a dataset folder, or 'synthetic' (the built-in benchmark)"),
    Flag("--epochs", "optim.epochs", "training epochs"),
    Flag("--workers", "run.workers", "Ray Train workers (per trial in a sweep)"),
    Flag("--gpus-per-worker", "run.gpus_per_worker", "GPUs per training worker"),
    Flag("--name", "run.name", "run name; the same name resumes from the last checkpoint"),
    Flag("--init-2d", "model.init_2d", "a 2D ResNet state dict (torchvision names) to inflate"),
    Flag("--storage", "run.storage", "folder or URI for checkpoints, results and the MLflow store (default: runs)"),
    Flag("--compile", "model.compile", "torch.compile the model inside each training worker"),
)


def _field_type(dotted: str) -> type:
    value: Any = ExperimentConfig()
    for key in dotted.split("."):
        value = getattr(value, key)
    return type(value) if isinstance(value, (bool, int, float)) else str


def add_experiment_flags(parser: argparse.ArgumentParser, presets: list[str], *,
                         skip: tuple[str, ...] = ()) -> None:
    """``--preset``, ``--config``, ``--set`` and every :data:`EXPERIMENT_FLAGS` flag not in ``skip``."""
    parser.add_argument("--preset", default="laptop", choices=presets)
    parser.add_argument("--config", help="a YAML file of experiment fields, applied over the preset")
    parser.add_argument("--set", action="append", metavar="KEY=VALUE",
                        help="a model option (pool_type=avg) or any experiment field (optim.lr=0.1)")
    for flag in EXPERIMENT_FLAGS:
        if flag.option in skip:
            continue
        kind = _field_type(flag.field)
        if kind is bool:  # a switch: absent leaves the preset's value
            parser.add_argument(flag.option, action="store_true", default=None, help=flag.help)
        else:
            parser.add_argument(flag.option, type=kind, help=flag.help)


def experiment_from_args(args: argparse.Namespace, base: ExperimentConfig) -> ExperimentConfig:
    """``base`` (the preset) + the ``--config`` file + flags + ``--set`` overrides, in that order."""
    config = base
    if getattr(args, "config", None):
        config = config.with_overrides(load_yaml(args.config), source=args.config)
    overrides = {}
    for flag in EXPERIMENT_FLAGS:
        value = getattr(args, flag.option.lstrip("-").replace("-", "_"), None)
        if value is not None:
            overrides[flag.field] = value
    for key, value in parse_overrides(getattr(args, "set", None)).items():
        overrides[qualify(key)] = value
    return config.with_overrides(overrides)
