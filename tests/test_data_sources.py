"""A worker's clips for a whole run, on real Ray and real mp4 files: one decode stream, or the cache."""
import os

import numpy as np
import pytest

from data_helpers import bad_files, numbered_video, video_list
from pipelines.data.cache import cache_videos, should_cache
from pipelines.data.dataset import DecodePool
from pipelines.data.decoding import decode_views
from pipelines.data.epochs import HELD_EPOCH
from pipelines.data.health import remote_tallies, remote_tally
from pipelines.data.sampling import ClipSpec
from pipelines.data.sources import CachedClips, StreamedClips

ray = pytest.importorskip("ray")

SPEC = ClipSpec(frames=4, stride=3, crop=32, train_short=(32, 44), eval_short=40, test_short=48, test_clips=2)
POOL = DecodePool(num_cpus=1, min_actors=1, max_actors=1, batch_size=2)


@pytest.fixture(scope="module", autouse=True)
def ray_cluster():
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.data.DataContext.get_current().enable_progress_bars = False
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def videos(tmp_path_factory):
    folder = tmp_path_factory.mktemp("videos")
    good = [numbered_video(folder / f"v{i}.mp4", 20 + 5 * i) for i in range(6)]
    pyav_only = numbered_video(folder / "v6.h264", 30)  # an elementary stream: decord cannot measure it
    bad = bad_files(folder / "bad")
    return video_list(good + [pyav_only, bad["truncated"], bad["missing"]])


def clips_by_key(samples):
    out = {}
    for s in samples:
        assert (s.epoch, s.video) not in out, "a video served twice in one epoch"
        out[(s.epoch, s.video)] = (s.clip, s.label)
    return out


@pytest.mark.slow
def test_one_stream_serves_every_epoch_with_decoders_started_once(videos):
    health = remote_tally(len(videos), max_bad_fraction=0.5)
    stream = StreamedClips(videos, SPEC, POOL, health)
    got = clips_by_key(stream.samples("train", [0, 1, 2], rank=0, world=1, shuffle=True))
    assert health.starts() == 1  # one actor for three epochs
    for epoch in range(3):
        assert sorted(v for e, v in got if e == epoch) == list(range(7))
        summary = health.summary(epoch)
        assert summary["videos_served"] == 7 and summary["videos_served_twice"] == 0
        assert summary["served_by_pyav"] == 1
        assert summary["skipped_by_reason"] == {"truncated": 1, "missing": 1}  # reported in every epoch
    for (epoch, video), (clip, _) in got.items():  # the clip is a function of (seed, epoch, video)
        assert np.array_equal(clip, decode_views(videos.records[video].path, 0, SPEC, "train", epoch)[0][0])


@pytest.mark.slow
def test_validation_clips_lead_the_training_stream_on_the_same_decoders(videos):
    val = video_list([r.path for r in videos.records[::-1]])  # another list: good, bad and PyAV-only videos
    tallies = remote_tallies({"train": (len(videos), "train"), "val": (len(val), "val")}, 0.5)
    train_health, val_health = tallies["train"], tallies["val"]
    assert train_health.actor is val_health.actor  # a run's two tallies: one actor, counted apart
    stream = StreamedClips(videos, SPEC, POOL, train_health, held=val, held_health=val_health)
    samples = list(stream.samples("train", [0, 1], rank=1, world=2, shuffle=True))
    held = [s for s in samples if s.epoch == HELD_EPOCH]
    assert all(s.epoch == HELD_EPOCH for s in samples[:len(held)])  # every validation clip comes first
    alone = list(StreamedClips(val, SPEC, POOL).samples("eval", [0], rank=1, world=2, shuffle=False))
    assert [(s.video, s.label) for s in held] == [(s.video, s.label) for s in alone]
    assert all(np.array_equal(a.clip, b.clip) for a, b in zip(held, alone))
    training = list(StreamedClips(videos, SPEC, POOL).samples("train", [0, 1], rank=1, world=2, shuffle=True))
    assert [(s.epoch, s.video) for s in samples[len(held):]] == [(s.epoch, s.video) for s in training]
    assert train_health.starts() == 1 and val_health.starts() == 0  # one actor decoded both
    assert val_health.summary(0)["videos_served"] == len(held)
    assert sum(val_health.summary(0)["skipped_by_reason"].values()) == 1  # rank 1's 4 videos: one bad


