"""Temporal and context modules of the peers, each usable in any block of the family.

- ``TemporalShift`` (TSM; Lin, Gan, Han, "TSM: Temporal Shift Module for Efficient Video
  Understanding", ICCV 2019): move a fraction of the channels one frame back and as many
  one frame forward, zero padded; no parameters, no multiply-adds.
- ``TemporalAggregation`` (TAM; Fan, Chen, Kuehne, Pistoia, Cox, "More Is Less: Learning
  Efficient Video Representations by Big-Little Network and Depthwise Temporal
  Aggregation", NeurIPS 2019): per channel, a weighted sum of the previous, current and
  next frame (zero padded), then ReLU.
- ``NonLocalBlock`` (Wang, Girshick, Gupta, He, "Non-local Neural Networks", CVPR 2018):
  embedded-Gaussian self-attention over every space-time position, added back through a
  1x1x1 conv and a BN that starts at zero, so a fresh block is the identity.

Every module takes and returns (N, C, T, H, W) for any T.
"""
from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from .errors import ModelError
from .layers import norm3d, video_conv

TEMPORAL_MODULES = ("tsm", "tam")


class TemporalShift(nn.Module):
    """Shift ``1/fold_div`` of the channels one frame each way (TSM, zero padded).

    Channels ``[0, C/fold_div)`` take the *next* frame's values (``out[t] = x[t+1]``, zero at
    the last frame), channels ``[C/fold_div, 2C/fold_div)`` the *previous* frame's
    (``out[t] = x[t-1]``, zero at the first frame); the rest are unchanged. This is the
    official code's channel order.
    """

    def __init__(self, fold_div: int = 8) -> None:
        super().__init__()
        if fold_div < 2:
            raise ModelError(f"fold_div {fold_div}: at least 2 (two folds are shifted)")
        self.fold_div = fold_div

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        fold = x.shape[1] // self.fold_div
        out = torch.zeros_like(x)
        out[:, :fold, :-1] = x[:, :fold, 1:]
        out[:, fold:2 * fold, 1:] = x[:, fold:2 * fold, :-1]
        out[:, 2 * fold:] = x[:, 2 * fold:]
        return out

    def extra_repr(self) -> str:
        return f"fold_div={self.fold_div}"


class TemporalAggregation(nn.Module):
    """TAM: ``relu(w_-1 * x[t-1] + w_0 * x[t] + w_+1 * x[t+1])``, one weight per channel and offset.

    The official code uses three depthwise 1x1 convs whose outputs it shifts by -1, 0, +1
    frames (zero padded) and sums; a depthwise ``kernel x 1 x 1`` conv with temporal zero
    padding computes the same sum, so that is what this is: ``weight[c, 0, k]`` multiplies
    ``x[t + k - kernel // 2]``. Weights (0, 1, 0) give the identity on non-negative input;
    (1, 0, 0) delays the clip by one frame. Initialised as the official code (Kaiming normal).
    """

    def __init__(self, channels: int, kernel: int = 3, *, relu: bool = True) -> None:
        super().__init__()
        if kernel < 1 or kernel % 2 == 0:
            raise ModelError(f"TAM kernel {kernel}: a positive odd number of frames")
        self.conv = nn.Conv3d(channels, channels, (kernel, 1, 1), padding=(kernel // 2, 0, 0),
                              groups=channels, bias=False)
        nn.init.kaiming_normal_(self.conv.weight, mode="fan_out", nonlinearity="relu")
        self.relu = nn.ReLU(inplace=True) if relu else nn.Identity()

    def set_weights(self, *offset_weights: float) -> "TemporalAggregation":
        """Give every channel the same weights, one per offset (earliest frame first)."""
        with torch.no_grad():
            self.conv.weight.copy_(torch.tensor(offset_weights, dtype=self.conv.weight.dtype)
                                   .view(1, 1, -1, 1, 1).expand_as(self.conv.weight))
        return self

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.conv(x))


def make_temporal_module(kind: str | None, channels: int) -> nn.Module | None:
    """The mixer a bottleneck applies to its residual branch's input: ``tsm``, ``tam`` or None."""
    if kind is None:
        return None
    if kind == "tsm":
        return TemporalShift()
    if kind == "tam":
        return TemporalAggregation(channels)
    raise ModelError(f"temporal module {kind!r}: expected one of {TEMPORAL_MODULES}")


class NonLocalBlock(nn.Module):
    """Embedded-Gaussian non-local block: ``x + BN(W_z(softmax(theta(x)^T phi(x)) g(x)))``.

    theta, phi and g are 1x1x1 convs to ``channels // 2`` (with bias, as the paper's code);
    phi and g see the map max-pooled 1x2x2 (the paper's "subsampling" trick, 4x fewer keys),
    which ``subsample=False`` turns off. Dot products are scaled by ``1/sqrt(channels // 2)``
    (the released code's option; the paper's equation has no scale). The output BN starts at
    zero, so a fresh block is the identity and a network with it starts as its backbone.
    """

    def __init__(self, channels: int, *, subsample: bool = True, zero_init: bool = True) -> None:
        super().__init__()
        inner = max(1, channels // 2)
        self.theta = nn.Conv3d(channels, inner, 1)
        self.phi = nn.Conv3d(channels, inner, 1)
        self.g = nn.Conv3d(channels, inner, 1)
        self.subsample = subsample
        self.out = video_conv(inner, channels)
        self.norm = norm3d(channels, zero=zero_init)
        self.scale = inner ** -0.5

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n, _, t, h, w = x.shape
        keys = x
        if self.subsample and h > 1 and w > 1:
            keys = F.max_pool3d(x, (1, 2, 2), stride=(1, 2, 2), ceil_mode=True)
        query = self.theta(x).flatten(2).transpose(1, 2)              # (N, THW, C')
        key = self.phi(keys).flatten(2)                                # (N, C', T'H'W')
        value = self.g(keys).flatten(2).transpose(1, 2)                # (N, T'H'W', C')
        attention = torch.softmax(torch.bmm(query, key) * self.scale, dim=-1)
        context = torch.bmm(attention, value).transpose(1, 2).reshape(n, -1, t, h, w)
        return x + self.norm(self.out(context))
