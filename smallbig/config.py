"""Model options as one flat, YAML-friendly dataclass; the builder turns it into stage specs."""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from .blocks import BlockSpec
from .errors import ModelError
from .pools import POOL_TYPES, PoolSize
from .resnet import DEPTHS, STAGES, StageSpec, resnet_stages
from .temporal import TEMPORAL_MODULES
from .units import EXTRA_UNIT_FORMS, NORM_MODES, ViewOptions

ALL_SMALLBIG_STAGES = ("res3", "res4", "res5")  # the official code keeps res2 a 2D stage


def _stage_tuple(name: str, value) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        value = [v for v in value.replace(" ", "").split(",") if v]
    stages = tuple(value)
    bad = [s for s in stages if s not in STAGES]
    if bad:
        raise ModelError(f"{name}: unknown stage(s) {bad}; expected names from {STAGES}")
    return stages


def _big_views(value) -> tuple[str | None, str | None, str | None]:
    if isinstance(value, str):
        value = value.replace(" ", "").split(",")
    views = tuple(None if v in (None, "", "none", "None", "-") else str(PoolSize.parse(v)) for v in value)
    if len(views) != 3:
        raise ModelError(f"big_views: expected one entry per bottleneck layer (3), got {len(views)}")
    return views


@dataclass(frozen=True)
class ModelConfig:
    """Everything that shapes a video ResNet of this family; registry entries are instances.

    - ``smallbig_stages``: stages (res2..res5) whose blocks are SmallBig blocks.
    - ``big_views``: the big-view pool of each bottleneck layer in those stages
      (``"3x3x3"``, ``"Tx3x3"`` = whole clip, or None); Fig. 2c-e.
    - ``temporal_stages`` / ``temporal_kernel``: stages whose first conv is inflated to
      ``temporal_kernel`` x 1 x 1 (the 3D baseline; with SmallBig, a temporal shared conv).
    - ``extra_unit`` on ``extra_unit_stages`` (default: the SmallBig stages): Fig. 2f.
    - ``temporal_module`` ("tsm" = temporal shift, "tam" = temporal aggregation) at the start
      of the residual branch of every block in ``temporal_module_stages`` (default: all four).
    - ``nonlocal_stages``: a non-local block after every ``nonlocal_every``-th block there.
    """

    depth: int = 23
    base_width: int = 64  # inner width of res2; res3-res5 double it (32 gives a 4x cheaper "small" net)
    smallbig_stages: tuple[str, ...] = ()
    big_views: tuple[str | None, str | None, str | None] = ("3x3x3", None, None)
    pool_type: str = "max"
    share_conv: bool = True
    norm: str = "individual"
    zero_init_big_view: bool = True
    temporal_stages: tuple[str, ...] = ()
    temporal_kernel: int = 3
    extra_unit: str | None = None
    extra_unit_stages: tuple[str, ...] | None = None
    temporal_module: str | None = None
    temporal_module_stages: tuple[str, ...] = STAGES
    nonlocal_stages: tuple[str, ...] = ()
    nonlocal_every: int = 2
    dropout: float = 0.0

    def __post_init__(self) -> None:
        def put(name, value):
            object.__setattr__(self, name, value)

        if self.depth not in DEPTHS:
            raise ModelError(f"depth: {self.depth} is not one of {sorted(DEPTHS)}")
        put("smallbig_stages", _stage_tuple("smallbig_stages", self.smallbig_stages))
        put("temporal_stages", _stage_tuple("temporal_stages", self.temporal_stages))
        put("temporal_module_stages", _stage_tuple("temporal_module_stages", self.temporal_module_stages))
        put("nonlocal_stages", _stage_tuple("nonlocal_stages", self.nonlocal_stages))
        if self.extra_unit_stages is not None:
            put("extra_unit_stages", _stage_tuple("extra_unit_stages", self.extra_unit_stages))
        put("big_views", _big_views(self.big_views))
        for name in ("extra_unit", "temporal_module"):
            if getattr(self, name) in ("none", "None", ""):
                put(name, None)
        checks = [("pool_type", self.pool_type, POOL_TYPES), ("norm", self.norm, NORM_MODES),
                  ("extra_unit", self.extra_unit, (None,) + EXTRA_UNIT_FORMS),
                  ("temporal_module", self.temporal_module, (None,) + TEMPORAL_MODULES)]
        for name, value, allowed in checks:
            if value not in allowed:
                raise ModelError(f"{name}: {value!r} is not one of {allowed}")
        if self.base_width < 4:
            raise ModelError(f"base_width: {self.base_width} is too small (the extra unit divides by 4)")
        if self.temporal_kernel < 1 or self.temporal_kernel % 2 == 0:
            raise ModelError(f"temporal_kernel: {self.temporal_kernel} must be a positive odd number")
        if self.nonlocal_every < 1:
            raise ModelError(f"nonlocal_every: {self.nonlocal_every} must be at least 1")

    @classmethod
    def option_names(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def replace(self, **overrides) -> "ModelConfig":
        """A copy with some options changed; unknown option names are an error that lists the valid ones."""
        unknown = sorted(set(overrides) - set(self.option_names()))
        if unknown:
            raise ModelError(f"unknown model option(s) {unknown}; valid options: {self.option_names()}")
        return dataclasses.replace(self, **overrides)

    def to_dict(self) -> dict:
        return {k: (list(v) if isinstance(v, tuple) else v) for k, v in dataclasses.asdict(self).items()}

    def view_options(self) -> ViewOptions:
        """The Table 6 options, flat here for YAML, as the units take them."""
        return ViewOptions(self.pool_type, self.share_conv, self.norm, self.zero_init_big_view)

    def block_for(self, stage: str) -> BlockSpec:
        smallbig = stage in self.smallbig_stages
        extra_stages = self.smallbig_stages if self.extra_unit_stages is None else self.extra_unit_stages
        return BlockSpec(
            first_kernel=(self.temporal_kernel, 1, 1) if stage in self.temporal_stages else (1, 1, 1),
            big_views=self.big_views if smallbig else (None, None, None),
            views=self.view_options(),
            extra_unit=self.extra_unit if stage in extra_stages else None,
            temporal_module=self.temporal_module if stage in self.temporal_module_stages else None,
        )

    def stages(self) -> list[StageSpec]:
        return resnet_stages(self.depth, {name: self.block_for(name) for name in STAGES}, self.base_width,
                             {name: self.nonlocal_every for name in self.nonlocal_stages})
