"""Rendering one video of the benchmark: an actor that moves as its class says.

Each video shows a randomly shaped, striped *actor* (radius 17-24% of the frame, so its
rotation is visible) on a random low-frequency background, with a moving distractor,
camera jitter and pixel noise (``clutter=True`` adds static clutter, more distractors and
more noise). No single frame gives the class away within its group: that is what the class
definitions guarantee, not the clutter. The second class of each reversal pair is rendered
as its partner, then played backwards (:data:`~.classes.REVERSED_OF`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import numpy as np

from .classes import REVERSED_OF, class_names


@dataclass
class _Scene:
    size: int
    frames: int
    rng: np.random.Generator
    clutter: bool = False

    def __post_init__(self) -> None:
        s, rng = self.size, self.rng
        self.pad = max(2, s // 32)  # camera jitter room
        self.canvas = s + 2 * self.pad
        self.y, self.x = np.mgrid[0:self.canvas, 0:self.canvas].astype(np.float32)
        self.noise = rng.uniform(3, 8) if self.clutter else rng.uniform(1, 3)
        self.background = self._background()
        # actor: star-shaped polygon, two-colour stripes that turn with it
        self.radius = s * rng.uniform(0.17, 0.24)
        self.vertices = rng.uniform(0.55, 1.0, size=int(rng.integers(5, 9)))
        self.colours = rng.uniform(20, 235, size=(2, 3)).astype(np.float32) if self.clutter else \
            np.stack([rng.uniform(170, 255, 3), rng.uniform(0, 60, 3)]).astype(np.float32)
        self.stripe_freq = rng.uniform(0.35, 0.8) / max(1.0, s / 64)
        self.stripe_phase = rng.uniform(0, 2 * np.pi)

    def _background(self) -> np.ndarray:
        s, rng, c = self.size, self.rng, self.canvas
        # a plain scene keeps the background dim and low in contrast, so the actor stands out
        coarse = rng.uniform(30, 225, size=(4, 4, 3)).astype(np.float32) if self.clutter else \
            rng.uniform(40, 90, size=(4, 4, 3)).astype(np.float32)
        ys = np.linspace(0, 3, c)
        y0 = np.minimum(ys.astype(int), 2)
        wy = (ys - y0)[:, None, None]
        rows = coarse[y0] * (1 - wy) + coarse[y0 + 1] * wy
        x0 = y0
        wx = (ys - x0)[None, :, None]
        bg = rows[:, x0] * (1 - wx) + rows[:, x0 + 1] * wx
        for _ in range(int(rng.integers(3, 7)) if self.clutter else 0):  # static clutter
            h, w = rng.integers(s // 16 + 1, s // 6 + 2, size=2)
            top, left = rng.integers(0, c - h), rng.integers(0, c - w)
            bg[top:top + h, left:left + w] = rng.uniform(0, 255, 3)
        return bg

    def box(self, cx: float, cy: float, reach: float) -> tuple[slice, slice]:
        """Canvas rows and columns within ``reach`` of (cx, cy): only those pixels are drawn."""
        c = self.canvas
        y0, y1 = int(max(0, np.floor(cy - reach))), int(min(c, np.ceil(cy + reach) + 1))
        x0, x1 = int(max(0, np.floor(cx - reach))), int(min(c, np.ceil(cx + reach) + 1))
        return slice(y0, max(y0, y1)), slice(x0, max(x0, x1))

    def draw_actor(self, frame: np.ndarray, cx: float, cy: float, scale: float, angle: float,
                   opacity: float, glow: float) -> None:
        """Blend the actor centred at (cx, cy) (canvas pixels) into ``frame``."""
        rows, cols = self.box(cx, cy, self.radius * scale + 2)
        dx, dy = self.x[rows, cols] - cx, self.y[rows, cols] - cy
        r = np.hypot(dx, dy) / (self.radius * scale)
        theta = (np.arctan2(dy, dx) - angle) % (2 * np.pi)
        k = len(self.vertices)
        pos = theta / (2 * np.pi) * k
        i0 = pos.astype(int) % k
        frac = pos - np.floor(pos)
        edge = self.vertices[i0] * (1 - frac) + self.vertices[(i0 + 1) % k] * frac
        coverage = np.clip((edge - r) * self.radius * scale + 0.5, 0, 1) * opacity
        u = dx * np.cos(angle) + dy * np.sin(angle)
        stripes = (0.5 + 0.5 * np.sin(u * self.stripe_freq * 2 + self.stripe_phase))[..., None]
        colour = self.colours[0] * stripes + self.colours[1] * (1 - stripes)
        if glow:
            colour = colour + (255 - colour) * 0.65
        region = frame[rows, cols]
        region += (colour - region) * coverage[..., None]


def _blend(frame: np.ndarray, coverage: np.ndarray, colour) -> None:
    frame += (np.asarray(colour, np.float32) - frame) * coverage[..., None]


def _draw_disc(scene: _Scene, frame: np.ndarray, cx: float, cy: float, radius: float, colour) -> None:
    rows, cols = scene.box(cx, cy, radius + 1)
    coverage = np.clip(radius - np.hypot(scene.x[rows, cols] - cx, scene.y[rows, cols] - cy) + 0.5, 0, 1)
    region = frame[rows, cols]
    region += (np.asarray(colour, np.float32) - region) * coverage[..., None]


def _trajectory(name: str, scene: _Scene) -> dict[str, np.ndarray]:
    """Per-frame actor state for a forward-rendered class: centre, scale, angle, opacity, glow."""
    T, s, rng, pad = scene.frames, scene.size, scene.rng, scene.pad
    t = np.arange(T, dtype=np.float64)
    centre = pad + s / 2
    cx = np.full(T, centre + rng.uniform(-0.15, 0.15) * s)
    cy = np.full(T, centre + rng.uniform(-0.15, 0.15) * s)
    scale = np.ones(T)
    angle = np.full(T, rng.uniform(0, 2 * np.pi))
    opacity = np.ones(T)
    glow = np.zeros(T)
    amplitude = 0.3 * s
    phase = rng.uniform(0, 2 * np.pi)
    if name == "slide_left_to_right":
        start, end = rng.uniform(0.1, 0.3) * s, rng.uniform(0.7, 0.9) * s
        cx = pad + start + (end - start) * t / (T - 1)
    elif name == "approach":
        scale = np.linspace(rng.uniform(0.4, 0.55), rng.uniform(1.2, 1.4), T)
    elif name == "rotate_clockwise":  # image y points down, so increasing angle turns clockwise
        angle = angle + np.deg2rad(rng.uniform(6, 12)) * t
    elif name == "fade_in":
        opacity = np.linspace(rng.uniform(0.05, 0.2), 1.0, T)
    elif name in ("sweep_once", "sweep_twice", "sweep_shuffled"):
        cycles = 2 if name == "sweep_twice" else 1
        cx = centre + amplitude * np.cos(2 * np.pi * cycles * t / T + phase)
        if name == "sweep_shuffled":
            cx = cx[rng.permutation(T)]
    elif name in ("bounce_once", "bounce_twice"):
        bounces = 2 if name == "bounce_twice" else 1
        floor = centre + 0.3 * s
        cy = floor - 0.55 * s * np.abs(np.sin(np.pi * bounces * t / T + phase))
    elif name in ("pulse_periodic", "pulse_once"):
        lit = max(1, T // 4)
        if name == "pulse_periodic":
            period, on = max(2, T // 4), max(1, T // 16)
            glow = (((t + rng.integers(0, period)) % period) < on).astype(float)
        else:
            start = int(rng.integers(0, T))
            glow = (((t - start) % T) < lit).astype(float)
    elif name in ("fast_sweep", "fast_shuffled"):
        speed = rng.uniform(3, 6) * s / 64
        period = 4 * amplitude / speed  # frames for there and back
        wave = 2 * np.abs(((t / period + phase / (2 * np.pi)) % 1.0) * 2 - 1) - 1  # triangle in [-1, 1]
        cx = centre + amplitude * wave
        if name == "fast_shuffled":
            cx = cx[rng.permutation(T)]
    elif name != "ring_then_square":
        raise ValueError(f"no trajectory for {name!r}")
    return {"cx": cx, "cy": cy, "scale": scale, "angle": angle, "opacity": opacity, "glow": glow}


def render_video(name: str, size: int = 64, frames: int = 32, seed: int | Sequence[int] = 0,
                 clutter: bool = False) -> np.ndarray:
    """One video of class ``name`` as uint8 ``(frames, size, size, 3)``; same seed, same video.

    The default scene is plain: a dim, low-contrast background, a bright striped actor, at
    most one distractor and light noise, so a small model finds the actor within a few
    epochs and spends its budget on what only time can tell. ``clutter=True`` draws the
    harder scene: any background colour, static clutter, 1-3 distractors, heavier noise.
    """
    if name not in class_names():
        raise ValueError(f"unknown synthetic class {name!r}; expected one of {class_names()}")
    if size % 2 or size < 16 or frames < 8:
        raise ValueError(f"size must be even and >= 16, frames >= 8 (got {size}, {frames})")
    forward = REVERSED_OF.get(name, name)
    rng = np.random.default_rng(seed)
    scene = _Scene(size, frames, rng, clutter)
    state = _trajectory(forward, scene)
    pad, c = scene.pad, scene.canvas
    # markers for the blink-order pair: always visible dim, each blinks once
    markers = []
    if forward == "ring_then_square":
        blink = max(2, frames // 8)
        gap = int(rng.integers(frames // 4, frames // 2 + 1))
        first = int(rng.integers(0, frames - gap - blink + 1))
        spots = rng.permutation([[0.25, 0.25], [0.75, 0.25], [0.25, 0.75], [0.75, 0.75]])[:2] * size + pad
        radius = size * 0.09
        ring = np.clip(1.5 - np.abs(np.hypot(scene.x - spots[0][0], scene.y - spots[0][1]) - radius), 0, 1)
        square = ((np.abs(scene.x - spots[1][0]) < radius) & (np.abs(scene.y - spots[1][1]) < radius)).astype(np.float32)
        markers = [(ring, first), (square, first + gap)]
    else:
        blink = 0
    # distractors: small discs drifting and bouncing off the canvas edges
    count = int(rng.integers(1, 4)) if clutter else int(rng.integers(0, 2))
    d_pos = rng.uniform(pad, c - pad, size=(count, 2))
    d_vel = rng.uniform(-1.5, 1.5, size=(count, 2)) * size / 64
    d_rad = rng.uniform(size / 20, size / 12, size=count)
    d_col = rng.uniform(0, 255, size=(count, 3))
    jitter = rng.integers(-pad, pad + 1, size=(frames, 2))
    out = np.empty((frames, size, size, 3), np.uint8)
    for f in range(frames):
        frame = scene.background.copy()
        for mask, when in markers:
            lit = when <= f < when + blink
            _blend(frame, mask, (250, 250, 250) if lit else (70, 70, 70))
        for k in range(count):
            _draw_disc(scene, frame, *d_pos[k], d_rad[k], d_col[k])
        scene.draw_actor(frame, *(state[key][f] for key in ("cx", "cy", "scale", "angle", "opacity", "glow")))
        dy, dx = jitter[f]
        view = frame[pad + dy:pad + dy + size, pad + dx:pad + dx + size]
        view = view + rng.normal(0, scene.noise, size=view.shape).astype(np.float32)
        out[f] = np.clip(view + 0.5, 0, 255).astype(np.uint8)
        d_pos += d_vel
        for axis in range(2):
            hit = (d_pos[:, axis] < pad) | (d_pos[:, axis] > c - pad)
            d_vel[hit, axis] *= -1
    if name in REVERSED_OF:
        out = out[::-1].copy()
    return out
