"""The two layers every network here is built from: a "same"-padded 3D conv and a 3D BatchNorm.

Kept in one place so that every block initialises them alike (torchvision's ResNet rules)
and a zero-initialised norm means the same thing everywhere: a branch that starts switched off.
"""
from __future__ import annotations

from torch import nn

Triple = tuple[int, int, int]


def triple(value: int | Triple) -> Triple:
    """``3`` -> ``(3, 3, 3)``; a (T, H, W) tuple is returned as one."""
    return (value,) * 3 if isinstance(value, int) else tuple(value)


def video_conv(dim_in: int, dim_out: int, kernel: int | Triple = (1, 1, 1), stride: int | Triple = (1, 1, 1)) -> nn.Conv3d:
    """A bias-free 3D conv with "same" padding, initialised as torchvision's ResNets (Kaiming, fan-out)."""
    kernel = triple(kernel)
    conv = nn.Conv3d(dim_in, dim_out, kernel, triple(stride), tuple(k // 2 for k in kernel), bias=False)
    nn.init.kaiming_normal_(conv.weight, mode="fan_out", nonlinearity="relu")
    return conv


def norm3d(channels: int, *, zero: bool = False) -> nn.BatchNorm3d:
    """A BatchNorm3d; ``zero`` sets gamma = beta = 0, so the branch it ends adds nothing at first."""
    norm = nn.BatchNorm3d(channels)
    if zero:
        nn.init.zeros_(norm.weight)
        nn.init.zeros_(norm.bias)
    return norm
