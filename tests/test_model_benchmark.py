"""The model-step and training-step benchmarks run and report what the GPU check reads (speed is not asserted)."""
import json

import pytest
import torch

import run

SMALL = ["--batch", "2", "--frames", "4", "--size", "32", "--steps", "1", "--warmup", "1", "--threads", "1",
         "--classes", "10"]


def bench_model(capsys, *flags):
    assert run.main(["bench", "model", "--json", *SMALL, *flags]) == 0
    return json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def test_bench_model_reports_ratios_and_achieved_flop_rates(capsys):
    report = bench_model(capsys)
    assert report["input"] == [2, 3, 4, 32, 32] and report["device"] == "cpu" and report["amp"] == "none"
    for role in ("baseline", "candidate"):
        assert report[f"{role}_clips_per_s"] > 0 and report[f"{role}_achieved_tflops"] > 0
        # forward + backward is three forward passes: 3 x 2 x MACs x clips per second
        expected = 6 * report[f"{role}_gmacs"] * 1e9 * report[f"{role}_clips_per_s"] / 1e12
        assert report[f"{role}_achieved_tflops"] == pytest.approx(expected)
    assert report["gmac_ratio"] > 1 and report["time_over_gmac"] == pytest.approx(
        report["time_ratio"] / report["gmac_ratio"])
    assert "peak_tflops" not in report and "memory_ratio" not in report  # a CPU has neither


def test_bench_model_runs_bf16_autocast_on_the_cpu(capsys):
    assert bench_model(capsys, "--amp", "bf16")["amp"] == "bf16"


def test_asking_for_cuda_without_a_gpu_is_a_clear_error(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    assert run.main(["bench", "model", *SMALL, "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device: peak memory and the device's peak")
def test_bench_model_on_cuda_reports_memory_and_the_fraction_of_peak(capsys):
    report = bench_model(capsys, "--device", "cuda", "--amp", "bf16")
    assert report["baseline_peak_memory_bytes"] > 0 and report["memory_ratio"] > 0


def test_the_training_step_runs_under_bf16_autocast_with_a_finite_loss():
    from benchmarks.train_step import measure

    result = measure("r23_2d", amp="bf16", steps=4, batch=2, frames=4, size=32, classes=5, threads=1)
    assert result["loss_finite"] and result["clips_per_s"] > 0 and not result["grad_scaler"]


def test_train_and_ablation_take_compile_as_a_switch():
    from pipelines.presets import preset

    parser = run.build_parser()
    assert run.experiment_from_args(parser.parse_args(["train", "--preset", "smoke", "--compile"])).model.compile
    assert not run.experiment_from_args(parser.parse_args(["ablation", "--preset", "smoke"])).model.compile
    assert not preset("laptop").model.compile  # off by default until measured to help


def test_the_scripts_in_memory_set_serves_the_clips_that_decoding_every_epoch_gives(tmp_path):
    """Like for like: where Ray caches, bench train's script decodes each video once and still
    trains on the very clips (and labels) that decoding each epoch anew would give."""
    from benchmarks.torch_script import EpochClips, decode_once
    from data_helpers import numbered_video, video_list
    from pipelines.presets import preset

    spec = preset("smoke").data.clip
    paths = [numbered_video(tmp_path / f"v{i}.mp4", 20) for i in range(3)]
    videos = video_list(paths + [str(tmp_path / "missing.mp4")])
    frames = decode_once(videos, spec, processes=1)
    assert [None if f is None else len(f) for f in frames] == [20, 20, 20, None]
    cached, decoded = EpochClips(videos, spec, frames), EpochClips(videos, spec)
    for key in [(0, 0), (0, 2), (1, 0), (3, 1)]:
        (clip, label), (expected, expected_label) = cached[key], decoded[key]
        assert torch.equal(clip, expected) and label == expected_label
    assert not torch.equal(cached[0, 0][0], cached[1, 0][0])  # each epoch cuts a clip of its own
    assert cached[0, 3] is None and decoded[0, 3] is None  # a bad video is skipped by both


@pytest.mark.slow
def test_bench_train_compares_like_with_like_and_reports_ray_torch_and_the_ceiling(capsys, tmp_path):
    # the cached case only: the streaming case's runs are the same two functions over other
    # videos (bench data writes those), and a streamed fit's decoders are counted in test_training
    code = run.main(["bench", "train", "--json", "--only", "laptop", "--preset", "smoke", "--epochs", "1",
                     "--threads", "2", "--ceiling-steps", "2", "--storage", str(tmp_path)])
    assert code == 0
    laptop = json.loads(capsys.readouterr().out)["laptop"]  # stdout is the report alone: Ray's lines go elsewhere
    assert laptop["ray"] > 0 and laptop["torch"] > 0 and laptop["ceiling"] > 0
    assert {"model", "options", "clip", "batch", "threads", "ceiling_threads"} <= set(laptop)
    assert set(laptop["ratios"]) == {"ray/torch", "ray/ceiling"}  # the unequal script only when asked
    ray, script = laptop["details"]["ray"], laptop["details"]["torch"]
    assert ray["clips"] == script["clips"] > 0  # both trained the same clips, counted as trained
    assert ray["threads"] == script["threads"] == laptop["threads"] == 2  # on the same torch threads
    assert ray["cache"] == script["cache"] == "memory"  # each decodes every video once
    assert ray["decoders_started"] == 0  # cached: nothing decodes while training
