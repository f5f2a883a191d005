"""The data-loading benchmark runs end to end and reports the four loaders (speed is not asserted)."""
import json
import os
import statistics

import pytest

import run
from bench_helpers import rate_bounds


def test_bench_data_reports_clips_per_second_for_all_four_loaders(capsys):
    code = run.main(["bench", "data", "--json", "--videos", "2", "--repeat", "2", "--width", "64", "--height", "48",
                     "--video-frames", "24", "--frames", "4", "--stride", "2", "--crop", "32", "--batch-size", "2",
                     "--rounds", "2"])
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("single_process", "dataloader", "ray_data_1", "ray_data_2"):
        details = report["details"][key]
        assert details["clips"] == 4  # every clip of the 2 videos x 2 repeats, counted as served
        rounds = details["rounds"]  # each loader measured in turn, the median reported
        assert len(rounds) == 2 and report[key] == pytest.approx(statistics.median(rounds), abs=0.01)
        # the details are the slower round's: its clips/s is its clips over its seconds
        low, high = rate_bounds(details["clips"], details["seconds"], seconds_digits=2)
        assert low <= min(rounds) <= high, key
    assert report["details"]["single_process"]["pinned_to_one_cpu"]  # the per-core limit
    assert set(report["ratios"]) == {"ray_data_2/single_process", "ray_data_2/dataloader",
                                     "ray_data_1/single_process", "dataloader/single_process"}


def test_one_cpu_pins_the_body_and_restores_the_machine():
    from benchmarks.data_loading import one_cpu

    before = os.sched_getaffinity(0)
    with one_cpu() as pinned:
        assert pinned and len(os.sched_getaffinity(0)) == 1
    assert os.sched_getaffinity(0) == before


def test_bench_decode_reads_the_same_clips_from_originals_and_copies_and_reports_both_rates(capsys, tmp_path):
    code = run.main(["bench", "decode", "--json", "--videos", "1", "--passes", "2", "--rounds", "1",
                     "--scratch", str(tmp_path)])
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert report["clips"] == 2  # one training clip a video and pass, from each side
    for side in ("original", "reencoded"):
        low, high = rate_bounds(report["clips"], report[f"{side}_seconds"], seconds_digits=2)
        assert low <= report[f"{side}_clips_per_core_s"] <= high, side
    assert report["speedup"] == pytest.approx(report["reencoded_clips_per_core_s"] / report["original_clips_per_core_s"],
                                              abs=0.01)
    # the copies are the same frames up to the codec's loss (a wrong frame differs by tens of levels)
    assert 0 < report["mean_abs_difference"] < 6
    import decord

    (original,), (copy,) = (list((tmp_path / folder).glob("*.mp4"))
                            for folder in ("youtube-340x256", "copies-340x256-320p-k8"))
    assert len(decord.VideoReader(str(original)).get_key_indices()) <= 2  # 250 apart, or x264's own scene cut
    assert list(decord.VideoReader(str(copy)).get_key_indices()) == list(range(0, 300, 8))


def test_bench_scale_runs_both_lists_through_the_stream_and_reports_the_ratios(capsys):
    code = run.main(["bench", "scale", "--json", "--large", "800", "--small", "80", "--classes", "4", "--steps", "1"])
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert (report["videos_large"], report["videos_small"]) == (800, 80)
    for size in ("small", "large"):
        assert report[size]["clips"] == 4 and report[size]["first_batch_s"] > 0  # one training step of 4 clips
    for ratio, measure in (("driver_rss_ratio", "driver_rss_mb"), ("worker_rss_ratio", "worker_rss_mb"),
                           ("first_batch_ratio", "first_batch_s")):
        assert report[ratio] == pytest.approx(report["large"][measure] / report["small"][measure], abs=0.001)
    assert report["list_lines_per_s"] == pytest.approx(800 / report["large"]["list_read_s"], rel=0.01)
