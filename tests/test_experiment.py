"""Experiment configuration: presets, overrides, clear errors, and a round trip through plain data."""
import pytest
import yaml

from pipelines.config import ExperimentConfig
from pipelines.errors import UsageError
from pipelines.presets import PRESETS, preset


@pytest.mark.parametrize("name", sorted(PRESETS))
def test_every_preset_survives_a_round_trip_through_plain_data(name):
    config = preset(name)
    plain = yaml.safe_load(yaml.safe_dump(config.to_dict()))  # what a YAML file or MLflow would hold
    assert ExperimentConfig.from_dict(plain).to_dict() == config.to_dict()


def test_overrides_reach_nested_fields_and_model_options():
    config = preset("laptop").with_overrides({"optim.lr": 0.1, "data.clip.frames": 16,
                                              "model.options.pool_type": "avg"})
    assert config.optim.lr == 0.1 and config.data.clip.frames == 16
    assert config.model.options == {"base_width": 16, "pool_type": "avg"}


def test_unknown_keys_name_the_field_and_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown key\(s\) \['optim.learning_rate'\].*valid keys in optim"):
        preset("smoke").with_overrides({"optim.learning_rate": 0.1})
    with pytest.raises(ValueError, match="'optim.lr.x' is not a section|is not a section"):
        preset("smoke").with_overrides({"optim.lr.x": 1})
    with pytest.raises(ValueError, match="unknown preset"):
        preset("imagenet")


def test_learning_rate_scales_with_the_global_batch():
    optim = preset("kinetics").optim
    assert optim.scaled_lr(256) == pytest.approx(2 * optim.lr)


def test_command_line_set_without_a_dot_is_a_model_option():
    import run

    args = run.build_parser().parse_args(["train", "--preset", "smoke", "--epochs", "3", "--set", "pool_type=avg",
                                          "--set", "optim.lr=0.5", "--data", "/some/folder"])
    config = run.experiment_from_args(args)
    assert config.model.options["pool_type"] == "avg" and config.optim.lr == 0.5
    assert config.optim.epochs == 3 and config.data.path == "/some/folder"


def test_a_mistyped_enumerated_field_stops_with_one_line_naming_the_valid_values(capsys):
    import run

    assert run.main(["train", "--preset", "smoke", "--set", "optim.amp=bf61"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "bf16" in err and "amp 'bf61'" in err and "Traceback" not in err
    for field, value in (("data.cache", "mem"), ("data.clip.sampler", "dens"), ("run.threads", 0)):
        with pytest.raises(UsageError, match=field.rpartition(".")[2]):
            preset("smoke").with_overrides({field: value})


def test_a_bug_is_not_shortened_to_a_line_but_keeps_its_traceback(monkeypatch):
    import run
    from pipelines.cli import training

    def broken(args):
        raise ValueError("an internal invariant broke")  # not a UsageError: ours to fix

    monkeypatch.setattr(training, "cmd_train", broken)
    with pytest.raises(ValueError, match="internal invariant"):
        run.main(["train", "--preset", "smoke"])
