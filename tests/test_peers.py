"""The seeds' peers: Non-local, TSM, TAM / bLVNet-TAM, S3D / S3D-G.

One test per idea (what the shift moves, what TAM and the gate compute, where the
non-local blocks sit and that they start as the identity, which frames each bLVNet branch
sees), every peer's forward/backward at small sizes, and ImageNet inflation.
"""
import json
import sys
from pathlib import Path

import pytest
import torch

import smallbig
from smallbig import (
    PEERS,
    FeatureGate,
    NonLocalBlock,
    TemporalAggregation,
    TemporalShift,
    build_model,
    count_gmacs,
    count_parameters,
    list_models,
    load_2d_weights,
)
from torchvision_resnet import ResNet2d, randomize_norms

ROOT = Path(__file__).resolve().parents[1]


def test_every_peer_is_registered_under_its_family_name():
    assert list_models("nonlocal_*") == ["nonlocal_r23", "nonlocal_r50"]
    assert list_models("tsm_*") == ["tsm_r23", "tsm_r50"]
    assert list_models("*tam*") == ["blvnet_tam_r23", "blvnet_tam_r50"]
    assert list_models("s3d*") == ["s3d", "s3dg"]
    assert set(PEERS) <= set(list_models())
    for name in PEERS:
        assert "et al." in smallbig.get_entry(name).description or name.startswith(("nonlocal", "tsm"))


# --- TSM -------------------------------------------------------------------------------

def test_temporal_shift_moves_one_eighth_of_channels_each_way_with_zero_padding():
    # 8 channels, 4 frames, one pixel: value 10 * channel + frame + 1.
    clip = (10 * torch.arange(8.0).view(1, 8, 1, 1, 1) + torch.arange(4.0).view(1, 1, 4, 1, 1) + 1)
    out = TemporalShift(fold_div=8)(clip)[0, :, :, 0, 0]
    assert out[0].tolist() == [2, 3, 4, 0]       # channel 0 takes the next frame
    assert out[1].tolist() == [0, 11, 12, 13]    # channel 1 takes the previous frame
    assert torch.equal(out[2:], clip[0, 2:, :, 0, 0])  # the other 6/8 stay where they are


def test_tsm_resnet_shifts_every_residual_branch_and_costs_nothing_extra():
    tsm, plain = build_model("tsm_r50"), build_model("r50_2d")
    blocks = [b for stage in tsm.stages for b in stage]
    assert len(blocks) == 16 and all(isinstance(b.mixer, TemporalShift) for b in blocks)
    assert count_parameters(tsm) == count_parameters(plain)  # the paper: 24.3M, as ResNet-50
    assert count_gmacs(tsm, frames=2, size=64) == count_gmacs(plain, frames=2, size=64)


def test_tsm_block_leaves_its_shortcut_unshifted():
    block = build_model("tsm_r23", num_classes=3).layer1[0].eval()
    x = torch.rand(1, 64, 4, 6, 6)
    with torch.no_grad():
        block.unit3.norm.weight.zero_()  # silence the residual branch: output = relu(shortcut(x))
        block.unit3.norm.bias.zero_()
        assert torch.allclose(block(x), torch.relu(block.downsample(x)))


# --- TAM -------------------------------------------------------------------------------

def test_tam_with_weights_0_1_0_is_the_identity():
    x = torch.rand(2, 6, 5, 3, 3)  # non-negative, as TAM's input (post-ReLU features) is
    assert torch.equal(TemporalAggregation(6).set_weights(0, 1, 0)(x), x)


def test_tam_with_weights_1_0_0_delays_the_clip_by_one_frame():
    x = torch.rand(2, 6, 5, 3, 3)
    delayed = TemporalAggregation(6).set_weights(1, 0, 0)(x)
    assert torch.equal(delayed[:, :, 1:], x[:, :, :-1])
    assert torch.equal(delayed[:, :, 0], torch.zeros_like(x[:, :, 0]))  # zero padded
    ahead = TemporalAggregation(6).set_weights(0, 0, 1)(x)
    assert torch.equal(ahead[:, :, :-1], x[:, :, 1:])


def test_tam_is_a_weighted_sum_of_neighbouring_frames_then_relu():
    x = torch.randn(1, 4, 3, 2, 2)
    out = TemporalAggregation(4).set_weights(0.5, -1.0, 2.0)(x)
    expected = torch.relu(-1.0 * x[:, :, 1] + 0.5 * x[:, :, 0] + 2.0 * x[:, :, 2])
    assert torch.allclose(out[:, :, 1], expected)


def test_tam_can_sit_in_any_resnet_block():
    model = build_model("r23_2d", temporal_module="tam", temporal_module_stages=["res4", "res5"])
    assert model.layer2[0].mixer is None and isinstance(model.layer3[0].mixer, TemporalAggregation)


# --- S3D-G feature gating ------------------------------------------------------------

