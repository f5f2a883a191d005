"""The built-in temporal benchmark: what each class family guarantees, and the folder it writes."""
import json
from pathlib import Path

import numpy as np
import pytest

import run
from pipelines.data.annotations import read_dataset_folder
from pipelines.data.decoding import open_video
from pipelines.data.folders import resolve_data
from pipelines.data.manifest import file_hashes, fingerprint, mismatches
from pipelines.data.synthetic import (
    CLASSES,
    REVERSED_OF,
    SyntheticSpec,
    accuracy_by_group,
    class_names,
    render_video,
    write_synthetic,
)
from pipelines.data.synthetic.render import _Scene, _trajectory
from pipelines.data.video_io import probe_size


@pytest.mark.parametrize("backward, forward", sorted(REVERSED_OF.items()))
def test_family_a_second_class_is_the_first_played_backwards(backward, forward):
    a = render_video(forward, size=32, frames=16, seed=[3, 1])
    b = render_video(backward, size=32, frames=16, seed=[3, 1])
    assert np.array_equal(b, a[::-1])
    assert not np.array_equal(a, a[::-1])  # something does move


def test_every_class_is_in_a_family_and_pairs_are_complete():
    assert {c.family for c in CLASSES} == {"A", "B"}
    family_a = [c.name for c in CLASSES if c.family == "A"]
    assert sorted(family_a) == sorted(list(REVERSED_OF) + list(REVERSED_OF.values()))
    assert len(class_names()) == len(set(class_names())) == 19


def trajectory(name, seed, frames=32, size=64):
    return _trajectory(name, _Scene(size, frames, np.random.default_rng(seed)))


@pytest.mark.parametrize("smooth, shuffled", [("sweep_once", "sweep_shuffled"), ("fast_sweep", "fast_shuffled")])
def test_shuffled_classes_visit_the_same_positions_in_another_order(smooth, shuffled):
    for seed in range(5):
        a, b = trajectory(smooth, seed)["cx"], trajectory(shuffled, seed)["cx"]
        assert np.allclose(np.sort(a), np.sort(b)) and not np.allclose(a, b)


def test_fast_classes_move_three_to_six_pixels_per_frame_at_64px():
    for seed in range(10):
        steps = np.abs(np.diff(trajectory("fast_sweep", seed)["cx"]))
        assert 2.0 <= np.median(steps) <= 6.0 + 1e-9


def test_family_b_classes_are_alike_frame_by_frame():
    # Positions of one and two sweeps (or bounces) share a distribution when the phase is random.
    for once, twice, key in [("sweep_once", "sweep_twice", "cx"), ("bounce_once", "bounce_twice", "cy")]:
        a = np.concatenate([trajectory(once, s)[key] for s in range(300)])
        b = np.concatenate([trajectory(twice, s + 1000)[key] for s in range(300)])
        assert abs(a.mean() - b.mean()) < 0.6 and abs(a.std() - b.std()) < 0.6
    lit = [trajectory(name, s)["glow"].mean() for name in ("pulse_periodic", "pulse_once") for s in range(5)]
    assert np.allclose(lit, 0.25)


def test_same_seed_same_video_other_seed_other_video():
    a = render_video("rotate_clockwise", size=32, frames=16, seed=[0, 4, 2])
    assert np.array_equal(a, render_video("rotate_clockwise", size=32, frames=16, seed=[0, 4, 2]))
    assert not np.array_equal(a, render_video("rotate_clockwise", size=32, frames=16, seed=[0, 4, 3]))


def test_odd_sizes_are_refused_before_encoding():
    with pytest.raises(ValueError, match="even"):
        render_video("approach", size=33, frames=16)


def test_run_py_data_synth_writes_a_dataset_folder_of_h264_videos(tmp_path, capsys):
    out = tmp_path / "synth"
    assert run.main(["data", "synth", "--out", str(out), "--videos-per-class", "3", "--size", "32",
                     "--frames", "12", "--seed", "5"]) == 0
    assert "wrote 57 videos of 19 classes" in capsys.readouterr().out
    splits = {split: read_dataset_folder(out, split) for split in ("train", "val", "test")}
    assert [len(splits[s]) for s in ("train", "val", "test")] == [19, 19, 19]
    assert splits["train"].classes == tuple(class_names())
    meta = json.loads((out / "synth.json").read_text())
    assert meta["classes"][0]["family"] == "A" and meta["frames"] == 12
    import av

    record = splits["test"].records[-1]
    with av.open(record.path) as container:
        assert container.streams.video[0].codec_context.name == "h264"
    assert len(open_video(record.path)) == 12 and probe_size(record.path) == (32, 32)


def test_the_benchmark_is_byte_identical_in_any_folder_and_with_any_process_count(tmp_path):
    """The same spec gives the same bytes: frames drawn from (seed, class, index), single-threaded
    x264, lists relative to the folder, nothing about where or when it was written."""
    one = write_synthetic(tmp_path / "a", videos_per_class=3, size=32, frames=8, seed=1, workers=1)
    two = write_synthetic(tmp_path / "elsewhere" / "deeper" / "b", videos_per_class=3, size=32, frames=8, seed=1,
                          workers=2)
    assert one["videos"] == two["videos"] == 57
    hashes = file_hashes(tmp_path / "a")
    assert len(hashes) == 57 + 5  # the videos, classes.txt, three lists and synth.json
    assert hashes == file_hashes(tmp_path / "elsewhere" / "deeper" / "b")
    assert one["fingerprint"] == two["fingerprint"] == fingerprint(tmp_path / "a")
    other_seed = write_synthetic(tmp_path / "c", videos_per_class=3, size=32, frames=8, seed=2, workers=1)
    assert other_seed["fingerprint"] != one["fingerprint"]
    record = read_dataset_folder(tmp_path / "a", "val").records[7]
    rendered = render_video(class_names()[record.label], 32, 8,
                            seed=[1, record.label, int(Path(record.path).stem.rsplit("_", 1)[1])])
    decoded = open_video(record.path).get_batch(list(range(8))).asnumpy().astype(int)
    assert np.abs(decoded - rendered).mean() < 4  # what crf 18 loses on a 32 px video


def test_a_reused_benchmark_that_differs_from_its_manifest_is_reported_and_written_again(tmp_path, caplog):
    spec = SyntheticSpec(videos_per_class=3, size=32, frames=8, seed=1)
    root = resolve_data("synthetic", str(tmp_path / "runs"), spec)
    written = fingerprint(root)
    video = root / read_dataset_folder(root, "train").records[0].key
    video.write_bytes(video.read_bytes()[:-100])  # a truncated copy
    (root / "stray.txt").write_text("not part of the benchmark")
    assert mismatches(root) == sorted([video.relative_to(root).as_posix(), "stray.txt"])
    with caplog.at_level("WARNING"):
        assert resolve_data("synthetic", str(tmp_path / "runs"), spec) == root
    assert "differs from its manifest (2 file(s)" in caplog.text
    assert mismatches(root) == [] and fingerprint(root) == written and not (root / "stray.txt").exists()


def test_accuracy_is_reported_per_family_and_group():
    names = class_names()
    labels = [names.index("slide_left_to_right"), names.index("slide_right_to_left"), names.index("sweep_once")]
    predictions = [labels[0], labels[0], labels[2]]
    result = accuracy_by_group(labels, predictions)
    assert result["overall"] == pytest.approx(2 / 3)
    assert result["family A"] == 0.5 and result["A: slide"] == 0.5
    assert result["family B"] == 1.0 and result["B: sweep"] == 1.0
