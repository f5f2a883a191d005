"""Can a model tell a clip from the same clip played backwards? An exact check, in float64.

A SmallBig unit (paper Eq. 2) computes ``y = BN_small(W * x) + BN_big(W * MaxPool3d(x))``.
Its big view is a *centred* max pool, symmetric in time, and ``W`` has temporal extent 1,
so reversing the frames of ``x`` reverses the frames of ``y`` and nothing else. Stack such
units, end with a global average over time, and the logits of a clip and of its reversal
are the same numbers: the network cannot tell "slide left" from "slide right". Temporal
convs, TSM's shifts, TAM's learned neighbour weights and bLVNet's odd/even frame split
break the symmetry. This module measures which case a model is in.

Why the weights are randomised first: fresh models hide what they can do. The big-view BN
starts at zero (so a fresh SmallBig net is its 2D ResNet, frame by frame), fresh norms are
nearly the identity and fresh TAM weights are small, so behind eval-mode norms the clip's
signal could fade and every model would look invariant. Random norms and TAM weights of
order one switch every path on.

Why float64: an invariant model's two outputs then agree to ~1e-15 (rounding only), while a
model that sees time differs by 1e-3..1e-1 on random clips, so a tolerance of 1e-9 separates
the two with many orders of magnitude to spare on either side.

Two guards keep the check honest. A model whose output does not depend on its input at all
gives the same logits for a clip and its reversal too; it is compared on a second, unrelated
clip and reported as ignoring its input, never as time-symmetric. And the weights are drawn
from ``seed``, so the same model prints the same difference on every run.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from .registry import build_model
from .temporal import TemporalAggregation

# |forward - backward| <= TOLERANCE * (1 + |backward|), elementwise: rounding in float64 is ~1e-15.
TOLERANCE = 1e-9
# A model "sees time" when its logits move by more than this fraction of their largest value.
SEES_TIME_RELATIVE = 1e-4


@dataclass(frozen=True)
class ReversalCheck:
    """The outcome of :func:`check_reversal` for one model on one random clip."""

    model: str
    invariant: bool  # the logits agree within TOLERANCE
    max_abs_diff: float  # largest |logit(clip) - logit(reversed clip)|
    max_abs_logit: float  # the scale the difference is measured against
    tolerance: float
    input_shape: tuple[int, ...]  # (N, C, T, H, W)
    dtype: str = "float64"
    ignores_input: bool = False  # the same logits for an unrelated clip: the check says nothing about time

    def to_dict(self) -> dict:
        return {**asdict(self), "input_shape": list(self.input_shape)}

    def summary(self) -> str:
        verdict = ("its output does not depend on its input, so reversing a clip cannot change it either: "
                   "neither time-symmetric nor order-aware" if self.ignores_input
                   else "invariant: it cannot tell a clip from its reversal" if self.invariant
                   else "not invariant: it can tell a clip from its reversal")
        shape = "x".join(str(d) for d in self.input_shape)
        return (f"{self.model}: {verdict}\n"
                f"  max |logits(clip) - logits(reversed clip)| = {self.max_abs_diff:.3g} "
                f"(largest |logit| {self.max_abs_logit:.3g}; tolerance {self.tolerance:g} absolute + relative, "
                f"{self.dtype}, random input {shape})")


def activate(model: nn.Module, seed: int = 0) -> nn.Module:
    """Random norm parameters and statistics, TAM weights of order one: every path of ``model`` on."""
    _randomize_norms(model, torch.Generator().manual_seed(seed))
    _strengthen_temporal_aggregation(model, torch.Generator().manual_seed(seed + 3))
    return model


def _randomize_norms(model: nn.Module, generator: torch.Generator) -> None:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, nn.modules.batchnorm._BatchNorm):
                m.weight.copy_(torch.rand(m.weight.shape, generator=generator) * 0.5 + 0.5)
                m.bias.copy_(torch.randn(m.bias.shape, generator=generator) * 0.1)
                m.running_mean.copy_(torch.randn(m.running_mean.shape, generator=generator) * 0.1)
                m.running_var.copy_(torch.rand(m.running_var.shape, generator=generator) + 0.5)


def _strengthen_temporal_aggregation(model: nn.Module, generator: torch.Generator) -> None:
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, TemporalAggregation):
                m.conv.weight.copy_(torch.rand(m.conv.weight.shape, generator=generator) + 0.2)


def random_clip(batch: int = 1, frames: int = 8, size: int = 32, seed: int = 2) -> torch.Tensor:
    """A reproducible random clip (N, 3, T, H, W); 32x32 is large enough for every registered model."""
    return torch.randn(batch, 3, frames, size, size, generator=torch.Generator().manual_seed(seed))


def logits_both_ways(model: nn.Module, clip: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Logits of ``clip`` and of ``clip`` reversed along T, in float64 with the model in eval mode."""
    model = model.eval().double()
    clip = clip.double()
    with torch.no_grad():
        return model(clip), model(clip.flip(2))


def is_invariant(forward: torch.Tensor, backward: torch.Tensor, tolerance: float = TOLERANCE) -> bool:
    return bool(torch.allclose(forward, backward, atol=tolerance, rtol=tolerance))


def sees_time(forward: torch.Tensor, backward: torch.Tensor, relative: float = SEES_TIME_RELATIVE) -> bool:
    """A difference far above rounding: the model's output depends on the order of the frames."""
    return bool((forward - backward).abs().max() > relative * forward.abs().max())


def check_reversal(name: str, *, clip: torch.Tensor | None = None, num_classes: int = 5, frames: int = 8,
                   size: int = 32, seed: int = 0, **options) -> ReversalCheck:
    """Build registered model ``name`` (with ``options``; weights drawn from ``seed``), activate it
    and compare both orders of a clip."""
    clip = random_clip(frames=frames, size=size) if clip is None else clip
    with torch.random.fork_rng(devices=[]):  # the caller's random state is left as it was
        torch.manual_seed(seed)
        model = build_model(name, num_classes=num_classes, num_frames=clip.shape[2], **options)
    return check_model(model, name, clip, seed)


def check_model(model: nn.Module, name: str, clip: torch.Tensor, seed: int = 0) -> ReversalCheck:
    """:func:`check_reversal` for a model already built: activated, then both orders of ``clip``
    and, to tell symmetry from deafness, an unrelated clip of the same shape."""
    model = activate(model, seed)
    forward, backward = logits_both_ways(model, clip)
    batch, _, frames, height, _ = clip.shape
    other, _ = logits_both_ways(model, random_clip(batch=batch, frames=frames, size=height, seed=seed + 7))
    ignores_input = is_invariant(forward, other)
    return ReversalCheck(model=name, invariant=is_invariant(forward, backward) and not ignores_input,
                         max_abs_diff=float((forward - backward).abs().max()),
                         max_abs_logit=float(forward.abs().max()), tolerance=TOLERANCE,
                         input_shape=tuple(clip.shape), ignores_input=ignores_input)