def test_gate_with_zero_weight_and_large_bias_is_the_identity():
    gate = FeatureGate(5)
    with torch.no_grad():
        gate.fc.weight.zero_()
        gate.fc.bias.fill_(50.0)
    x = torch.randn(2, 5, 3, 4, 4)
    assert torch.allclose(gate(x), x)
    with torch.no_grad():
        gate.fc.bias.zero_()
    assert torch.allclose(gate(x), 0.5 * x)  # sigmoid(0): every channel at half


def test_gating_is_an_option_of_s3d():
    gated, plain = build_model("s3dg", num_classes=400), build_model("s3d", num_classes=400)
    gates = [m for m in gated.modules() if isinstance(m, FeatureGate)]
    assert len(gates) == 2 + 9 * 4  # the stem's two separable convs, every branch of 9 Inception blocks
    assert not any(isinstance(m, FeatureGate) for m in plain.modules())
    assert not any(isinstance(m, FeatureGate) for m in build_model("s3dg", gating=False).modules())
    # S3D without gating has torchvision's s3d layout: the same 8,320,048 parameters at 400 classes.
    assert count_parameters(plain) == 8_320_048


def test_s3d_separable_convs_are_spatial_then_temporal():
    conv1a = build_model("s3d").stem[0]
    assert conv1a[0][0].kernel_size == (1, 7, 7) and conv1a[0][0].stride == (1, 2, 2)
    assert conv1a[1][0].kernel_size == (7, 1, 1) and conv1a[1][0].stride == (2, 1, 1)


# --- Non-local -------------------------------------------------------------------------

def _non_local_positions(model):
    return [f"{name}.{i}" for name in ("layer1", "layer2", "layer3", "layer4")
            for i, block in enumerate(getattr(model, name)) if block.non_local is not None]


def test_nonlocal_blocks_sit_after_every_other_block_of_res3_and_res4():
    assert _non_local_positions(build_model("nonlocal_r50")) == [
        "layer2.1", "layer2.3", "layer3.1", "layer3.3", "layer3.5"]  # the paper's 5 blocks
    assert _non_local_positions(build_model("nonlocal_r23")) == ["layer2.1", "layer3.1"]
    assert build_model("nonlocal_r50").layer2[0].unit1.conv.kernel_size == (3, 1, 1)  # on the 3D backbone


def test_nonlocal_block_with_zero_init_output_is_the_identity():
    block = NonLocalBlock(8).eval()
    x = torch.randn(2, 8, 3, 4, 4)
    assert torch.equal(block(x), x)


@pytest.mark.parametrize("name, backbone", [("nonlocal_r23", "r23_3d"), ("nonlocal_r23", "r23_2d")])
def test_nonlocal_net_starts_as_its_backbone(name, backbone):
    reference = randomize_norms(build_model(backbone, num_classes=5)).eval()
    options = {} if backbone.endswith("3d") else {"temporal_stages": []}
    model = build_model(name, num_classes=5, **options).eval()
    missing, unexpected = model.load_state_dict(reference.state_dict(), strict=False)
    assert unexpected == [] and missing and all(".non_local." in k for k in missing)
    clip = torch.randn(2, 3, 4, 32, 32)
    with torch.no_grad():
        assert torch.allclose(model(clip), reference(clip), atol=1e-5)
        for block in model.modules():  # a trained output norm switches the attention on
            if isinstance(block, NonLocalBlock):
                block.norm.weight.fill_(1.0)
        assert not torch.allclose(model(clip), reference(clip), atol=1e-3)


def test_nonlocal_attention_sees_every_frame():
    block = NonLocalBlock(4).eval()
    with torch.no_grad():
        block.norm.weight.fill_(1.0)
    x = torch.randn(1, 4, 5, 4, 4)
    changed = x.clone()
    changed[:, :, 4] += 1.0
    delta = (block(changed) - block(x))[:, :, 0]  # frame 0 responds to a change at frame 4
    assert delta.abs().max() > 1e-4


# --- bLVNet-TAM ------------------------------------------------------------------------

def _silence(norm):
    with torch.no_grad():
        norm.weight.zero_()
        norm.bias.zero_()


def test_blvnet_sends_odd_frames_to_the_big_branch_and_even_frames_to_the_little_one():
    model = build_model("blvnet_tam_r50", base_width=16).eval()
    stem = model.layer0
    stem.tam.set_weights(0, 1, 0)  # no mixing, so each branch's input frames are visible
    x = torch.rand(1, 16, 6, 8, 8)
    other_even, other_odd = x.clone(), x.clone()
    other_even[:, :, 0::2] = torch.rand_like(x[:, :, 0::2])
    other_odd[:, :, 1::2] = torch.rand_like(x[:, :, 1::2])
    with torch.no_grad():
        assert stem(x).shape == (1, 16, 3, 4, 4)  # pairs merged: T/2 frames at half resolution
        _silence(stem.little[2][1])  # only the big branch speaks: even frames do not matter
        assert torch.equal(stem(other_even), stem(x)) and not torch.equal(stem(other_odd), stem(x))
    model = build_model("blvnet_tam_r50", base_width=16).eval()
    stem = model.layer0
    stem.tam.set_weights(0, 1, 0)
    with torch.no_grad():
        _silence(stem.big[1])  # only the little branch speaks: odd frames do not matter
        assert torch.equal(stem(other_odd), stem(x)) and not torch.equal(stem(other_even), stem(x))


