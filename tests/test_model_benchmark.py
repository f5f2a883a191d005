"""The model-step and training-step benchmarks: what they report is what the models did (speed is not asserted)."""
import contextlib
import io
import json

import pytest
import torch
from torch.utils.flop_counter import FlopCounterMode

import run
import smallbig
from bench_helpers import conv_and_linear_macs, rate_bounds
from smallbig.pools import WholeClipPool
from smallbig.units import SmallBigUnit

SMALL = ["--batch", "2", "--frames", "4", "--size", "32", "--steps", "1", "--warmup", "1", "--threads", "1",
         "--classes", "10"]
CLIP = (2, 3, 4, 32, 32)  # what SMALL asks for: batch, channels, frames, height, width
ROLES = ("baseline", "candidate")


def watch_builds(monkeypatch) -> dict[str, torch.nn.Module]:
    """Every model ``smallbig.build_model`` builds from now on, by name, each recording in ``logit_dtypes``
    the dtype of its logits in every training-mode forward pass (the benchmarks' steps)."""
    built, build = {}, smallbig.build_model

    def build_and_watch(name, **options):
        model = build(name, **options)
        model.logit_dtypes = []
        model.register_forward_hook(lambda m, inputs, logits: m.logit_dtypes.append(logits.dtype) if m.training
                                    else None)
        built[name] = model
        return model

    monkeypatch.setattr(smallbig, "build_model", build_and_watch)
    return built


def bench_model(*flags):
    out = io.StringIO()
    with contextlib.redirect_stdout(out):
        assert run.main(["bench", "model", "--json", *SMALL, *flags]) == 0
    return json.loads(out.getvalue().strip().splitlines()[-1])


@pytest.fixture(scope="module")
def fp32_run():
    """One ``run.py bench model`` in float32 on the small clip: its report, the two models it timed
    and the dtypes of their logits in its steps (copied: the tests run the models again)."""
    with pytest.MonkeyPatch.context() as monkeypatch:
        built = watch_builds(monkeypatch)
        report = bench_model()
    models = {role: built[report[role]] for role in ROLES}
    return report, models, {role: list(model.logit_dtypes) for role, model in models.items()}


def test_bench_model_times_both_models_on_the_clip_asked_for_in_float32(fp32_run):
    report, _, dtypes = fp32_run
    assert report["input"] == list(CLIP) and report["device"] == "cpu"
    assert dtypes == {role: [torch.float32] * 2 for role in ROLES}  # a warmup and a timed step each, no autocast
    assert "peak_tflops" not in report and "memory_ratio" not in report  # a CPU has neither


def test_bench_model_reports_the_macs_each_model_does_on_that_clip(fp32_run):
    """The GMACs behind the GMAC ratio and the FLOP rates, against a count by hand from layer shapes."""
    report, models, _ = fp32_run
    counted = {role: sum(conv_and_linear_macs(model, torch.zeros(CLIP)).values()) / CLIP[0] / 1e9
               for role, model in models.items()}
    for role in ROLES:
        assert report[f"{role}_gmacs"] == pytest.approx(counted[role], rel=1e-9)
    assert report["gmac_ratio"] == pytest.approx(counted["candidate"] / counted["baseline"], rel=1e-9)


def test_smallbig_costs_more_than_its_2d_baseline_because_its_shared_convs_also_see_the_big_views(fp32_run):
    """SmallBig-R23 Full is R23 2D whose convs in res3-res5 also convolve a big view (Eq. 2), plus an
    extra unit per block. A 3x3x3 big view has the small view's shape, so its conv does twice the
    2D conv's work; a whole-clip (Tx3x3) view has one frame, so 1/T more. Every other layer costs
    what it costs in the 2D net."""
    _, models, _ = fp32_run
    base, candidate = (conv_and_linear_macs(models[role], torch.zeros(CLIP)) for role in ROLES)
    frames = CLIP[2]  # no layer of R23 strides in time
    factors = []
    for name, macs in base.items():
        owner = models["candidate"].get_submodule(name.rpartition(".")[0]) if "." in name else None
        factor = 1.0
        if isinstance(owner, SmallBigUnit) and owner.has_big_view:
            factor = 1 + 1 / frames if isinstance(owner.pool, WholeClipPool) else 2.0
        factors.append(factor)
        assert candidate[name] == pytest.approx(factor * macs, rel=1e-12), name
    # R23's res3-res5 hold 2 + 3 + 1 blocks, each with two 3x3x3 views and one Tx3x3 view
    assert factors.count(2.0) == 12 and factors.count(1 + 1 / frames) == 6
    added = [name for name in candidate if name not in base]
    assert len(added) == 2 * 6 and all(".extra." in name for name in added)  # W1 and W2 of each extra unit