@pytest.mark.slow
def test_a_resumed_run_sees_the_same_clips_in_the_same_order(videos):
    """Resuming at epoch 1 serves, in order, the videos an uninterrupted run serves from epoch 1 on,
    and the same frames of each: the same temporal window, scale, crop and flip."""
    stream = StreamedClips(videos, SPEC, POOL)
    whole = [s for s in stream.samples("train", [0, 1, 2], 0, 1, True) if s.epoch >= 1]
    resumed = list(stream.samples("train", [1, 2], 0, 1, True))
    assert [(s.epoch, s.video, s.label) for s in resumed] == [(s.epoch, s.video, s.label) for s in whole]
    assert all(np.array_equal(a.clip, b.clip) for a, b in zip(resumed, whole))
    clip = {(s.epoch, s.video): s.clip for s in whole}  # and a video's clip does change with the epoch
    assert any(not np.array_equal(clip[1, video], clip[2, video]) for epoch, video in clip if epoch == 1)


@pytest.mark.slow
def test_the_cache_and_the_stream_give_the_same_clips_and_find_bad_files_once(videos):
    cache = cache_videos(videos)
    assert set(cache.bad) == {7, 8} and cache.nbytes > 0
    assert cache.decoders(range(len(videos))) == ["decord"] * 6 + ["pyav", None, None]
    assert {reason for reason, _ in cache.bad.values()} == {"truncated", "missing"}
    for rank in (0, 1):
        for mode, shuffle in (("train", True), ("eval", False), ("test", False)):
            streamed = list(StreamedClips(videos, SPEC, POOL).samples(mode, [3], rank, 2, shuffle))
            cached = list(CachedClips(videos, cache, SPEC).samples(mode, [3], rank, 2, shuffle))
            assert [(s.epoch, s.video, s.label) for s in cached] == [(s.epoch, s.video, s.label) for s in streamed]
            assert all(np.array_equal(a.clip, b.clip) for a, b in zip(cached, streamed))


@pytest.mark.slow
def test_the_cached_path_still_counts_bad_and_pyav_served_videos_in_every_epoch(videos):
    cache = cache_videos(videos)
    health = remote_tally(len(videos), max_bad_fraction=0.5)
    list(CachedClips(videos, cache, SPEC, health).samples("train", [0, 1], 0, 1, True))
    for epoch in (0, 1):
        assert health.summary(epoch)["skipped_by_reason"] == {"truncated": 1, "missing": 1}
        assert health.summary(epoch)["videos_served"] == 7
        assert health.summary(epoch)["served_by_pyav"] == 1  # decoded once by PyAV, counted every epoch


def test_auto_caches_a_set_that_fits_and_none_never_caches(videos):
    assert should_cache("auto", [videos])[0] and should_cache("memory", [videos])[0]
    assert not should_cache("none", [videos])[0]
    with pytest.raises(ValueError, match="data.cache 'ram'"):
        should_cache("ram", [videos])


def test_a_streams_row_numbers_come_a_decode_call_at_a_time_in_order_from_one_read_task():
    from pipelines.data.row_numbers import RowNumbers, row_numbers

    stream = row_numbers(100, 8)
    blocks = [block["data"].tolist() for block in stream.iter_batches(batch_size=None, batch_format="numpy")]
    assert blocks == [list(range(start, min(start + 8, 100))) for start in range(0, 100, 8)]
    assert len(RowNumbers(240_000, 8).get_read_tasks(200)) == 1  # a Kinetics list: nothing per block up front
    # the block size is the stream's own: a dataset made next has Ray Data's default blocks
    assert ray.data.DataContext.get_current().target_max_block_size != stream.context.target_max_block_size
    assert ray.data.range(100, override_num_blocks=1).take_batch(100)["id"].tolist() == list(range(100))
