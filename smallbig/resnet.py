"""The video ResNet backbone of Table 1: a stem, four stages of bottlenecks, a linear head."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .blocks import EXPANSION, PLAIN_2D, BlockSpec, Bottleneck
from .errors import ModelError
from .layers import norm3d, video_conv

STAGES = ("res2", "res3", "res4", "res5")
WIDTHS = (64, 128, 256, 512)
DEPTHS = {23: (1, 2, 3, 1), 50: (3, 4, 6, 3), 101: (3, 4, 23, 3)}


@dataclass(frozen=True)
class StageSpec:
    """One stage: ``blocks`` bottlenecks of inner width ``width``, the first with ``stride``.

    ``nonlocal_every`` = k > 0 puts a non-local block after every k-th bottleneck (blocks
    k-1, 2k-1, ...): 2 is the Non-local paper's "every other residual block".
    """

    blocks: int
    width: int
    stride: int
    block: BlockSpec = PLAIN_2D
    nonlocal_every: int = 0

    def has_non_local(self, index: int) -> bool:
        return self.nonlocal_every > 0 and index % self.nonlocal_every == self.nonlocal_every - 1


def resnet_stages(depth: int, blocks: dict[str, BlockSpec] | None = None, base_width: int = 64,
                  nonlocal_every: dict[str, int] | None = None) -> list[StageSpec]:
    """Stage specs for R23/R50/R101; ``blocks`` maps a stage name (res2..res5) to its block,
    ``nonlocal_every`` a stage name to its non-local spacing (see ``StageSpec``)."""
    if depth not in DEPTHS:
        raise ModelError(f"depth {depth}: expected one of {sorted(DEPTHS)}")
    blocks, nonlocal_every = blocks or {}, nonlocal_every or {}
    unknown = (set(blocks) | set(nonlocal_every)) - set(STAGES)
    if unknown:
        raise ModelError(f"unknown stage(s) {sorted(unknown)}: expected names from {STAGES}")
    return [
        StageSpec(n, width * base_width // WIDTHS[0], 1 if name == "res2" else 2, blocks.get(name, PLAIN_2D),
                  nonlocal_every.get(name, 0))
        for name, n, width in zip(STAGES, DEPTHS[depth], WIDTHS)
    ]


class Stem(nn.Module):
    """1x7x7 conv at stride 1x2x2, BN, ReLU and a 1x3x3 max pool at stride 1x2x2: no temporal striding."""

    def __init__(self, dim_out: int = 64, *, max_pool: bool = True) -> None:
        super().__init__()
        self.conv = video_conv(3, dim_out, (1, 7, 7), (1, 2, 2))
        self.norm = norm3d(dim_out)
        self.relu = nn.ReLU(inplace=True)
        self.pool = nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)) if max_pool else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.pool(self.relu(self.norm(self.conv(x))))


class ClipClassifier(nn.Module):
    """Shared by every model here: ``forward_features`` (subclass), then global average, dropout, ``fc``."""

    dropout: nn.Dropout
    fc: nn.Linear

    def forward_features(self, clip: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward_head(self, features: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(features.mean(dim=(2, 3, 4))))

    def forward(self, clip: torch.Tensor) -> torch.Tensor:
        if clip.dim() != 5:
            raise ValueError(f"expected clips shaped (N, C, T, H, W), got {tuple(clip.shape)}")
        return self.forward_head(self.forward_features(clip))


class VideoResNet(ClipClassifier):
    """A video ResNet taking clips (N, 3, T, H, W) to logits (N, num_classes), for any T.

    The stages are ``layer1``..``layer4`` (the paper's res2..res5) and the classifier
    is ``fc``, as in torchvision, so 2D checkpoints map onto it by name.
    """

    def __init__(self, stages: list[StageSpec], *, num_classes: int = 400, dropout: float = 0.0) -> None:
        super().__init__()
        dim_in = stages[0].width
        self.stem = Stem(dim_in)
        for index, stage in enumerate(stages, start=1):
            blocks = []
            for i in range(stage.blocks):
                blocks.append(Bottleneck(dim_in, stage.width, stride=stage.stride if i == 0 else 1, spec=stage.block,
                                         non_local=stage.has_non_local(i)))
                dim_in = stage.width * EXPANSION
            self.add_module(f"layer{index}", nn.Sequential(*blocks))
        self.num_features = dim_in
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(dim_in, num_classes)

    @property
    def stages(self) -> list[nn.Sequential]:
        return [self.layer1, self.layer2, self.layer3, self.layer4]

    def forward_features(self, clip: torch.Tensor) -> torch.Tensor:
        """Feature maps (N, C, T, H', W') of the last stage."""
        x = self.stem(clip)
        for stage in self.stages:
            x = stage(x)
        return x
