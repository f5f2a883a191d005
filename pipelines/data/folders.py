"""Where an experiment's videos live: a dataset folder, or the built-in benchmark made on first use."""
from __future__ import annotations

import os
from pathlib import Path

from .experiment import ExperimentConfig


def synthetic_root(config: ExperimentConfig) -> Path:
    s = config.data.synthetic
    base = Path(config.run.storage).expanduser().resolve() / "datasets"
    return base / f"synthetic-n{s.videos_per_class}-s{s.size}-f{s.frames}-seed{s.seed}"


def resolve_data(config: ExperimentConfig) -> Path:
    """The dataset folder to read (``classes.txt`` + ``train/val/test.txt``), generating the benchmark if asked."""
    if config.data.path == "synthetic":
        root = synthetic_root(config)
        if not (root / "classes.txt").exists():
            import shutil

            from .synthetic import write_synthetic

            s = config.data.synthetic
            print(f"writing the built-in temporal benchmark to {root} (first use)", flush=True)
            partial = root.with_name(root.name + ".partial")  # an interrupted write is never read
            shutil.rmtree(partial, ignore_errors=True)
            summary = write_synthetic(partial, videos_per_class=s.videos_per_class, size=s.size,
                                      frames=s.frames, seed=s.seed)
            os.replace(partial, root)  # the lists hold paths relative to the folder
            print(f"  {summary['videos']} videos of {summary['classes']} classes in {summary['seconds']:.0f} s",
                  flush=True)
        return root
    root = Path(config.data.path).expanduser().resolve()
    if not (root / "classes.txt").exists():
        raise ValueError(f"data.path {config.data.path!r}: no classes.txt there; expected a dataset folder "
                         f"(classes.txt, train.txt, val.txt, test.txt) or 'synthetic'")
    return root

