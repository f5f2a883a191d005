"""Where an experiment's videos live: a dataset folder, or the built-in benchmark, written on first use."""
from __future__ import annotations

import dataclasses
import logging
import os
import shutil
from pathlib import Path

from .. import storage as storage_rules
from ..errors import UsageError
from .annotations import CLASSES_FILE, AnnotationError, read_classes, read_lines
from .manifest import mismatches
from .sampling import ClipSpec
from .synthetic import SyntheticSpec, write_synthetic

log = logging.getLogger(__name__)

SYNTHETIC = "synthetic"  # the value of data.path that asks for the built-in benchmark
FLIP_MAP_FILE = "flip_map.txt"  # a dataset's label swaps for mirrored clips (class index pairs)


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


def write_flip_map(file: Path, swap: dict[int, int]) -> None:
    """``flip_map.txt``: ``class mirrored_class`` per line, indices of ``classes.txt``."""
    lines = "".join(f"{a} {b}\n" for a, b in sorted(swap.items()))
    file.write_text("# class index, then the class a mirrored clip of it shows (lines of classes.txt)\n" + lines,
                    encoding="utf-8")


def read_flip_map(root: Path) -> dict[int, int] | None:
    """The dataset folder's label swaps for mirrored clips, None when it has none."""
    file = root / FLIP_MAP_FILE
    if not file.is_file():
        return None
    classes = len(read_classes(root / CLASSES_FILE))
    swap = {}
    for number, line in enumerate(read_lines(file), start=1):
        fields = line.split("#", 1)[0].split()
        if not fields:
            continue
        if len(fields) != 2 or not all(f.isdigit() and int(f) < classes for f in fields):
            raise AnnotationError(file, number, "classes", f"{line.strip()!r} (expected two class indices "
                                  f"0..{classes - 1}: a class and the class its mirror image shows)")
        swap[int(fields[0])] = int(fields[1])
    return swap


def clip_spec_for(spec: ClipSpec, root: Path) -> ClipSpec:
    """``spec`` with the dataset's own flip map when clips are flipped and no map was given: a
    mirrored "pushing something from left to right" must be labelled "... right to left"."""
    if not spec.flip or spec.flip_label_map is not None:
        return spec
    swap = read_flip_map(root)
    if swap:
        log.info("flipped clips swap labels by %s (%d classes)", root / FLIP_MAP_FILE, len(swap))
    return dataclasses.replace(spec, flip_label_map=swap) if swap else spec