def test_achieved_flop_rate_is_a_real_training_steps_flops_per_second_of_that_step(fp32_run):
    """forward + backward, counted by PyTorch on the same model and clip, is the "3 forward passes"
    the benchmark assumes (the first conv needs no input gradient: a little under 3); clips/s
    counts the batch's clips per timed step."""
    report, models, _ = fp32_run
    for role, model in models.items():
        with FlopCounterMode(display=False) as counter:
            model(torch.zeros(CLIP)).float().logsumexp(dim=1).sum().backward()
        step_s = report[f"{role}_step_s"]
        assert report[f"{role}_achieved_tflops"] * step_s * 1e12 == pytest.approx(counter.get_total_flops(), rel=0.05)
        assert report[f"{role}_clips_per_s"] * step_s == pytest.approx(CLIP[0])


def test_bench_model_with_bf16_runs_every_step_of_both_models_under_bf16_autocast(monkeypatch):
    models = watch_builds(monkeypatch)
    report = bench_model("--amp", "bf16")
    for role in ROLES:
        assert models[report[role]].logit_dtypes == [torch.bfloat16] * 2  # the warmup step and the timed one


def test_asking_for_cuda_without_a_gpu_is_a_clear_error(capsys):
    if torch.cuda.is_available():
        pytest.skip("this machine has a CUDA device")
    assert run.main(["bench", "model", *SMALL, "--device", "cuda"]) == 2
    assert "no CUDA device" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device: peak memory and the device's peak")
def test_bench_model_on_cuda_reports_memory_and_the_fraction_of_peak(monkeypatch):
    models = watch_builds(monkeypatch)
    report = bench_model("--device", "cuda", "--amp", "bf16")
    for role in ROLES:
        model = models[report[role]]
        assert model.logit_dtypes[0] == torch.bfloat16
        # at the end of a step the float32 weights and their gradients are all allocated at once
        resident = 2 * sum(p.numel() * p.element_size() for p in model.parameters())
        assert report[f"{role}_peak_memory_bytes"] >= resident
    assert "memory_ratio" in report and "peak_tflops" in report


def test_the_training_step_runs_under_bf16_autocast_with_a_finite_loss(monkeypatch):
    from benchmarks.train_step import measure

    models = watch_builds(monkeypatch)
    result = measure("r23_2d", amp="bf16", steps=4, batch=2, frames=4, size=32, classes=5, threads=1)
    assert models["r23_2d"].logit_dtypes == [torch.bfloat16] * 4  # every step, under autocast
    assert result["loss_finite"] and not result["grad_scaler"] and result["scale"] is None  # bf16 needs no scaler


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
    ray_run, torch_run, ceiling = (laptop["details"][who] for who in ("ray", "torch", "ceiling"))
    # the same work on both sides: both trained the same clips, counted as trained, a whole number of batches
    assert ray_run["clips"] == torch_run["clips"] and ray_run["clips"] % laptop["batch"] == 0
    assert ray_run["threads"] == torch_run["threads"] == laptop["threads"] == 2  # on the same torch threads
    assert ray_run["cache"] == torch_run["cache"] == "memory"  # each decodes every video once
    for who, measured in (("ray", ray_run), ("torch", torch_run)):  # each rate is its clips over its seconds
        low, high = rate_bounds(measured["clips"], measured["seconds"], seconds_digits=1)
        assert low <= laptop[who] <= high, who
    # the ceiling is the same model's bare step on clips of the same shape and batch
    assert (ceiling["model"], ceiling["clip"], ceiling["batch"], ceiling["steps"]) == (
        laptop["model"], laptop["clip"], laptop["batch"], 2)
    assert set(laptop["ratios"]) == {"ray/torch", "ray/ceiling"}  # the unequal script only when asked
    assert {"model", "options", "clip", "batch", "threads", "ceiling_threads"} <= set(laptop)
    assert ray_run["decoders_started"] == 0  # cached: nothing decodes while training
