"""Loading 2D ResNet weights (torchvision names) into every member of the family."""
import pytest
import torch

from smallbig import build_model, list_models, load_2d_weights
from smallbig.inflation import translate_key
from torchvision_resnet import ResNet2d, randomize_norms

# Variants that start as the 2D ResNet they are inflated from: every big view enters
# through a norm that starts at zero, and the official extra unit is a zero-init residual.
STARTS_AS_2D = sorted(
    set(list_models("smallbig_r23_*")) - {
        "smallbig_r23_full_singlebn",  # BN(W(x + pool x)) sees the big view from the start
        "smallbig_r23_full_paper",     # sigmoid gates scale by 0.5 at init
        "smallbig_r23_full_se",
    }
) + ["r23_2d", "smallbig_r50_full"]


@pytest.fixture(scope="module")
def resnet50_2d():
    return randomize_norms(ResNet2d((3, 4, 6, 3), num_classes=10)).eval()


@pytest.fixture(scope="module")
def clip():
    return torch.randn(2, 3, 4, 64, 64)


def test_2d_model_loads_a_torchvision_state_dict_unchanged(resnet50_2d, clip):
    model = build_model("r50_2d", num_classes=10).eval()
    report = load_2d_weights(model, resnet50_2d.state_dict(), include_fc=True)
    assert report.skipped == {} and report.kept_init == []
    assert set(report.loaded) == {translate_key(k) for k in resnet50_2d.state_dict()}
    with torch.no_grad():
        assert torch.allclose(model(clip), resnet50_2d.per_frame_logits(clip), atol=1e-4)


@pytest.mark.parametrize("name", STARTS_AS_2D)
def test_inflated_smallbig_net_starts_as_its_2d_resnet(name, resnet50_2d, clip):
    model = build_model(name, num_classes=10).eval()
    load_2d_weights(model, resnet50_2d.state_dict(), include_fc=True)
    reference = resnet50_2d
    if model.config.depth == 23:  # R23 takes the first blocks of each R50 stage
        reference = ResNet2d((1, 2, 3, 1), num_classes=10).eval()
        reference.load_state_dict({k: v for k, v in resnet50_2d.state_dict().items() if k in reference.state_dict()})
    with torch.no_grad():
        assert torch.allclose(model(clip), reference.per_frame_logits(clip), atol=1e-4)


def test_r23_takes_the_first_blocks_of_r50_and_reports_the_rest(resnet50_2d):
    model = build_model("smallbig_r23_full")
    report = load_2d_weights(model, resnet50_2d.state_dict())
    deeper = {k for k, why in report.skipped.items() if why == "deeper block"}
    r23_blocks = {"layer1": 1, "layer2": 2, "layer3": 3, "layer4": 1}
    expected = {k for k in resnet50_2d.state_dict()
                if k.startswith("layer") and int(k.split(".")[1]) >= r23_blocks[k.split(".")[0]]}
    assert deeper == expected
    assert report.skipped["fc.weight"] == "classifier"
    assert any(".big_norm." in k for k in report.kept_init) and any(".extra." in k for k in report.kept_init)
    assert torch.equal(model.layer3[2].unit2.conv.weight[:, :, 0], resnet50_2d.layer3[2].conv2.weight)
    assert "inflated" in report.summary()


def test_temporal_kernels_are_inflated_by_repeating_and_dividing(resnet50_2d):
    model = build_model("r23_3d")
    load_2d_weights(model, resnet50_2d.state_dict())
    weight = model.layer2[0].unit1.conv.weight
    assert weight.shape[2] == 3
    for t in range(3):
        assert torch.allclose(weight[:, :, t], resnet50_2d.layer2[0].conv1.weight / 3)


def test_unshared_big_view_conv_starts_from_the_same_2d_weight(resnet50_2d):
    model = build_model("smallbig_r23_full_noshare")
    load_2d_weights(model, resnet50_2d.state_dict())
    unit = model.layer3[0].unit1
    assert torch.equal(unit.big_conv.weight, unit.conv.weight)


def test_checkpoint_that_does_not_fit_is_refused_with_the_key_named(resnet50_2d):
    state = dict(resnet50_2d.state_dict())
    state["layer2.0.conv2.weight"] = torch.zeros(128, 128, 5, 5)
    model = build_model("r23_2d")
    with pytest.raises(ValueError, match="layer2.0.conv2.weight"):
        load_2d_weights(model, state)
    report = load_2d_weights(model, state, strict=False)
    assert report.skipped["layer2.0.conv2.weight"] == "did not fit"
    assert torch.equal(model.layer2[0].unit1.conv.weight[:, :, 0], resnet50_2d.layer2[0].conv1.weight)
