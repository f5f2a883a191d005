"""One bottleneck whose options give every block of the paper's Fig. 2."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .layers import norm3d, video_conv
from .temporal import NonLocalBlock, make_temporal_module
from .units import ExtraUnit, SmallBigUnit, ViewOptions

EXPANSION = 4


@dataclass(frozen=True)
class BlockSpec:
    """How a bottleneck differs from the 2D one (1x1x1, 1x3x3, 1x1x1).

    ``first_kernel`` (3, 1, 1) gives the inflated 3D block; ``big_views`` names a
    big-view pool for each of the three layers (None = small view only), so
    ``("3x3x3", None, None)`` is Fig. 2d and ``("3x3x3", "3x3x3", "Tx3x3")`` the Typical
    block; ``views`` says how each unit combines its views (Table 6); ``extra_unit`` adds Fig. 2f's context unit (the Full block).
    ``temporal_module`` ("tsm" or "tam") mixes frames at the start of the residual
    branch, before its first conv (the shortcut sees the unmixed input): TSM and TAM blocks.
    """

    first_kernel: tuple[int, int, int] = (1, 1, 1)
    big_views: tuple[str | None, str | None, str | None] = (None, None, None)
    views: ViewOptions = ViewOptions()
    extra_unit: str | None = None
    temporal_module: str | None = None


PLAIN_2D = BlockSpec()


class Bottleneck(nn.Module):
    """ResNet bottleneck (stride on the 1x3x3 conv, as torchvision) built from SmallBig units.

    In a stride-2 block every big-view pool keeps stride 1 and the shared strided conv
    downsamples both views, as in the official code. ``non_local`` appends a non-local
    block to the output (Non-local nets put one after every other block of res3/res4).
    """

    def __init__(self, dim_in: int, dim_inner: int, *, stride: int = 1, spec: BlockSpec = PLAIN_2D,
                 non_local: bool = False) -> None:
        super().__init__()
        dim_out = dim_inner * EXPANSION
        view = {"options": spec.views}
        self.extra = None
        if spec.extra_unit is not None:
            self.extra = ExtraUnit(dim_out if spec.extra_unit == "se" else dim_in, spec.extra_unit,
                                   zero_init=spec.views.zero_init_big_view)
        self.mixer = make_temporal_module(spec.temporal_module, dim_in)
        self.unit1 = SmallBigUnit(dim_in, dim_inner, kernel=spec.first_kernel, big_view=spec.big_views[0], **view)
        self.unit2 = SmallBigUnit(dim_inner, dim_inner, kernel=(1, 3, 3), stride=(1, stride, stride),
                                  big_view=spec.big_views[1], **view)
        self.unit3 = SmallBigUnit(dim_inner, dim_out, big_view=spec.big_views[2], **view)
        self.relu = nn.ReLU(inplace=True)
        self.downsample = None
        if stride != 1 or dim_in != dim_out:
            # torchvision's layout (downsample.0 / downsample.1) so 2D weights load by name.
            self.downsample = nn.Sequential(video_conv(dim_in, dim_out, stride=(1, stride, stride)), norm3d(dim_out))
        self.non_local = NonLocalBlock(dim_out) if non_local else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.extra is not None and not self.extra.on_residual:
            x = self.extra(x)
        out = self.relu(self.unit1(x if self.mixer is None else self.mixer(x)))
        out = self.relu(self.unit2(out))
        out = self.unit3(out)
        if self.extra is not None and self.extra.on_residual:
            out = self.extra(out)
        shortcut = x if self.downsample is None else self.downsample(x)
        out = self.relu(out + shortcut)
        return out if self.non_local is None else self.non_local(out)
