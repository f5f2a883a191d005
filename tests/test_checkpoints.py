"""Checkpoints: found from what a user types, loaded safely, refused with one line when they are not ours."""
import pickle
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import run
from pipelines.training.checkpoints import CHECKPOINT_FILE, CheckpointError, find_checkpoint, load_checkpoint

ROOT = Path(__file__).resolve().parents[1]


class CreatesAFile:
    """A pickle that, if unpickled by a trusting loader, would create ``path``."""

    def __init__(self, path: str) -> None:
        self.path = path

    def __reduce__(self):
        return (open, (self.path, "w"))


def test_a_malicious_pickle_is_refused_by_predict_and_runs_nothing(tmp_path):
    folder, marker = tmp_path / "checkpoint_evil", tmp_path / "pwned"
    folder.mkdir()
    with open(folder / CHECKPOINT_FILE, "wb") as handle:
        pickle.dump({"model": CreatesAFile(str(marker))}, handle)
    done = subprocess.run([sys.executable, "run.py", "predict", "--checkpoint", str(folder), "video.mp4"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2 and not marker.exists()
    assert "not a checkpoint this project wrote" in done.stderr and "Traceback" not in done.stderr


def test_a_plain_data_checkpoint_loads_with_weights_only(tmp_path):
    state = {"model": {"w": torch.ones(2)}, "epoch": 3, "classes": ["a", "b"], "config": {"preset": "smoke"}}
    torch.save(state, tmp_path / CHECKPOINT_FILE)
    loaded = load_checkpoint(tmp_path)
    assert loaded["epoch"] == 3 and loaded["classes"] == ["a", "b"] and torch.equal(loaded["model"]["w"], torch.ones(2))


def test_a_run_folder_means_its_latest_checkpoint(tmp_path):
    for name in ("checkpoint_2026-12-01_10-00-00.000001", "checkpoint_2026-12-01_11-00-00.000001"):
        (tmp_path / name).mkdir()
        torch.save({"epoch": 0}, tmp_path / name / CHECKPOINT_FILE)
    (tmp_path / "checkpoint_2026-12-01_12-00-00.000001").mkdir()  # being written: no state yet
    assert find_checkpoint(tmp_path).endswith("checkpoint_2026-12-01_11-00-00.000001")
    assert find_checkpoint(tmp_path / "checkpoint_2026-12-01_10-00-00.000001").endswith("10-00-00.000001")


@pytest.mark.parametrize("kind, message", [
    ("missing", "no such checkpoint folder"),
    ("state file", "is a file; expected a checkpoint folder or a run folder (its folder is"),
    ("empty folder", "neither a checkpoint folder"),
])
def test_a_wrong_checkpoint_path_is_one_line_naming_it(tmp_path, capsys, kind, message):
    path = {"missing": tmp_path / "nope", "state file": tmp_path / CHECKPOINT_FILE, "empty folder": tmp_path}[kind]
    if kind == "state file":
        torch.save({"epoch": 0}, path)
    with pytest.raises(CheckpointError, match="^" + str(path).replace(".", r"\.")):
        find_checkpoint(path)
    assert run.main(["predict", "--checkpoint", str(path), "clip.mp4"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and str(path) in err and message in err
