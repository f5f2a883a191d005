"""S3D and S3D-G: Inception-v1 with separable 3D convolutions, and with feature gating.

Xie, Sun, Huang, Tu, Murphy, "Rethinking Spatiotemporal Feature Learning: Speed-Accuracy
Trade-offs in Video Classification", ECCV 2018.

- Separable 3D conv (``SepConv3d``): a 1 x k x k conv + BN + ReLU, then a k x 1 x 1 conv +
  BN + ReLU (both to the output width), replacing every k x k x k conv of I3D.
- Feature gating (``FeatureGate``, S3D-G): ``y = x * sigmoid(W mean(x) + b)`` with the
  mean over space and time and W a C x C linear map: a self-gate per channel. S3D-G gates
  the output of the stem's two separable convs and of every Inception branch; ``gating``
  turns it on or off (``s3d`` is S3D-G without gates, like torchvision's ``s3d``).
- Layout (I3D / torchvision's ``s3d``): separable 7x7x7 conv at stride 2 (time too), 1x3x3
  max pool, 1x1x1 conv, separable 3x3x3 conv, 1x3x3 pool, Mixed 3b-3c, 3x3x3 pool at
  stride 2, Mixed 4b-4f, 2x2x2 pool at stride 2, Mixed 5b-5c, global average, dropout,
  linear. Each Inception block: 1x1x1 | 1x1x1 -> sep 3x3x3 | 1x1x1 -> sep 3x3x3 |
  3x3x3 max pool -> 1x1x1, concatenated.

Pools round up ("SAME"-style), so any clip length and side works (T = 4 reaches one
frame at Mixed 4 and stays there). ``base_width`` scales every width by base_width / 64
(the paper's first conv has 64 channels). There is no 2D ResNet to inflate from; the paper
starts from ImageNet-trained Inception-v1 weights, which this package does not read.
"""
from __future__ import annotations

from collections import OrderedDict

import torch
from torch import nn

from .errors import ModelError
from .layers import norm3d, video_conv
from .resnet import ClipClassifier

# Inception blocks (branch widths): 1x1 | 1x1 reduce -> 3x3 | 1x1 reduce -> 3x3 | pool -> 1x1.
INCEPTION = (
    ("mixed_3b", (64, 96, 128, 16, 32, 32)),
    ("mixed_3c", (128, 128, 192, 32, 96, 64)),
    ("pool_4a", None),
    ("mixed_4b", (192, 96, 208, 16, 48, 64)),
    ("mixed_4c", (160, 112, 224, 24, 64, 64)),
    ("mixed_4d", (128, 128, 256, 24, 64, 64)),
    ("mixed_4e", (112, 144, 288, 32, 64, 64)),
    ("mixed_4f", (256, 160, 320, 32, 128, 128)),
    ("pool_5a", None),
    ("mixed_5b", (256, 160, 320, 32, 128, 128)),
    ("mixed_5c", (384, 192, 384, 48, 128, 128)),
)


class FeatureGate(nn.Module):
    """Self-gating: ``x * sigmoid(W gavg(x) + b)``, one gate per channel (S3D-G)."""

    def __init__(self, channels: int) -> None:
        super().__init__()
        self.fc = nn.Conv3d(channels, channels, 1)  # a linear map on the pooled (N, C, 1, 1, 1) vector

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * torch.sigmoid(self.fc(x.mean(dim=(2, 3, 4), keepdim=True)))


def _gate(channels: int, gating: bool) -> nn.Module:
    return FeatureGate(channels) if gating else nn.Identity()


def conv_norm_relu(dim_in: int, dim_out: int, kernel=(1, 1, 1), stride=(1, 1, 1)) -> nn.Sequential:
    return nn.Sequential(video_conv(dim_in, dim_out, kernel, stride), norm3d(dim_out), nn.ReLU(inplace=True))


class SepConv3d(nn.Sequential):
    """k x k x k conv as 1 x k x k (spatial stride) then k x 1 x 1 (temporal stride), BN + ReLU after each."""

    def __init__(self, dim_in: int, dim_out: int, kernel: int, stride: int = 1) -> None:
        super().__init__(conv_norm_relu(dim_in, dim_out, (1, kernel, kernel), (1, stride, stride)),
                         conv_norm_relu(dim_out, dim_out, (kernel, 1, 1), (stride, 1, 1)))


class Inception(nn.Module):
    """An S3D Inception block: four branches, each optionally gated, concatenated."""

    def __init__(self, dim_in: int, widths: tuple[int, ...], *, gating: bool) -> None:
        super().__init__()
        b0, b1_reduce, b1, b2_reduce, b2, b3 = widths
        self.branch0 = nn.Sequential(conv_norm_relu(dim_in, b0), _gate(b0, gating))
        self.branch1 = nn.Sequential(conv_norm_relu(dim_in, b1_reduce), SepConv3d(b1_reduce, b1, 3), _gate(b1, gating))
        self.branch2 = nn.Sequential(conv_norm_relu(dim_in, b2_reduce), SepConv3d(b2_reduce, b2, 3), _gate(b2, gating))
        self.branch3 = nn.Sequential(nn.MaxPool3d(3, stride=1, padding=1), conv_norm_relu(dim_in, b3), _gate(b3, gating))
        self.dim_out = b0 + b1 + b2 + b3

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat([self.branch0(x), self.branch1(x), self.branch2(x), self.branch3(x)], dim=1)


class S3D(ClipClassifier):
    """S3D (``gating=False``) or S3D-G (``gating=True``): clips (N, 3, T, H, W) to logits, any T."""

    no_2d_inflation = "S3D is an Inception network; its paper starts from ImageNet Inception-v1 weights"

    def __init__(self, *, num_classes: int = 400, gating: bool = True, base_width: int = 64,
                 dropout: float = 0.0) -> None:
        super().__init__()
        if base_width < 4:
            raise ModelError(f"base_width: {base_width} is too small for S3D's narrowest branch")

        def width(channels: int) -> int:
            return max(1, round(channels * base_width / 64))

        self.gating = gating
        self.stem = nn.Sequential(
            SepConv3d(3, width(64), 7, stride=2), _gate(width(64), gating),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
            conv_norm_relu(width(64), width(64)),
            SepConv3d(width(64), width(192), 3), _gate(width(192), gating),
            nn.MaxPool3d((1, 3, 3), stride=(1, 2, 2), padding=(0, 1, 1)),
        )
        dim_in, layers = width(192), []
        for name, widths in INCEPTION:
            if widths is None:  # 3x3x3 / 2x2x2 pools at stride 2, rounding up
                pool = nn.MaxPool3d(3, stride=2, padding=1) if name == "pool_4a" else nn.MaxPool3d(2, stride=2, ceil_mode=True)
                layers.append((name, pool))
                continue
            block = Inception(dim_in, tuple(width(c) for c in widths), gating=gating)
            layers.append((name, block))
            dim_in = block.dim_out
        self.features = nn.Sequential(OrderedDict(layers))
        self.num_features = dim_in
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(dim_in, num_classes)

    def forward_features(self, clip: torch.Tensor) -> torch.Tensor:
        return self.features(self.stem(clip))
