"""Measures the benchmark tests check reports against, taken independently of the benchmarks' own code."""
from __future__ import annotations

from collections import defaultdict

import torch


def conv_and_linear_macs(model: torch.nn.Module, clip: torch.Tensor) -> dict[str, int]:
    """Multiply-accumulates of each conv and linear layer in one forward pass on ``clip``, by module
    name, counted by hand from the shapes each call produced: a conv's output elements x its input
    channels per group x its kernel volume, a linear layer's output elements x its input features.
    A layer called more than once (a shared conv) counts every call. Eval mode, no gradients."""
    macs: dict[str, int] = defaultdict(int)

    def count(name: str):
        def hook(module, inputs, output):
            if isinstance(module, torch.nn.Linear):
                macs[name] += output.numel() * module.in_features
            else:
                kernel = module.kernel_size[0] * module.kernel_size[1] * module.kernel_size[2]
                macs[name] += output.numel() * module.in_channels // module.groups * kernel
        return hook

    hooks = [module.register_forward_hook(count(name)) for name, module in model.named_modules()
             if isinstance(module, (torch.nn.Conv3d, torch.nn.Linear))]
    was_training = model.training
    try:
        model.eval()
        with torch.no_grad():
            model(clip)
    finally:
        model.train(was_training)
        for hook in hooks:
            hook.remove()
    return dict(macs)


def rate_bounds(clips: int, seconds: float, *, seconds_digits: int, rate_digits: int = 2) -> tuple[float, float]:
    """The range a reported clips/s can take when it is ``clips`` over a time that the report rounds to
    ``seconds`` (``seconds_digits`` decimals), itself rounded to ``rate_digits`` decimals."""
    half_second, half_rate = 0.5 * 10 ** -seconds_digits, 0.5 * 10 ** -rate_digits
    slowest = clips / (seconds + half_second)
    fastest = clips / (seconds - half_second) if seconds > half_second else float("inf")
    return slowest - half_rate, fastest + half_rate
