"""Named starting points: experiment presets (``--preset``) and the papers' clip recipes.

A preset is a whole :class:`~pipelines.config.ExperimentConfig`; flags, a YAML file and
``--set`` overrides are applied over it. The clip recipes are the data half of each paper's
training recipe (:func:`clip_spec`).
"""
from __future__ import annotations

import dataclasses

from .config import DataSection, ExperimentConfig, ModelSection, OptimSection, RunSection
from .data.sampling import ClipSpec
from .data.synthetic import SyntheticSpec, flip_label_map
from .errors import UsageError


def clip_spec(preset: str, **overrides) -> ClipSpec:
    """The papers' recipes as data; keyword overrides win (``clip_spec("kinetics", frames=16)``).

    - ``kinetics``: dense 8x8, short side 256-320, 224 crop, flip; test 10 clips x 3 crops at 256.
    - ``ssv2``: 8 segments, no flip (pass ``flip=True, flip_label_map=left_right_swap(classes)``
      to flip with label swaps); test 2 clips x 3 crops at 256.
    - ``synthetic``: the built-in benchmark (32 px, 16 frames): dense 8x2 covers the whole video,
      short side 32-36, 28 crop, flip with slide/rotation label swaps; test 1 clip x 1 centre crop
      (one clip already sees every frame).
    """
    if preset == "kinetics":
        base = ClipSpec(frames=8, sampler="dense", stride=8, crop=224, train_short=(256, 320), eval_short=256,
                        test_short=256, test_clips=10, test_crops=3, flip=True)
    elif preset == "ssv2":
        base = ClipSpec(frames=8, sampler="segment", crop=224, train_short=(256, 320), eval_short=256,
                        test_short=256, test_clips=2, test_crops=3, flip=False)
    elif preset == "synthetic":
        base = ClipSpec(frames=8, sampler="dense", stride=2, crop=28, train_short=(32, 36), eval_short=32,
                        test_short=32, test_clips=1, test_crops=1, flip=True, flip_label_map=flip_label_map())
    else:
        raise UsageError(f"unknown clip preset {preset!r}; expected kinetics, ssv2 or synthetic")
    return dataclasses.replace(base, **overrides) if overrides else base


def _smoke() -> ExperimentConfig:
    """Seconds: a tiny R23 on tiny clips, for tests and for checking a setup end to end."""
    return ExperimentConfig(
        preset="smoke",
        model=ModelSection(name="smallbig_r23_full", channels_last=False),
        data=DataSection(clip=ClipSpec(frames=4, stride=2, crop=32, train_short=(36, 40), eval_short=36,
                                       test_short=36, test_clips=2, test_crops=1),
                         batch_size=4, synthetic=SyntheticSpec(videos_per_class=4, size=64, frames=16)),
        optim=OptimSection(lr=0.02, base_batch=8, epochs=2, warmup_epochs=0.5),
    )


# The benchmark the laptop preset resolves: 50 training videos per class learn the plain
# scene within a dozen epochs, and 42 test videos per class (798 in all) hold the 95% interval
# on overall top-1 within +-3.5 points (the widest, at 50%, is +-3.4).
LAPTOP_BENCHMARK = SyntheticSpec(videos_per_class=97, size=32, frames=16, val_per_class=5, test_per_class=42)


def _laptop() -> ExperimentConfig:
    """Minutes on 2 CPU cores: a small R23 (base width 16) on 8x28x28 clips of the built-in benchmark.

    Calibrated on learning curves so that the default grid (Table 4, six rows) trains, tests
    and separates its rows beyond noise within 15 minutes on 2 cores (docs/results.md).
    """
    return ExperimentConfig(
        preset="laptop",
        model=ModelSection(name="smallbig_r23_full", options={"base_width": 16}),
        data=DataSection(clip=clip_spec("synthetic", flip=False), batch_size=8, cache="memory",
                         synthetic=LAPTOP_BENCHMARK),
        optim=OptimSection(lr=0.05, base_batch=8, epochs=12, warmup_epochs=1),
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
        raise UsageError(f"unknown preset {name!r}; choose one of {sorted(PRESETS)}") from None
