"""An experiment's configuration: nested dataclasses, named presets, YAML and ``a.b=value`` overrides.

Built once in ``run.py`` and passed down as a plain dict (it crosses Ray process
boundaries); only ``smallbig.build_model`` reads the model section.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from .sampling import ClipSpec, clip_spec

AMP_MODES = ("auto", "none", "bf16", "fp16")


@dataclass
class ModelSection:
    name: str = "smallbig_r23_full"
    options: dict = field(default_factory=dict)  # overrides of smallbig.ModelConfig
    channels_last: bool = True
    init_2d: str | None = None  # a 2D ResNet state dict (torchvision key names) to inflate


@dataclass
class SyntheticSection:
    """The built-in temporal benchmark, generated on first use when ``data.path`` is "synthetic"."""

    videos_per_class: int = 30
    size: int = 64
    frames: int = 32
    seed: int = 0


@dataclass
class DataSection:
    path: str = "synthetic"  # a dataset folder (classes.txt, train/val/test.txt) or "synthetic"
    clip: ClipSpec = field(default_factory=ClipSpec)
    batch_size: int = 8  # per training worker
    max_bad_fraction: float = 0.05
    synthetic: SyntheticSection = field(default_factory=SyntheticSection)


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
    amp: str = "auto"  # auto = bf16 on a GPU that has it, else fp16 with a GradScaler; none on CPU

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
    max_failures: int = 1
    checkpoints_to_keep: int = 2
    seed: int = 0
    experiment: str = "smallbig"  # the MLflow experiment


@dataclass
class ExperimentConfig:
    preset: str = "custom"
    model: ModelSection = field(default_factory=ModelSection)
    data: DataSection = field(default_factory=DataSection)
    optim: OptimSection = field(default_factory=OptimSection)
    run: RunSection = field(default_factory=RunSection)

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
                    raise ValueError(f"{source}: {dotted!r}: {'.'.join(keys[:depth + 1])!r} is not a section")
                node = node[key]
            node[keys[-1]] = value
        return ExperimentConfig.from_dict(data, source)


def _to_plain(value):
    if dataclasses.is_dataclass(value):
        return {f.name: _to_plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, tuple):
        return list(value)
    if isinstance(value, dict):
        return {k: _to_plain(v) for k, v in value.items()}
    return value


def _from_plain(cls, data: dict, source: str, path: str = ""):
    if not isinstance(data, dict):
        raise ValueError(f"{source}: {path or 'top level'} must be a mapping, got {type(data).__name__}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        where = f"{path}." if path else ""
        raise ValueError(f"{source}: unknown key(s) {[where + k for k in unknown]}; "
                         f"valid keys{' in ' + path if path else ''}: {sorted(fields)}")
    kwargs = {}
    for name, value in data.items():
        nested = {"model": ModelSection, "data": DataSection, "optim": OptimSection, "run": RunSection,
                  "synthetic": SyntheticSection, "clip": ClipSpec}.get(name)
        if nested is not None and isinstance(value, dict):
            value = _from_plain(nested, value, source, f"{path}.{name}" if path else name)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as error:
        raise ValueError(f"{source}: {path or 'config'}: {error}") from None


def load_yaml(path: str | Path) -> dict:
    with open(path) as handle:
        data = yaml.safe_load(handle) or {}
    if not isinstance(data, dict):
        raise ValueError(f"{path}: expected a mapping at the top level")
    return data


# ------------------------------------------------------------------------------- presets

def _smoke() -> ExperimentConfig:
    """Seconds: a tiny R23 on tiny clips, for tests and for checking a setup end to end."""
    return ExperimentConfig(
        preset="smoke",
        model=ModelSection(name="smallbig_r23_full", channels_last=False),
        data=DataSection(clip=ClipSpec(frames=4, stride=2, crop=32, train_short=(36, 40), eval_short=36,
                                       test_short=36, test_clips=2, test_crops=1),
                         batch_size=4, synthetic=SyntheticSection(videos_per_class=4, size=64, frames=16)),
        optim=OptimSection(lr=0.02, base_batch=8, epochs=2, warmup_epochs=0.5),
    )


def _laptop() -> ExperimentConfig:
    """Minutes on 2 CPU cores: a small R23 (base width 16) at 48x48 on the built-in temporal benchmark.

    Sized so that a six-row grid (Table 4) trains and tests within 30 minutes on 2 cores.
    """
    return ExperimentConfig(
        preset="laptop",
        model=ModelSection(name="smallbig_r23_full", options={"base_width": 16}),
        data=DataSection(clip=clip_spec("synthetic", stride=2, crop=48, train_short=(52, 60), eval_short=52,
                                        test_short=52, flip=False), batch_size=8),
        optim=OptimSection(lr=0.02, base_batch=8, epochs=6, warmup_epochs=1),
    )


def _kinetics() -> ExperimentConfig:
    """The paper's Kinetics-400 recipe (8x8 dense, 224 crops, 110 epochs); for a GPU cluster."""
    return ExperimentConfig(
        preset="kinetics",
        model=ModelSection(name="smallbig_r50_full"),
        data=DataSection(path="", clip=clip_spec("kinetics"), batch_size=16),
        optim=OptimSection(lr=0.00625, base_batch=128, epochs=110, warmup_epochs=5),
        run=RunSection(workers=8, gpus_per_worker=1),
    )


def _ssv2() -> ExperimentConfig:
    """The paper's Something-Something V2 recipe (8 segments, no flip, 50 epochs); for a GPU cluster."""
    return ExperimentConfig(
        preset="ssv2",
        model=ModelSection(name="slowonly_r50_extra"),
        data=DataSection(path="", clip=clip_spec("ssv2"), batch_size=16),
        optim=OptimSection(lr=0.01, base_batch=128, epochs=50, warmup_epochs=1),
        run=RunSection(workers=8, gpus_per_worker=1),
    )


PRESETS = {"smoke": _smoke, "laptop": _laptop, "kinetics": _kinetics, "ssv2": _ssv2}


def preset(name: str) -> ExperimentConfig:
    try:
        return PRESETS[name]()
    except KeyError:
        raise ValueError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None
