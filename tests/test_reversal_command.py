"""`run.py reversal`: can a model tell a clip from the same clip played backwards, and does it?

`--model` is an exact check on random weights in float64 (``smallbig.reversal``); every
registered model is covered by test_time_reversal.py, so here the command is run as a user
runs it, on one model of each kind. `--checkpoint` scores a checkpoint's test views forward
and reversed (``pipelines.training.reversal``): once through the command on the built-in
benchmark, and its counting on hand-made clips, without Ray.
"""
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

import run
from pipelines.data.batches import ClipBatch
from pipelines.data.synthetic import class_names, write_synthetic
from pipelines.presets import preset
from pipelines.training.checkpoints import save_initial_checkpoint
from pipelines.training.reversal import (
    BENCHMARK_LABELS,
    SAME_LABEL,
    benchmark_families,
    compare,
    reversed_classes,
    split_directions,
)
from pipelines.training.scoring import both_ways, score_batches
from pipelines.training.testing import per_video

ROOT = Path(__file__).resolve().parents[1]


def reversal(*flags, timeout=300):
    """``python run.py reversal FLAGS --json`` in a fresh process: its one JSON object."""
    env = {k: v for k, v in os.environ.items() if k not in ("MLFLOW_TRACKING_URI", "RAY_ADDRESS")}
    env.update(RAY_AUTH_MODE="disabled")
    done = subprocess.run([sys.executable, "run.py", "reversal", *flags, "--json"], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)
    assert done.returncode == 0, done.stderr[-4000:]
    return json.loads(done.stdout)


def test_smallbig_as_released_gives_the_same_logits_for_a_clip_and_its_reversal():
    result = reversal("--model", "smallbig_r23_full")
    assert result["model"] == "smallbig_r23_full" and result["invariant"] is True
    assert result["max_abs_diff"] < 1e-12 * (1 + result["max_abs_logit"])  # float64 rounding, nothing more
    assert result["dtype"] == "float64" and result["tolerance"] == 1e-9


@pytest.mark.parametrize("flags", [
    ["--model", "r23_3d"],                                                   # 3x1x1 convs
    ["--model", "tsm_r23"],                                                  # channels shifted along T
    ["--model", "smallbig_r23_full", "--set", "temporal_stages=[res3,res4,res5]"],  # a temporal shared conv
], ids=["3d", "tsm", "smallbig with a temporal shared conv"])
def test_a_temporal_operator_tells_a_clip_from_its_reversal(flags):
    result = reversal(*flags)
    assert result["model"] == flags[1] and result["invariant"] is False
    assert result["max_abs_diff"] > 1e-4 * result["max_abs_logit"]  # far above rounding


def test_checkpoint_mode_needs_the_dataset_and_takes_no_model_options(tmp_path, capsys):
    assert run.main(["reversal", "--checkpoint", str(tmp_path)]) == 2
    assert "needs --data DIR" in capsys.readouterr().err
    assert run.main(["reversal", "--checkpoint", str(tmp_path), "--data", str(tmp_path), "--set", "a=1"]) == 2
    assert "--set applies to --model" in capsys.readouterr().err


def write_benchmark_checkpoint(folder: Path, model: str) -> Path:
    """A checkpoint as training writes it (``state.pt``: weights, optimizer, config, classes), for
    the built-in benchmark's 19 classes, at its initial weights: reversal is about the
    architecture's symmetry, which training cannot change, and training would cost a minute."""
    save_initial_checkpoint(folder, preset("smoke").with_overrides({"model.name": model}), class_names())
    return folder


