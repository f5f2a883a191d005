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


@pytest.mark.slow
def test_bench_train_reports_ray_torch_and_the_ceiling(capsys, tmp_path):
    # the cached case only: the streaming case's runs are the same two functions over other
    # videos (bench data writes those), and a streamed fit's decoders are counted in test_training
    code = run.main(["bench", "train", "--json", "--only", "laptop", "--preset", "smoke", "--epochs", "1",
                     "--ceiling-steps", "2", "--storage", str(tmp_path)])
    assert code == 0
    laptop = json.loads(capsys.readouterr().out)["laptop"]  # stdout is the report alone: Ray's lines go elsewhere
    assert laptop["ray"] > 0 and laptop["torch"] > 0 and laptop["ceiling"] > 0
    assert {"model", "options", "clip", "batch", "threads"} <= set(laptop)
    assert laptop["ratios"]["ray/torch"] > 0 and laptop["ratios"]["ray/ceiling"] > 0
    assert laptop["details"]["ray"]["decoders_started"] == 0  # cached: nothing decodes while training
