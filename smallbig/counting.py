"""Parameters and multiply-accumulates, counted by torch's own FLOP counter."""
from __future__ import annotations

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode


def count_parameters(model: nn.Module) -> int:
    return sum(p.numel() for p in model.parameters())


@torch.no_grad()
def count_gmacs(model: nn.Module, *, frames: int = 8, size: int = 224, batch: int = 1) -> float:
    """Giga multiply-accumulates of one forward pass per clip (what the paper calls "GFlops").

    ``torch.utils.flop_counter`` counts a multiply-add as two FLOPs, hence the halving.
    """
    was_training = model.training
    model.eval()
    clip = torch.zeros(batch, 3, frames, size, size)
    with FlopCounterMode(display=False) as counter:
        model(clip)
    model.train(was_training)
    return counter.get_total_flops() / 2 / 1e9 / batch
