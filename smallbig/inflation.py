"""Initialise any model of the family from a 2D ResNet checkpoint (torchvision key names).

Conv weights gain a temporal axis; a kernel with kT > 1 gets the 2D weight repeated
and divided by kT (I3D inflation), so a static clip gives the 2D response. Blocks a
shallower net lacks (R23 from R50) and the classifier are skipped; parts with no 2D
counterpart (big-view norms, extra units, TAM and non-local blocks) keep their own
initialisation. Everything
is reported, and anything else that does not fit is an error unless ``strict=False``.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

import torch
from torch import nn

from .errors import ModelError

_TORCHVISION_TO_OURS = (
    (re.compile(r"^conv1\."), "stem.conv."),
    (re.compile(r"^bn1\."), "stem.norm."),
    (re.compile(r"^(layer\d+\.\d+)\.conv(\d)\."), r"\1.unit\2.conv."),
    (re.compile(r"^(layer\d+\.\d+)\.bn(\d)\."), r"\1.unit\2.norm."),
)
_BLOCK = re.compile(r"^(layer\d+)\.(\d+)\.")
# Model parts that have no counterpart in a 2D ResNet and keep their own initialisation.
_NEW_PARTS = re.compile(r"(\.big_norm\.|\.big_conv\.|\.extra\.|\.mixer\.|\.non_local\.)")


def translate_key(key: str) -> str:
    """Map a torchvision ResNet key (``layer1.0.bn2.weight``) to ours (``layer1.0.unit2.norm.weight``)."""
    key = key.removeprefix("module.")
    for pattern, replacement in _TORCHVISION_TO_OURS:
        key = pattern.sub(replacement, key)
    return key


def inflate_weight(weight: torch.Tensor, temporal_size: int) -> torch.Tensor:
    """(O, I, kh, kw) -> (O, I, kT, kh, kw), repeated over time and divided by kT."""
    return weight.unsqueeze(2).repeat(1, 1, temporal_size, 1, 1) / temporal_size


@dataclass
class LoadReport:
    loaded: list[str] = field(default_factory=list)
    inflated: list[str] = field(default_factory=list)
    skipped: dict[str, str] = field(default_factory=dict)
    kept_init: list[str] = field(default_factory=list)

    def summary(self) -> str:
        reasons: dict[str, int] = {}
        for why in self.skipped.values():
            reasons[why] = reasons.get(why, 0) + 1
        skipped = ", ".join(f"{n} {why}" for why, n in sorted(reasons.items())) or "none"
        return (f"loaded {len(self.loaded)} tensors ({len(self.inflated)} conv weights inflated); "
                f"skipped {skipped}; {len(self.kept_init)} tensors keep their initialisation")


def load_2d_weights(model: nn.Module, state_dict: dict[str, torch.Tensor], *,
                    include_fc: bool = False, strict: bool = True) -> LoadReport:
    """Copy a 2D ResNet state dict into ``model``, inflating conv weights; returns what was done.

    Models whose layout no 2D ResNet fits (bLVNet, S3D) say why in ``no_2d_inflation``.
    """
    reason = getattr(model, "no_2d_inflation", None)
    if reason:
        raise ModelError(f"{type(model).__name__} cannot be initialised from a 2D ResNet: {reason}")
    target = model.state_dict()
    report, new_state = LoadReport(), dict(target)
    problems = _copy_2d_tensors(model, state_dict, target, new_state, report, include_fc)
    problems += _unfilled(model, target, report, include_fc)
    if problems and strict:
        raise ModelError("2D weights do not fit the model:\n  " + "\n  ".join(problems[:20])
                         + ("\n  ..." if len(problems) > 20 else "") + "\n(pass strict=False to load what fits)")
    report.skipped.update({p.split(":")[0]: "did not fit" for p in problems})
    model.load_state_dict(new_state)
    return report


def _block_depths(keys) -> dict[str, int]:
    """Blocks per stage of the model (``layer3`` -> 2): a 2D block past them belongs to a deeper net."""
    depths: dict[str, int] = {}
    for key in keys:
        match = _BLOCK.match(key)
        if match:
            depths[match.group(1)] = max(depths.get(match.group(1), 0), int(match.group(2)) + 1)
    return depths


def _destination(source_key: str, model: nn.Module, target: dict, depths: dict[str, int],
                 include_fc: bool) -> tuple[str | None, str | None]:
    """Where a 2D tensor goes in the model, or (None, why it is skipped): the classifier, or a
    block a shallower net lacks (R23 from R50), are left out on purpose, not as errors."""
    key = translate_key(source_key)
    remap = getattr(model, "map_2d_key", None)  # a model laid out otherwise says where each tensor goes
    if remap is not None and not key.startswith("fc."):
        key = remap(key)
        if key is None:
            return None, "deeper block"
    if key.startswith("fc.") and not include_fc:
        return None, "classifier"
    match = _BLOCK.match(key)
    if match and int(match.group(2)) >= depths.get(match.group(1), 0) and key not in target:
        return None, "deeper block"
    return key, None


def _copy_2d_tensors(model: nn.Module, state_dict: dict, target: dict, new_state: dict, report: LoadReport,
                     include_fc: bool) -> list[str]:
    """Put every 2D tensor where it goes in ``new_state`` (inflated where the model has time);
    returns the tensors that fit nowhere, so that all of them are reported at once."""
    depths, problems = _block_depths(target), []
    for source_key, value in state_dict.items():
        key, skipped = _destination(source_key, model, target, depths, include_fc)
        if skipped:
            report.skipped[source_key] = skipped
            continue
        if key not in target:
            problems.append(f"{source_key}: no such tensor in the model (looked for {key})")
            continue
        value = value.detach()
        if value.dim() == 4 and target[key].dim() == 5:
            value = inflate_weight(value, target[key].shape[2])
            report.inflated.append(key)
        if value.shape != target[key].shape:
            problems.append(f"{source_key}: shape {tuple(value.shape)} does not fit {key} {tuple(target[key].shape)}")
            continue
        new_state[key] = value.to(target[key].dtype)
        report.loaded.append(key)
        big_conv = key.replace(".conv.weight", ".big_conv.weight")
        if key.endswith(".conv.weight") and big_conv in target:  # an unshared big view starts from W too
            new_state[big_conv] = new_state[key]
            report.loaded.append(big_conv)
    return problems


def _unfilled(model: nn.Module, target: dict, report: LoadReport, include_fc: bool) -> list[str]:
    """The model's tensors the checkpoint left alone: parts with no 2D counterpart keep their
    initialisation (recorded in ``report``); any other is returned as a problem."""
    new_parts = getattr(model, "new_2d_parts", None)
    filled, problems = set(report.loaded), []
    for key in target:
        if key in filled or key.endswith("num_batches_tracked"):
            continue
        if _NEW_PARTS.search(key) or (new_parts is not None and new_parts.search(key)) \
                or (key.startswith("fc.") and not include_fc):
            report.kept_init.append(key)
        else:
            problems.append(f"{key}: not in the 2D checkpoint")
    return problems
