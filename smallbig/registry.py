"""Named model variants and the one public builder."""
from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from typing import Callable

from torch import nn

from .config import ModelConfig
from .errors import ModelError, UnknownModel
from .resnet import VideoResNet


@dataclass(frozen=True)
class Entry:
    """A registered variant: a factory plus the options it is built from (when it has a config)."""

    name: str
    factory: Callable[..., nn.Module]
    config: ModelConfig | None
    description: str


_REGISTRY: dict[str, Entry] = {}


def register_config(name: str, config: ModelConfig, description: str = "") -> None:
    """Register a variant of the video ResNet family that is fully described by ``config``."""
    _add(Entry(name, _build_video_resnet, config, description))


def register_model(name: str, description: str = "") -> Callable:
    """Decorator for families with their own builder (peers): ``factory(num_classes, num_frames, **options)``."""

    def wrap(factory: Callable[..., nn.Module]) -> Callable[..., nn.Module]:
        _add(Entry(name, factory, None, description or (factory.__doc__ or "").strip().split("\n")[0]))
        return factory

    return wrap


def _add(entry: Entry) -> None:
    if entry.name in _REGISTRY:
        raise ValueError(f"model {entry.name!r} is registered twice")
    _REGISTRY[entry.name] = entry


def list_models(pattern: str = "*") -> list[str]:
    """Registered names matching a shell-style pattern, e.g. ``list_models("smallbig_r23_*")``."""
    return sorted(n for n in _REGISTRY if fnmatch.fnmatch(n, pattern))


def get_entry(name: str) -> Entry:
    try:
        return _REGISTRY[name]
    except KeyError:
        close = [n for n in _REGISTRY if name.split("_")[0] in n][:8]
        raise UnknownModel(f"unknown model {name!r}; e.g. {close or list_models()[:8]} (see list_models())") from None


def model_config(name: str, **options) -> ModelConfig:
    """The options a registered variant is built from, with ``options`` overriding them."""
    entry = get_entry(name)
    if entry.config is None:
        raise ModelError(f"model {name!r} is not a configurable video ResNet")
    return entry.config.replace(**options)


def _build_video_resnet(config: ModelConfig, *, num_classes: int, num_frames: int) -> VideoResNet:
    model = VideoResNet(config.stages(), num_classes=num_classes, dropout=config.dropout)
    model.config = config
    return model


def build_model(name: str, *, num_classes: int = 400, num_frames: int = 8, **options) -> nn.Module:
    """Build a registered model; ``options`` override its configuration (see ``ModelConfig``).

    Models take clips (N, 3, T, H, W) for any T; ``num_frames`` is the clip length the
    model is meant for (recorded as ``model.num_frames`` and used by FLOP counting).
    """
    entry = get_entry(name)
    if entry.config is not None:
        model = _build_video_resnet(entry.config.replace(**options), num_classes=num_classes, num_frames=num_frames)
    else:
        model = entry.factory(num_classes=num_classes, num_frames=num_frames, **options)
    model.name = name
    model.num_frames = num_frames
    return model
