"""The registry, the paper's parameter and GMAC figures, and every model's forward/backward."""
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from smallbig import PAPER_TABLES, build_model, count_gmacs, count_parameters, list_models

ROOT = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize("name, params, gmacs", [
    ("r23_2d", (11_349_968, 0), (16.98, 0.2)),
    ("smallbig_r23_typical", (11.37e6, 0.01), (26.5, 0.5)),
    ("smallbig_r23_full", (13.24e6, 0.01), (31.5, 0.5)),
    ("smallbig_r23_full_noshare", (21.4e6, 0.03), (31.5, 0.5)),  # paper: 22.1M (see README)
    ("r50_2d", (24.33e6, 0.01), (32.7, 0.5)),
])
def test_paper_parameter_and_gmac_figures(name, params, gmacs):
    model = build_model(name, num_classes=400)
    expected_params, rel = params
    if rel == 0:
        assert count_parameters(model) == expected_params
    else:
        assert count_parameters(model) == pytest.approx(expected_params, rel=rel)
    assert count_gmacs(model, frames=8, size=224) == pytest.approx(gmacs[0], abs=gmacs[1])


def test_single_bn_folds_the_views_into_one_conv():
    """Table 6's single BN costs what the 2D net costs, plus the extra unit."""
    single = count_gmacs(build_model("smallbig_r23_full_singlebn"), frames=8, size=224)
    two_d = count_gmacs(build_model("r23_2d"), frames=8, size=224)
    extra = count_gmacs(build_model("smallbig_r23_full"), frames=8, size=224) - \
        count_gmacs(build_model("smallbig_r23_typical"), frames=8, size=224)
    assert single == pytest.approx(two_d + extra, rel=1e-3)


def test_registry_names_the_checked_models():
    names = list_models()
    for required in ("r23_2d", "r23_3d", "smallbig_r23_full", "r50_2d", "r101_2d", "smallbig_r101_full"):
        assert required in names
    assert list_models("smallbig_r23_3x*") == sorted(
        ["smallbig_r23_3x1x1", "smallbig_r23_3x3x3", "smallbig_r23_3x5x5", "smallbig_r23_3x7x7",
         "smallbig_r23_3x3x3_res2", "smallbig_r23_3x3x3_res3", "smallbig_r23_3x3x3_res4",
         "smallbig_r23_3x3x3_res5", "smallbig_r23_3x3x3_res2-5"])


def test_every_paper_table_row_names_a_registered_model():
    names = set(list_models())
    assert set(PAPER_TABLES) == {f"table{i}" for i in range(2, 11)}
    for table in PAPER_TABLES.values():
        for row in table.rows:
            assert row.model in names, (table.key, row.label)


@pytest.mark.parametrize("name", list_models())
def test_every_model_maps_clips_to_logits_and_trains(name):
    model = build_model(name, num_classes=7, num_frames=4)
    clip = torch.randn(2, 3, 4, 32, 32)
    logits = model(clip)
    assert logits.shape == (2, 7)
    assert torch.isfinite(logits).all()
    logits.logsumexp(dim=1).sum().backward()
    first_conv = next(m for m in model.modules() if isinstance(m, torch.nn.Conv3d))
    assert model.fc.weight.grad is not None and first_conv.weight.grad.abs().sum() > 0


def test_unknown_options_are_clear_errors():
    with pytest.raises(ValueError, match="unknown model option.*valid options"):
        build_model("r23_2d", big_view_size="3x3x3")
    with pytest.raises(ValueError, match="sizes must be odd"):
        build_model("smallbig_r23_3x3x3", big_views=["4x3x3", None, None])
    with pytest.raises(ValueError, match="unknown stage"):
        build_model("smallbig_r23_3x3x3", smallbig_stages=["res6"])
    with pytest.raises(KeyError, match="unknown model"):
        build_model("smallbig_r24_full")


def test_options_override_a_registered_variant():
    model = build_model("smallbig_r23_full", pool_type="avg", smallbig_stages="res4,res5")
    assert model.config.pool_type == "avg"
    assert model.layer2[0].unit1.pool is None and model.layer3[0].unit1.pool is not None


def test_models_package_never_imports_ray():
    code = "import sys, smallbig; smallbig.build_model('smallbig_r23_full'); print('ray' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=ROOT)
    assert out.stdout.strip() == "False"


def test_flops_command_prints_params_and_gmacs_as_json():
    import json

    out = subprocess.run(
        [sys.executable, "run.py", "flops", "--model", "r23_2d", "--frames", "8", "--size", "224",
         "--classes", "400", "--json"], capture_output=True, text=True, check=True, cwd=ROOT)
    result = json.loads(out.stdout)
    assert result["params"] == 11_349_968
    assert result["gmacs"] == pytest.approx(16.98, abs=0.2)


def test_flops_command_applies_overrides_and_rejects_bad_ones():
    base = [sys.executable, "run.py", "flops", "--model", "smallbig_r23_full", "--size", "112", "--json"]
    out = subprocess.run(base + ["--set", "share_conv=false"], capture_output=True, text=True, check=True, cwd=ROOT)
    assert '"params": 209' in out.stdout  # ~20.9M with a second conv per view
    bad = subprocess.run(base + ["--set", "pool_type=median"], capture_output=True, text=True, cwd=ROOT)
    assert bad.returncode == 2 and "pool_type" in bad.stderr


def test_model_benchmark_compares_the_default_models_at_the_macs_of_the_clip_it_timed():
    """`python run.py bench model --json` prints its report alone, for R23 2D against SmallBig-R23
    Full with the 400-class head; their GMACs (and so the GMAC ratio the time ratio is read against)
    are those of the clip it was asked to time, not of its default clip, counted here by hand."""
    import json

    from bench_helpers import conv_and_linear_macs

    out = subprocess.run(
        [sys.executable, "run.py", "bench", "model", "--json", "--size", "32", "--frames", "4",
         "--batch", "2", "--steps", "1"], capture_output=True, text=True, check=True, cwd=ROOT)
    result = json.loads(out.stdout)
    assert (result["baseline"], result["candidate"]) == ("r23_2d", "smallbig_r23_full")
    assert result["input"] == [2, 3, 4, 32, 32]
    clip = torch.zeros(1, 3, 4, 32, 32)
    counted = {role: sum(conv_and_linear_macs(build_model(result[role], num_frames=4), clip).values()) / 1e9
               for role in ("baseline", "candidate")}
    assert result["baseline_gmacs"] == pytest.approx(counted["baseline"], rel=1e-9)
    assert result["candidate_gmacs"] == pytest.approx(counted["candidate"], rel=1e-9)
    assert result["gmac_ratio"] == pytest.approx(counted["candidate"] / counted["baseline"], rel=1e-9)


def test_base_width_scales_every_stage():
    """A "small" R23 (base width 32) has a quarter of the conv MACs of the paper's."""
    full, small = build_model("r23_2d"), build_model("r23_2d", base_width=32)
    assert small.layer1[0].unit1.conv.out_channels == 32 and small.fc.in_features == 1024
    ratio = count_gmacs(small, frames=2, size=64) / count_gmacs(full, frames=2, size=64)
    assert 0.24 < ratio < 0.3
