"""Training checkpoints: one ``state.pt`` per Ray Train checkpoint folder, safe to load from anyone.

A checkpoint holds plain data only (state dicts, numbers, strings, lists, dicts), so it is
read with ``torch.load(weights_only=True)``: a file from someone else can fail to load, but
cannot run code on this machine. It carries the experiment config and the class names, so
``run.py eval`` and ``predict`` rebuild the model from the checkpoint alone.
"""
from __future__ import annotations

import io
from pathlib import Path

import torch

from .. import storage as storage_rules
from ..config import ExperimentConfig
from ..errors import UsageError
from .step import build_model_for

CHECKPOINT_FILE = "state.pt"


class CheckpointError(UsageError):
    """A checkpoint that cannot be used; the message names the path and what was expected."""


def save_checkpoint(folder: str | Path, *, model, optimizer, scheduler, scaler, epoch: int,
                    classes: list[str], config: dict) -> Path:
    path = Path(folder) / CHECKPOINT_FILE
    torch.save({"model": model.state_dict(), "optimizer": optimizer.state_dict(),
                "scheduler": scheduler.state_dict(), "scaler": scaler.state_dict(), "epoch": epoch,
                "classes": list(classes), "config": config}, path)
    return path


def save_initial_checkpoint(folder: str | Path, config: ExperimentConfig, classes: list[str]) -> Path:
    """A checkpoint of ``config``'s model at its initial weights, as training writes one: what a
    check of the test phase scores when accuracy is not the point (its speed, its symmetry)."""
    from .step import cosine_with_warmup, make_optimizer

    model = build_model_for(config, len(classes))
    optimizer = make_optimizer(model, config.optim, config.data.batch_size)
    Path(folder).mkdir(parents=True, exist_ok=True)
    return save_checkpoint(folder, model=model, optimizer=optimizer, scheduler=cosine_with_warmup(optimizer, 2, 1),
                           scaler=torch.amp.GradScaler("cpu", enabled=False), epoch=0, classes=list(classes),
                           config=config.to_dict())


def load_checkpoint(folder: str | Path) -> dict:
    """The state in a checkpoint folder on this machine, or at a URI (``s3://``, ``gs://``, ``file://``)."""
    location = str(folder)
    if not storage_rules.is_uri(location):
        return _load(Path(folder) / CHECKPOINT_FILE)
    import pyarrow.fs

    filesystem, path = pyarrow.fs.FileSystem.from_uri(f"{location.rstrip('/')}/{CHECKPOINT_FILE}")
    with filesystem.open_input_stream(path) as handle:
        return _load(io.BytesIO(handle.read()), name=location)


def _load(source, name: str | None = None) -> dict:
    try:
        return torch.load(source, map_location="cpu", weights_only=True)
    except FileNotFoundError:
        raise CheckpointError(f"{name or source}: no such checkpoint file") from None
    except Exception as error:  # an untrusted pickle is refused here, before anything in it runs
        raise CheckpointError(f"{name or source}: not a checkpoint this project wrote "
                              f"({type(error).__name__}: {str(error).splitlines()[0][:200]})") from None


def find_checkpoint(path: str | Path) -> str:
    """A checkpoint folder from what a user typed: the folder itself, or a run folder (its latest
    ``checkpoint_*``); anything else is a :class:`CheckpointError` naming it."""
    location = str(path)
    if storage_rules.is_uri(location):
        return location
    folder = Path(location).expanduser()
    if not folder.exists():
        raise CheckpointError(f"{location}: no such checkpoint folder")
    if folder.is_file():
        hint = f" (its folder is {folder.parent})" if folder.name == CHECKPOINT_FILE else ""
        raise CheckpointError(f"{location}: is a file; expected a checkpoint folder or a run folder{hint}")
    if (folder / CHECKPOINT_FILE).is_file():
        return str(folder.resolve())
    candidates = sorted(p for p in folder.glob("checkpoint_*") if (p / CHECKPOINT_FILE).is_file())
    if not candidates:
        raise CheckpointError(f"{location}: neither a checkpoint folder (no {CHECKPOINT_FILE}) "
                              f"nor a run folder (no checkpoint_* folders)")
    return str(candidates[-1].resolve())


def checkpoint_location(checkpoint, storage: str) -> str:
    """Where a Ray Train checkpoint lives, as :func:`load_checkpoint` reads it."""
    return storage_rules.with_scheme_of(storage, checkpoint.path)


def load_trained(checkpoint: str | Path) -> tuple[torch.nn.Module, ExperimentConfig, list[str]]:
    """The model (in eval mode), experiment config and class names saved in a training checkpoint."""
    location = find_checkpoint(checkpoint)
    state = load_checkpoint(location)
    config = ExperimentConfig.from_dict(state["config"], source=location)
    model = build_model_for(config, len(state["classes"]), inflate=False)
    model.load_state_dict(state["model"])
    return model.eval(), config, list(state["classes"])
