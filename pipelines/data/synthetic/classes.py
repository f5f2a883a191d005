"""The benchmark's classes as data: two families, each separable only through time.

Family A, reversal pairs: the second class of a pair is the first played backwards, so
both classes have exactly the same set of frames. A per-frame 2D model is at chance within
a pair, and so is any model whose only temporal operators are symmetric in time (centred
max pooling, global pooling): the official SmallBig blocks are invariant to reversal.

Family B, order without direction: classes that visit the same positions (same per-frame
distribution) in a different order, each unchanged in distribution by reversal. A per-frame
model is at chance; temporal context, symmetric or not, can separate them. ``fast_*``
moves 3-6 px per frame (at 64 px), beyond a 3x3x3 window's reach.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np


@dataclass(frozen=True)
class SynthClass:
    name: str
    family: str  # "A" (reversal pair) or "B" (order without direction)
    group: str  # classes to be told apart from each other
    property: str  # what separates them, and why a frame alone cannot


CLASSES: tuple[SynthClass, ...] = (
    SynthClass("slide_left_to_right", "A", "slide", "actor crosses the frame left to right"),
    SynthClass("slide_right_to_left", "A", "slide", "the same clip reversed: right to left"),
    SynthClass("approach", "A", "approach", "actor grows from small to large (comes closer)"),
    SynthClass("recede", "A", "approach", "the same clip reversed: shrinks (moves away)"),
    SynthClass("rotate_clockwise", "A", "rotate", "textured actor turns clockwise 6-12 deg per frame"),
    SynthClass("rotate_anticlockwise", "A", "rotate", "the same clip reversed: anticlockwise"),
    SynthClass("fade_in", "A", "fade", "actor goes from faint to opaque"),
    SynthClass("fade_out", "A", "fade", "the same clip reversed: opaque to faint"),
    SynthClass("ring_then_square", "A", "blink order", "a ring blinks, a square blinks a quarter to half a clip later"),
    SynthClass("square_then_ring", "A", "blink order", "the same clip reversed: square first, then ring"),
    SynthClass("sweep_once", "B", "sweep", "one smooth there-and-back sweep (cosine, random phase)"),
    SynthClass("sweep_twice", "B", "sweep", "two sweeps: there and back at double speed"),
    SynthClass("sweep_shuffled", "B", "sweep", "the positions of one sweep in random order"),
    SynthClass("bounce_once", "B", "bounce", "actor bounces off the floor once per clip"),
    SynthClass("bounce_twice", "B", "bounce", "two bounces per clip (same heights, double rate)"),
    SynthClass("pulse_periodic", "B", "pulse", "actor lights up briefly every quarter clip (1/4 of frames lit)"),
    SynthClass("pulse_once", "B", "pulse", "actor lights up once for a quarter of the clip (1/4 of frames lit)"),
    SynthClass("fast_sweep", "B", "fast", "smooth back-and-forth at 3-6 px per frame (triangle wave)"),
    SynthClass("fast_shuffled", "B", "fast", "the positions of a fast sweep in random order"),
)

# Each reversal pair is rendered once: the second class plays the first backwards.
REVERSED_OF = {"slide_right_to_left": "slide_left_to_right", "recede": "approach",
             "rotate_anticlockwise": "rotate_clockwise", "fade_out": "fade_in",
             "square_then_ring": "ring_then_square"}


def class_names() -> list[str]:
    return [c.name for c in CLASSES]


def flip_label_map() -> dict[int, int]:
    """Class swaps under a horizontal flip: a mirrored slide goes the other way, a mirrored
    rotation turns the other way; every other class (approach, fade, blinks, family B) keeps
    its label. Pass it as ``ClipSpec.flip_label_map`` when training with flips."""
    names = class_names()
    pairs = [("slide_left_to_right", "slide_right_to_left"), ("rotate_clockwise", "rotate_anticlockwise")]
    swap = {}
    for a, b in pairs:
        swap[names.index(a)], swap[names.index(b)] = names.index(b), names.index(a)
    return swap


def accuracy_by_group(labels: Sequence[int], predictions: Sequence[int]) -> dict[str, float]:
    """Accuracy overall, per family and per group: a model can be right overall yet at chance on A."""
    labels, predictions = np.asarray(labels), np.asarray(predictions)
    correct = labels == predictions
    result = {"overall": float(correct.mean()) if len(labels) else float("nan")}
    for key, members in _partitions().items():
        chosen = np.isin(labels, members)
        if chosen.any():
            result[key] = float(correct[chosen].mean())
    return result


def _partitions() -> dict[str, list[int]]:
    parts: dict[str, list[int]] = {}
    for index, c in enumerate(CLASSES):
        parts.setdefault(f"family {c.family}", []).append(index)
        parts.setdefault(f"{c.family}: {c.group}", []).append(index)
    return parts
