"""The Ray Data pipeline end to end on real mp4 files: actor-pool decoding, epochs, bad files, Ray Train.

One Ray instance for the module (2 CPUs, like the machine the defaults are measured on).
"""
import os
import sys

import numpy as np
import pytest

from data_helpers import bad_files, numbered_video, video_list
from pipelines.cluster import fit_decode_pool
from pipelines.data.batches import iter_clip_batches, to_model_input
from pipelines.data.dataset import DecodePool, build_dataset
from pipelines.data.decoding import decode_views
from pipelines.data.sampling import ClipSpec
from pipelines.data.video_io import read_frame_number
from pipelines.training.metrics import average_scores_by_video

ray = pytest.importorskip("ray")

SPEC = ClipSpec(frames=4, stride=3, crop=32, train_short=(32, 44), eval_short=40, test_short=48, test_clips=2)
POOL = DecodePool(num_cpus=1, min_actors=1, max_actors=1, batch_size=2)  # one actor: fastest start


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ.setdefault("RAY_TRAIN_HEALTH_CHECK_INTERVAL_S", "0.2")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the train loop below, by value
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def good(tmp_path_factory):
    folder = tmp_path_factory.mktemp("good")
    return [numbered_video(folder / f"v{i}.mp4", 20 + 7 * i) for i in range(6)]


@pytest.fixture(scope="module")
def bad(tmp_path_factory):
    return bad_files(tmp_path_factory.mktemp("bad"))


def served(dataset, batch_size=4):
    """(video, view) -> clip for one pass, asserting no (video, view) comes twice."""
    clips = {}
    for batch in dataset.iter_batches(batch_size=batch_size, batch_format="numpy"):
        for clip, video, view in zip(batch["clip"], batch["video"], batch["view"]):
            key = (int(video), int(view))
            assert key not in clips, f"{key} served twice in one epoch"
            clips[key] = clip
    return clips


def test_good_videos_are_served_exactly_once_per_epoch_and_bad_ones_skipped_and_counted(good, bad):
    videos = video_list(good + list(bad.values()))
    clips = build_dataset(videos, SPEC, "train", pool=POOL, max_bad_fraction=0.5, start_epoch=3)
    for epoch in (3, 4):
        seen = served(clips.dataset)
        assert sorted(video for video, _ in seen) == list(range(len(good)))
        for (video, _), clip in seen.items():  # each epoch re-samples, reproducibly
            expected = decode_views(good[video], 0, SPEC, "train", epoch)[0][0]
            assert np.array_equal(clip, expected)
        summary = clips.health.summary(epoch)
        assert summary["videos_served"] == len(good) and summary["clips_served"] == len(good)
        assert summary["videos_served_twice"] == 0
        assert summary["skipped_by_reason"] == {reason: 1 for reason in bad}


def test_too_many_unreadable_videos_stop_the_run_with_the_first_offenders(good, bad):
    videos = video_list(good[:2] + list(bad.values()))
    clips = build_dataset(videos, SPEC, "eval", pool=POOL, max_bad_fraction=0.25)
    with pytest.raises(Exception) as caught:
        served(clips.dataset)
    message = str(caught.value)
    assert "TooManyBadVideos" in message and "videos unreadable in epoch 0" in message
    assert "first offenders" in message and sum(path in message for path in bad.values()) >= 3


def test_test_mode_streams_k_clips_x_3_crops_per_video_for_score_averaging(good):
    videos = video_list(good[:3])
    clips = build_dataset(videos, SPEC, "test", pool=POOL)
    seen = served(clips.dataset)
    assert sorted(seen) == [(video, view) for video in range(3) for view in range(2 * 3)]
    assert all(clip.shape == (4, 48, 48, 3) for clip in seen.values())
    keys = list(seen)
    scores = np.array([[float(read_frame_number(seen[k][0]))] for k in keys])  # first frame of each view
    ids, mean = average_scores_by_video(np.array([k[0] for k in keys]), scores)
    for video, value in zip(ids, mean[:, 0]):
        starts = [read_frame_number(seen[(video, v)][0]) for v in range(6)]
        assert value == pytest.approx(np.mean(starts))


def test_decode_pool_fits_beside_the_training_workers():
    assert fit_decode_pool(2, 0.5, cluster_cpus=2) == DecodePool(1.0, 1, 1, 8)
    assert fit_decode_pool(1, 1.0, cluster_cpus=2) == DecodePool(1.0, 1, 1, 8)
    assert fit_decode_pool(2, 0.75, cluster_cpus=2) == DecodePool(0.25, 1, 2, 8)
    assert fit_decode_pool(0, 1.0, cluster_cpus=16).max_actors == 16
    with pytest.raises(ValueError, match="no CPU left for decoding"):
        fit_decode_pool(2, 1.0, cluster_cpus=2)


def test_to_model_input_normalises_uint8_clips_to_float_channels_first():
    import torch

    clips = torch.full((2, 4, 8, 8, 3), 255, dtype=torch.uint8)
    clips[..., 1] = 0
    x = to_model_input(clips, mean=(0.5, 0.5, 0.5), std=(0.5, 0.25, 0.5))
    assert x.shape == (2, 3, 4, 8, 8) and x.dtype == torch.float32
    assert torch.allclose(x[:, 0], torch.tensor(1.0)) and torch.allclose(x[:, 1], torch.tensor(-2.0))


@pytest.mark.slow
def test_every_pass_over_the_dataset_gives_normalised_float_clips_of_the_next_epoch(good):
    pool = fit_decode_pool(train_workers=1, cpus_per_worker=1.0, batch_size=2)
    clips = build_dataset(video_list(good), SPEC, "train", pool=pool)
    for epoch in range(2):
        videos, shapes = [], set()
        for batch in iter_clip_batches(clips.dataset, batch_size=3):
            videos += batch.videos.tolist()
            shapes.add((tuple(batch.clips.shape[1:]), str(batch.clips.dtype), str(batch.labels.dtype)))
        assert sorted(videos) == list(range(len(good)))
        assert shapes == {((3, 4, 32, 32), "torch.float32", "torch.int64")}
    assert [clips.health.summary(e)["videos_served"] for e in (0, 1)] == [len(good), len(good)]
