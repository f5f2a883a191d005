"""The data-loading benchmark runs end to end and reports the four loaders (speed is not asserted)."""
import json
import os

import run


def test_bench_data_reports_clips_per_second_for_all_four_loaders(capsys):
    code = run.main(["bench", "data", "--json", "--videos", "2", "--repeat", "2", "--width", "64", "--height", "48",
                     "--video-frames", "24", "--frames", "4", "--stride", "2", "--crop", "32", "--batch-size", "2",
                     "--rounds", "2"])
    assert code == 0
    report = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    for key in ("single_process", "dataloader", "ray_data_1", "ray_data_2"):
        assert report[key] > 0 and report["details"][key]["clips"] == 4
        assert len(report["details"][key]["rounds"]) == 2  # each loader measured in turn, median reported
    assert report["details"]["single_process"]["pinned_to_one_cpu"]  # the per-core limit
    assert set(report["ratios"]) == {"ray_data_2/single_process", "ray_data_2/dataloader",
                                     "ray_data_1/single_process", "dataloader/single_process"}


def test_one_cpu_pins_the_body_and_restores_the_machine():
    from benchmarks.data_loading import one_cpu

    before = os.sched_getaffinity(0)
    with one_cpu() as pinned:
        assert pinned and len(os.sched_getaffinity(0)) == 1
    assert os.sched_getaffinity(0) == before
