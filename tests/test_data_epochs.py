"""Which videos each worker sees per epoch, and how its clips become exactly the same number of batches."""
import numpy as np
import pytest

from pipelines.data.epochs import Sample, epoch_batches, share_size, worker_share


def test_every_video_goes_to_exactly_one_worker_each_epoch_and_the_order_changes_with_the_epoch():
    for epoch in range(3):
        shares = [worker_share(10, epoch, seed=0, rank=r, world=3).tolist() for r in range(3)]
        assert sorted(sum(shares, [])) == list(range(10))
        assert [len(s) for s in shares] == [share_size(10, r, 3) for r in range(3)] == [4, 3, 3]
    assert worker_share(10, 0, 0, 0, 1).tolist() != worker_share(10, 1, 0, 0, 1).tolist()


def test_the_split_is_a_function_of_seed_epoch_and_rank_alone():
    assert worker_share(50, 7, 3, 1, 2).tolist() == worker_share(50, 7, 3, 1, 2).tolist()
    assert worker_share(50, 7, 3, 1, 2).tolist() != worker_share(50, 7, 4, 1, 2).tolist()
    assert worker_share(6, 2, 0, 1, 2, shuffle=False).tolist() == [1, 3, 5]  # validation: the list's order


def samples(epoch, videos):
    return [Sample(epoch, v, None, 0) for v in videos]


def test_each_epoch_gives_exactly_its_steps_and_drops_the_rest():
    stream = samples(0, range(7)) + samples(1, range(7))
    out = [(epoch, [s.video for s in batch]) for epoch, batch in epoch_batches(stream, [0, 1], steps=2, batch_size=3)]
    assert out == [(0, [0, 1, 2]), (0, [3, 4, 5]), (1, [0, 1, 2]), (1, [3, 4, 5])]


def test_an_epoch_short_of_clips_repeats_its_first_ones_so_every_worker_makes_the_same_steps():
    stream = samples(0, [0, 1, 6]) + samples(1, range(6))  # epoch 0 lost four videos to bad files
    out = [(epoch, [s.video for s in batch]) for epoch, batch in epoch_batches(stream, [0, 1], steps=2, batch_size=3)]
    assert out == [(0, [0, 1, 6]), (0, [0, 1, 6]), (1, [0, 1, 2]), (1, [3, 4, 5])]


def test_the_epoch_is_read_to_its_end_before_its_last_batch_is_handed_out():
    """So that when a worker has its last batch of an epoch, the epoch's count is complete."""
    read = []

    def stream():
        for sample in samples(0, range(5)) + samples(1, range(5)):
            read.append((sample.epoch, sample.video))
            yield sample

    batches = epoch_batches(stream(), [0, 1], steps=2, batch_size=2)
    next(batches)
    next(batches)  # epoch 0's last batch: video 4 (dropped) and epoch 1's first were read first
    assert (0, 4) in read and read[-1] == (1, 0)


def test_an_epoch_without_any_readable_clip_is_an_error():
    with pytest.raises(RuntimeError, match="epoch 1: no readable training clip"):
        list(epoch_batches(samples(0, range(4)) + samples(2, range(4)), [0, 1, 2], steps=2, batch_size=2))


def test_a_streams_rows_permute_the_list_once_per_epoch_not_once_per_batch():
    """On Kinetics a permutation is 240,000 numbers and a batch 8 videos: the decode actors turn
    row numbers into videos from one permutation per epoch, kept while its batches arrive."""
    from pipelines.data.annotations import VideoList, VideoRecord
    from pipelines.data.sources import ShareRows

    videos = VideoList([VideoRecord(f"v{i}.mp4", i % 4) for i in range(100)], ["a", "b", "c", "d"], "list")
    rows = ShareRows(videos, [0, 1, 2], seed=3, rank=1, world=2, shuffle=True)
    first = rows({"data": np.arange(0, 8)})["video"]
    assert rows.share(0) is rows.share(0)  # kept, not computed again
    assert first.tolist() == worker_share(100, 0, 3, 1, 2).tolist()[:8]
    later = rows({"data": np.arange(50, 58)})["video"]  # epoch 1's first batch
    assert later.tolist() == worker_share(100, 1, 3, 1, 2).tolist()[:8]
    rows({"data": np.arange(100, 108)})  # epoch 2: epoch 0 is dropped, two epochs at most are kept
    assert sorted(rows._shares) == [1, 2]
