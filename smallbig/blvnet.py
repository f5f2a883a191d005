"""bLVNet-TAM: a Big-Little video network with temporal aggregation.

Fan, Chen, Kuehne, Pistoia, Cox, "More Is Less: Learning Efficient Video Representations
by Big-Little Network and Depthwise Temporal Aggregation", NeurIPS 2019; the backbone is
Big-Little Net (Chen et al., ICLR 2019) with alpha = 2 (the little branch is 1/alpha as
wide) and beta = 4 (it is ~1/beta as deep).

Layout, following the released code:
- stem: 1x7x7 conv at stride 1x2x2 + BN + ReLU (no max pool);
- ``layer0``: TAM over the clip, then **odd frames** go through the big branch (one 1x3x3
  conv at stride 2: half resolution, full width) and **even frames** through the little
  branch (1x3x3 convs at width C/alpha, full resolution, then stride 2, 1x1 back to C);
  frame 2k+1's big features are added to frame 2k's little ones: T/2 merged frames;
- ``layer1``-``layer3`` (res2-res4), one bL stage each: TAM over the merged frames, then a
  big branch (max(1, n-1) bottlenecks, the first at stride 2, upsampled back) and a little
  branch (max(1, n // beta - 1) bottlenecks of width C/alpha, then 1x1 conv + BN to C) on
  the same frames, summed, ReLU, and one fusion bottleneck (stride 2, 2, 1);
- ``layer4`` (res5): plain bottlenecks at stride 2 with TAM at the start of every residual
  branch; global average pool, dropout, linear.

Simplifications (stated, not hidden): after each merge the released code copies every
merged frame back into both of its slots and applies TAM to that length-T sequence; we keep
the T/2 merged frames and apply TAM to them (the same aggregation, with the weights not
split between two copies). Bottlenecks are this package's (a strided 1x1 conv shortcut where
the released code average-pools then convolves; same MACs), and every block ends in ReLU
(the released big branch drops its last one before the merge). TAM's residual mixer leaves
the shortcut unmixed (the released code feeds mixed input to a projecting shortcut).
The clip length must be even (frames are paired).
"""
from __future__ import annotations

import re

import torch
import torch.nn.functional as F
from torch import nn

from .blocks import EXPANSION, BlockSpec, Bottleneck
from .errors import ModelError
from .layers import norm3d, video_conv
from .resnet import DEPTHS, WIDTHS, ClipClassifier, Stem
from .temporal import TemporalAggregation

TAM_BLOCK = BlockSpec(temporal_module="tam")


def _conv_norm(dim_in: int, dim_out: int, kernel=(1, 1, 1), stride=(1, 1, 1), relu: bool = False) -> nn.Sequential:
    layers = [video_conv(dim_in, dim_out, kernel, stride), norm3d(dim_out)]
    return nn.Sequential(*layers, nn.ReLU(inplace=True)) if relu else nn.Sequential(*layers)


def _bottlenecks(dim_in: int, width: int, count: int, stride: int = 1, spec: BlockSpec = BlockSpec()) -> nn.Sequential:
    blocks = [Bottleneck(dim_in, width, stride=stride, spec=spec)]
    blocks += [Bottleneck(width * EXPANSION, width, spec=spec) for _ in range(count - 1)]
    return nn.Sequential(*blocks)