def test_blvnet_branches_have_the_papers_shape():
    model = build_model("blvnet_tam_r50")
    assert [len(model.layer1.big), len(model.layer2.big), len(model.layer3.big)] == [2, 3, 5]  # n - 1
    assert [len(s.little) for s in (model.layer1, model.layer2, model.layer3)] == [1, 1, 1]   # n // 4 - 1, at least 1
    assert model.layer1.little[0].unit1.conv.out_channels == 32  # alpha = 2: half the width
    assert all(isinstance(b.mixer, TemporalAggregation) for b in model.layer4)  # TAM in every res5 block
    assert all(isinstance(s.tam, TemporalAggregation) for s in (model.layer0, model.layer1, model.layer2, model.layer3))


def test_blvnet_needs_an_even_clip_length():
    with pytest.raises(ValueError, match="must be even"):
        build_model("blvnet_tam_r23", base_width=16)(torch.randn(1, 3, 5, 32, 32))


# --- every peer ----------------------------------------------------------------------

@pytest.mark.parametrize("frames, size", [(4, 32), (8, 48)])
@pytest.mark.parametrize("name", PEERS)
def test_every_peer_maps_clips_to_logits_and_trains(name, frames, size):
    model = build_model(name, num_classes=5, num_frames=frames, base_width=32, dropout=0.2)
    logits = model(torch.randn(2, 3, frames, size, size))
    assert logits.shape == (2, 5) and torch.isfinite(logits).all()
    logits.logsumexp(dim=1).sum().backward()
    grads = [p.grad for p in model.parameters()]
    assert all(g is not None for g in grads) and grads[0].abs().sum() > 0


@pytest.mark.parametrize("name", ["blvnet_tam_r23", "s3dg"])
def test_peer_builders_reject_unknown_options(name):
    with pytest.raises(ValueError, match="unknown model option.*valid options"):
        build_model(name, pool_type="avg")


def test_flops_command_counts_every_peer(capsys):
    sys.path.insert(0, str(ROOT))
    import run

    for name in PEERS:
        assert run.main(["flops", "--model", name, "--frames", "4", "--size", "32", "--json"]) == 0
        result = json.loads(capsys.readouterr().out)
        assert result["model"] == name and result["params"] > 1e6 and result["gmacs"] > 0


# --- ImageNet inflation --------------------------------------------------------------

@pytest.fixture(scope="module")
def resnet50_2d():
    return randomize_norms(ResNet2d((3, 4, 6, 3), num_classes=10)).eval()


@pytest.mark.parametrize("name", ["nonlocal_r50", "tsm_r50", "nonlocal_r23", "tsm_r23"])
def test_resnet_peers_load_a_torchvision_resnet50(name, resnet50_2d):
    model = build_model(name, num_classes=10)
    report = load_2d_weights(model, resnet50_2d.state_dict())
    kept = [k for k in report.kept_init if not k.startswith("fc.")]  # the classifier is the new task's
    assert all(".non_local." in k for k in kept) and bool(kept) == name.startswith("nonlocal")
    assert torch.equal(model.layer3[0].unit2.conv.weight[:, :, 0], resnet50_2d.layer3[0].conv2.weight)


def test_inflated_nonlocal_c2d_starts_as_the_2d_resnet(resnet50_2d):
    model = build_model("nonlocal_r50", num_classes=10, temporal_stages=[]).eval()
    load_2d_weights(model, resnet50_2d.state_dict(), include_fc=True)
    clip = torch.randn(1, 3, 4, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(clip), resnet50_2d.per_frame_logits(clip), atol=1e-4)


@pytest.mark.parametrize("name", ["blvnet_tam_r50", "blvnet_tam_r23"])
def test_blvnet_takes_big_branches_fusion_blocks_and_res5_from_a_resnet50(name, resnet50_2d):
    model = build_model(name, num_classes=10)
    report = load_2d_weights(model, resnet50_2d.state_dict())
    assert torch.equal(model.stem.conv.weight[:, :, 0], resnet50_2d.conv1.weight)
    assert torch.equal(model.layer2.big[0].unit2.conv.weight[:, :, 0], resnet50_2d.layer2[0].conv2.weight)
    last = model.blocks[1] - 1  # the stage's last block becomes the fusion block
    assert torch.equal(model.layer2.fusion.unit1.conv.weight[:, :, 0], resnet50_2d.layer2[last].conv1.weight)
    assert torch.equal(model.layer4[0].unit3.conv.weight[:, :, 0], resnet50_2d.layer4[0].conv3.weight)
    kept = " ".join(report.kept_init)
    assert "layer0." in kept and ".little." in kept and ".tam." in kept and ".mixer." in kept
    assert not any(k.startswith(("layer1.big.", "layer2.big.", "layer3.big.")) for k in report.kept_init)


def test_s3d_refuses_resnet_weights_with_a_reason(resnet50_2d):
    with pytest.raises(ValueError, match="Inception"):
        load_2d_weights(build_model("s3dg"), resnet50_2d.state_dict())