@pytest.mark.slow
def test_checkpoint_mode_scores_the_test_views_both_ways_per_family(tmp_path):
    data = tmp_path / "data"
    write_synthetic(data, videos_per_class=3, size=64, frames=16, workers=1)
    write_benchmark_checkpoint(tmp_path / "run" / "checkpoint_000000", "smallbig_r23_full")

    result = reversal("--checkpoint", str(tmp_path / "run"), "--data", str(data))  # a run folder: its latest

    assert result["checkpoint"].endswith("checkpoint_000000") and result["model"] == "smallbig_r23_full"
    assert (result["split"], result["videos"], result["views_per_video"]) == ("test", 19, 2)  # smoke: 2 clips x 1 crop
    assert set(result["families"]) == {"family A", "family B"}
    # the built-in benchmark is recognised: a reversed family-A clip is scored as its pair partner
    assert result["reversed_labels"] == BENCHMARK_LABELS
    # Invariant: no prediction changes (what that means for each family's top-1 is counted on
    # hand-made predictions below: at initial weights every top-1 here is about 0)
    assert result["flip_rate"] == 0.0 and all(f["flip_rate"] == 0.0 for f in result["families"].values())


class ArrowOfTime(torch.nn.Module):
    """Class 0 when the clip gets brighter, 1 when it gets darker: all it sees is the arrow of time."""

    def forward(self, clips):
        change = clips[:, :, -1].mean(dim=(1, 2, 3)) - clips[:, :, 0].mean(dim=(1, 2, 3))
        return torch.stack([change, -change], dim=1)


class TimeBlind(torch.nn.Module):
    """Class 0 when the clip is bright on average: the order of the frames does not matter."""

    def forward(self, clips):
        level = clips.mean(dim=(1, 2, 3, 4))
        return torch.stack([level, -level], dim=1)


def brightening_and_darkening_clips() -> list[ClipBatch]:
    ramp = torch.linspace(-1, 1, 8).view(1, 1, 8, 1, 1).expand(1, 3, 8, 4, 4)
    clips = torch.cat([ramp + 0.5, -ramp + 0.5, ramp - 0.5, -ramp - 0.5])  # bright up, bright down, dark up, dark down
    return [ClipBatch(clips, torch.tensor([0, 1, 0, 1]), torch.arange(4), torch.zeros(4, dtype=torch.int64))]


@pytest.mark.parametrize("model, expected", [
    (ArrowOfTime(), {"top1": 100.0, "reversed_top1": 100.0, "flip_rate": 100.0}),  # right both ways
    (TimeBlind(), {"top1": 50.0, "reversed_top1": 50.0, "flip_rate": 0.0}),       # never flips
])
def test_a_model_that_reads_the_arrow_of_time_flips_its_predictions_and_stays_right(model, expected):
    ids, scores, labels = per_video(score_batches(model, both_ways(brightening_and_darkening_clips(), offset=4)))
    labels, forward, backward = split_directions(ids, scores, labels, offset=4)
    reversed_labels = 1 - labels  # a brightening clip played backwards darkens: the pair partner
    assert compare(labels, forward, reversed_labels, backward) == expected


def test_a_model_that_flips_nothing_is_right_on_a_family_a_clip_or_on_its_reversal_never_both():
    """One benchmark video per class, each predicted as its own class both ways (no flip): every
    family-A clip is right forward and wrong reversed (it then shows its pair partner), every
    family-B clip right both ways (its class has no direction)."""
    names = class_names()
    labels = np.arange(len(names))
    partners, _ = reversed_classes(names, labels)
    families = benchmark_families(names, labels, labels, partners, labels)
    assert families == {"family A": {"top1": 100.0, "reversed_top1": 0.0, "flip_rate": 0.0},
                        "family B": {"top1": 100.0, "reversed_top1": 100.0, "flip_rate": 0.0}}


def test_reversed_benchmark_clips_are_scored_as_their_pair_partner_and_other_data_by_its_own_label():
    names = class_names()
    labels = np.array([names.index("slide_left_to_right"), names.index("recede"), names.index("sweep_once")])
    partners, how = reversed_classes(names, labels)
    assert [names[i] for i in partners] == ["slide_right_to_left", "approach", "sweep_once"]
    assert "pair partner" in how
    same, how = reversed_classes(["open", "close"], np.array([0, 1]))  # what "open" reversed is, we cannot know
    assert same.tolist() == [0, 1] and how == SAME_LABEL
