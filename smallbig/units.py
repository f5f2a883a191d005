"""The SmallBig unit (paper Eq. 2) and the Full block's extra unit (Fig. 2f, Table 9)."""
from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from .errors import ModelError
from .layers import norm3d, video_conv
from .pools import PoolSize, make_big_view_pool

NORM_MODES = ("individual", "single")
EXTRA_UNIT_FORMS = ("official", "paper", "se")


@dataclass(frozen=True)
class ViewOptions:
    """How a unit combines its two views (the Table 6 design choices), shared by every unit of a block.

    - ``pool_type``: "max" (the paper) or "avg" for the big view;
    - ``share_conv``: one W for both views (Eq. 2) or a second conv for the big view;
    - ``norm``: "individual" (a BN per view, Eq. 2) or "single" (``BN(W * (x + pool(x)))``);
    - ``zero_init_big_view``: big-view BN starts at gamma = beta = 0, so the unit starts as
      the 2D layer its weights came from.
    """

    pool_type: str = "max"
    share_conv: bool = True
    norm: str = "individual"
    zero_init_big_view: bool = True

    def __post_init__(self) -> None:
        if self.norm not in NORM_MODES:
            raise ModelError(f"norm {self.norm!r}: expected one of {NORM_MODES}")


class SmallBigUnit(nn.Module):
    """``norm(W * x) + norm_big(W * pool(x))``: one conv shared by the small and big views.

    Without a ``big_view`` it is the plain conv + BN of a ResNet layer. The big-view norm
    starts at zero (gamma = beta = 0), so a fresh unit computes exactly the 2D layer its
    weights came from and learns how much context to add. ``options`` (:class:`ViewOptions`)
    reproduce the Table 6 variants: max/avg pool, shared or separate conv, a BN per view or one.
    The ReLU after the sum belongs to the caller, as in the paper.
    """

    def __init__(
        self,
        dim_in: int,
        dim_out: int,
        *,
        kernel: tuple[int, int, int] = (1, 1, 1),
        stride: tuple[int, int, int] = (1, 1, 1),
        big_view: str | PoolSize | None = None,
        options: ViewOptions = ViewOptions(),
    ) -> None:
        super().__init__()
        self.conv = video_conv(dim_in, dim_out, kernel, stride)
        self.norm = norm3d(dim_out)
        self.pool = self.big_conv = self.big_norm = None
        if big_view is not None:
            self.pool = make_big_view_pool(big_view, options.pool_type)
            if not options.share_conv:
                self.big_conv = video_conv(dim_in, dim_out, kernel, stride)
            if options.norm == "individual":
                self.big_norm = norm3d(dim_out, zero=options.zero_init_big_view)

    @property
    def has_big_view(self) -> bool:
        return self.pool is not None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.pool is None:
            return self.norm(self.conv(x))
        big = self.pool(x)
        if self.big_norm is None:  # single BN: the views are summed before the norm
            if self.big_conv is None:
                return self.norm(self.conv(x + big))  # W x + W pool(x) = W (x + pool(x))
            return self.norm(self.conv(x) + self.big_conv(big))
        if self.big_conv is None:
            small, big = self._shared_conv(x, big)
        else:
            small, big = self.conv(x), self.big_conv(big)
        return self.norm(small) + self.big_norm(big)

    def _shared_conv(self, x: torch.Tensor, big: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Run both views through one conv call, so sharing costs no more than its FLOPs.

        Views of the same shape are stacked along the batch (the halves stay dense, in
        whatever memory layout the model runs). A whole-clip view has one frame: a conv
        with no temporal extent takes it alone, at 1/T of the cost; a temporal conv sees
        it repeated over time.
        """
        if big.shape != x.shape:
            if self.conv.kernel_size[0] == 1:
                return self.conv(x), self.conv(big)
            big = big.expand_as(x)
        both = self.conv(torch.cat([x, big], dim=0))
        return both.chunk(2, dim=0)


class ExtraUnit(nn.Module):
    """The Full block's extra unit: whole-clip context that rescales the block's channels.

    Three readings (Table 9 compares them):
    - ``official`` (the released code): on the block input,
      ``x + BN(W2(W1(x) * sigmoid(W1(gmax(x)))))`` with W1 (C -> C/4) shared by x and its
      global max; the BN starts at zero, so the unit starts as the identity.
    - ``paper`` (the paper's text): ``x * sigmoid(W2(W1(gmax(x))))`` on the block input.
    - ``se`` (the simple version): squeeze-and-excitation on the residual branch,
      ``r * sigmoid(W2(relu(W1(gavg(r)))))``.
    The two sigmoid forms scale features by 0.5 at init, so only ``official`` leaves an
    inflated 2D network unchanged.
    """

    def __init__(self, channels: int, form: str = "official", *, reduction: int = 4,
                 zero_init: bool = True) -> None:
        super().__init__()
        if form not in EXTRA_UNIT_FORMS:
            raise ModelError(f"extra_unit {form!r}: expected one of {EXTRA_UNIT_FORMS}")
        self.form = form
        hidden = channels // reduction
        self.reduce = video_conv(channels, hidden)
        self.expand = video_conv(hidden, channels)
        self.norm = norm3d(channels, zero=zero_init) if form == "official" else None

    @property
    def on_residual(self) -> bool:
        """Whether the unit gates the residual branch (SE) rather than the block input."""
        return self.form == "se"

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if self.form == "official":
            context = torch.sigmoid(self.reduce(x.amax(dim=(2, 3, 4), keepdim=True)))
            return x + self.norm(self.expand(self.reduce(x) * context))
        if self.form == "paper":
            return x * torch.sigmoid(self.expand(self.reduce(x.amax(dim=(2, 3, 4), keepdim=True))))
        squeeze = x.mean(dim=(2, 3, 4), keepdim=True)
        return x * torch.sigmoid(self.expand(torch.relu(self.reduce(squeeze))))
