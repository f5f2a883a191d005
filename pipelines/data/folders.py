"""Where an experiment's videos live: a dataset folder, or the built-in benchmark, written on first use."""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

from .. import storage as storage_rules
from ..errors import UsageError
from .annotations import CLASSES_FILE
from .manifest import mismatches
from .synthetic import SyntheticSpec, write_synthetic

log = logging.getLogger(__name__)

SYNTHETIC = "synthetic"  # the value of data.path that asks for the built-in benchmark


def synthetic_root(storage: str, spec: SyntheticSpec) -> Path:
    """The benchmark's folder under ``<storage>/datasets`` (on this machine)."""
    return storage_rules.local_folder(storage) / "datasets" / spec.folder_name


def resolve_data(path: str, storage: str, spec: SyntheticSpec) -> Path:
    """The dataset folder to read (``classes.txt`` + ``train/val/test.txt``); ``path`` "synthetic"
    names the built-in benchmark, which is written here the first time it is asked for."""
    if path == SYNTHETIC:
        root = synthetic_root(storage, spec)
        if not (root / CLASSES_FILE).exists():
            write_benchmark(root, spec)
        elif changed := mismatches(root):
            log.warning("the benchmark in %s differs from its manifest (%d file(s): %s); writing it again",
                        root, len(changed), ", ".join(changed[:3]) + (", ..." if len(changed) > 3 else ""))
            write_benchmark(root, spec)
        return root
    root = Path(path).expanduser().resolve()
    if not (root / CLASSES_FILE).exists():
        raise UsageError(f"data.path {path!r}: no {CLASSES_FILE} there; expected a dataset folder "
                         f"({CLASSES_FILE}, train.txt, val.txt, test.txt) or {SYNTHETIC!r}")
    return root


def write_benchmark(root: Path, spec: SyntheticSpec) -> None:
    """Write the benchmark beside ``root`` and rename it into place, so a half-written one is never read."""
    log.info("writing the built-in temporal benchmark to %s", root)
    partial = root.with_name(root.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    shutil.rmtree(root, ignore_errors=True)  # one that failed its manifest check
    summary = write_synthetic(partial, videos_per_class=spec.videos_per_class, size=spec.size,
                              frames=spec.frames, seed=spec.seed, val_per_class=spec.val_per_class,
                              test_per_class=spec.test_per_class, clutter=spec.clutter)
    os.replace(partial, root)  # the lists hold paths relative to the folder
    log.info("  %d videos of %d classes in %.0f s (fingerprint %s)", summary["videos"], summary["classes"],
             summary["seconds"], summary["fingerprint"])