class BigLittleStem(nn.Module):
    """``layer0``: TAM, odd frames big (stride-2 conv), even frames little, merged in pairs."""

    def __init__(self, width: int, alpha: int) -> None:
        super().__init__()
        little = max(1, width // alpha)
        self.tam = TemporalAggregation(width)
        self.big = _conv_norm(width, width, (1, 3, 3), (1, 2, 2))
        self.little = nn.Sequential(
            _conv_norm(width, little, (1, 3, 3), relu=True),
            _conv_norm(little, little, (1, 3, 3), (1, 2, 2), relu=True),
            _conv_norm(little, width))
        self.merge = _conv_norm(width, width, relu=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[2] % 2:
            raise ValueError(f"bLVNet pairs odd and even frames: the clip length must be even, got {x.shape[2]}")
        x = self.tam(x)
        big, little = self.big(x[:, :, 1::2]), self.little(x[:, :, 0::2])
        return self.merge(F.relu(big + little))


class BigLittleStage(nn.Module):
    """One bL stage: TAM, a deep half-resolution big branch and a thin full-resolution little one."""

    def __init__(self, dim_in: int, width: int, blocks: int, *, alpha: int, beta: int, stride: int) -> None:
        super().__init__()
        dim_out = width * EXPANSION
        little = max(1, width // alpha)
        self.tam = TemporalAggregation(dim_in)
        self.big = _bottlenecks(dim_in, width, max(1, blocks - 1), stride=2)
        self.little = _bottlenecks(dim_in, little, max(1, blocks // beta - 1))
        self.little_out = _conv_norm(little * EXPANSION, dim_out)
        self.fusion = Bottleneck(dim_out, width, stride=stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.tam(x)
        little = self.little_out(self.little(x))
        big = F.interpolate(self.big(x), size=little.shape[2:], mode="nearest")
        return self.fusion(F.relu(big + little))


class BigLittleVideoNet(ClipClassifier):
    """bLVNet-TAM on an R23/R50/R101 layout: clips (N, 3, T, H, W), T even, to logits.

    Loads a torchvision-format 2D ResNet with ``load_2d_weights``: the stem, each bL stage's
    big branch and fusion block (together as many bottlenecks as the ResNet stage: big branch
    = its first n-1 blocks, fusion = block n-1; a one-block stage fills its big branch) and
    res5 take the ResNet's weights; the bL stem, the little branches, TAM and projecting
    shortcuts the ResNet block lacks keep their initialisation, and the report lists them.
    (The paper starts from an ImageNet-trained bLResNet-50 instead, not readable here.)
    """

    def __init__(self, depth: int = 50, *, num_classes: int = 400, base_width: int = 64, alpha: int = 2,
                 beta: int = 4, dropout: float = 0.0) -> None:
        super().__init__()
        if depth not in DEPTHS:
            raise ModelError(f"depth {depth}: expected one of {sorted(DEPTHS)}")
        widths = [w * base_width // WIDTHS[0] for w in WIDTHS]
        self.depth, self.blocks = depth, DEPTHS[depth]
        self.stem = Stem(widths[0], max_pool=False)
        self.layer0 = BigLittleStem(widths[0], alpha)
        dim_in = widths[0]
        for index, (n, width, stride) in enumerate(zip(self.blocks[:3], widths[:3], (2, 2, 1)), start=1):
            self.add_module(f"layer{index}", BigLittleStage(dim_in, width, n, alpha=alpha, beta=beta, stride=stride))
            dim_in = width * EXPANSION
        self.layer4 = _bottlenecks(dim_in, widths[3], self.blocks[3], stride=2, spec=TAM_BLOCK)
        single = "".join(f"|^layer{i}\\.fusion\\." for i, n in enumerate(self.blocks[:3], start=1) if n == 1)
        # What a 2D ResNet does not fill (see the class docstring).
        self.new_2d_parts = re.compile(r"^layer0\.|\.little|\.tam\.|\.mixer\.|\.fusion\.downsample\." + single)
        self.num_features = widths[3] * EXPANSION
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(self.num_features, num_classes)

    def forward_features(self, clip: torch.Tensor) -> torch.Tensor:
        x = self.layer0(self.stem(clip))
        for stage in (self.layer1, self.layer2, self.layer3, self.layer4):
            x = stage(x)
        return x

    def map_2d_key(self, key: str) -> str | None:
        """Where a 2D ResNet tensor (already in ``VideoResNet`` names) goes; None: deeper than this net."""
        match = re.match(r"^layer([123])\.(\d+)\.(.*)$", key)
        if not match:
            return key
        stage, block, rest = int(match.group(1)), int(match.group(2)), match.group(3)
        n = self.blocks[stage - 1]
        if block >= n:
            return None
        if block == n - 1 and n > 1:
            return f"layer{stage}.fusion.{rest}"
        return f"layer{stage}.big.{block}.{rest}"
