"""Ablation grids are data: the paper's tables, user YAML files, and the results table they produce."""
import pytest
import yaml

import smallbig
from pipelines.presets import preset
from pipelines.sweeps.grids import PAPER_GRIDS, builtin_grids, load_grid
from pipelines.sweeps.trials import SweepContext, trial_config, trial_name


def test_every_builtin_grid_is_a_table_of_the_paper_with_its_row_names():
    grids = builtin_grids()
    assert set(grids) == {"effectiveness", "stages", "receptive_field", "layers", "design", "nonlocal",
                          "backbone", "extra_unit", "peers", "arrow_of_time"}
    receptive = grids["receptive_field"]
    assert [r.label for r in receptive.rows] == ["2D", "3x1x1", "3x3x3", "3x5x5", "3x7x7", "Tx3x3"]
    assert receptive.baseline.model == "r23_2d"
    for name, key in PAPER_GRIDS.items():
        grid, table = grids[name], smallbig.PAPER_TABLES[key]
        assert [r.label for r in grid.rows] == [r.label for r in table.rows if r.model in smallbig.list_models()]
        assert all(r.model in smallbig.list_models() for r in grid.rows)


def test_the_arrow_of_time_grid_sets_time_symmetric_rows_beside_order_aware_ones():
    from pipelines.presets import preset
    from pipelines.sweeps.results import time_symmetric

    grid = builtin_grids()["arrow_of_time"]
    assert [r.label for r in grid.rows] == ["2D", "SmallBig Full", "SmallBig Full temporal", "3D", "TSM"]
    assert grid.baseline.label == "2D"
    symmetric = {row.label: time_symmetric(preset("laptop"), row) for row in grid.rows}
    assert symmetric == {"2D": True, "SmallBig Full": True, "SmallBig Full temporal": False, "3D": False,
                         "TSM": False}


def test_the_peers_grid_holds_every_peer_family_beside_smallbig():
    models = [r.model for r in builtin_grids()["peers"].rows]
    assert models[0] == "r23_2d" and models[-1] == "smallbig_r23_full"
    for family in ("_3d", "nonlocal", "tsm", "tam", "s3dg"):
        assert any(family in m for m in models), family
    assert all(m in smallbig.list_models() for m in models)


def test_a_yaml_grid_sweeps_any_experiment_field_and_model_option(tmp_path):
    path = tmp_path / "lr.yaml"
    path.write_text(yaml.safe_dump({"title": "lr", "rows": [
        {"label": "2D", "model": "r23_2d"},
        {"label": "low lr, avg pool", "model": "smallbig_r23_full", "set": {"optim.lr": 0.001, "pool_type": "avg"},
         "baseline": True},
    ]}))
    grid = load_grid(str(path))
    assert grid.name == "lr" and grid.baseline.label == "low lr, avg pool"
    context = SweepContext("s", grid, preset("laptop").to_dict(), True, "parent", None)
    config = trial_config(context, grid.rows[1], seed=1)
    assert config.model.name == "smallbig_r23_full" and config.optim.lr == 0.001
    assert config.model.options == {"base_width": 16, "pool_type": "avg"}  # the preset's options are kept
    assert config.run.seed == 1 and config.data.clip.seed == 1
    assert config.run.name == trial_name("s", grid.rows[1], 1, True) == "s.low_lr_avg_pool.seed1"
    assert trial_config(context, grid.rows[0], seed=0).run.seed == 0


@pytest.mark.parametrize("rows, message", [
    ([{"label": "a"}], "row 1: field 'model' is missing"),
    ([{"label": "a", "model": "r23_2d"}, {"label": "b", "model": "r99_2d"}], "row 2: field 'model': unknown model"),
    ([{"label": "a", "model": "r23_2d", "sett": {}}], "row 1: unknown field(s) ['sett']"),
    ([{"label": "a", "model": "r23_2d", "set": [1]}], "row 1: field 'set' must be a mapping"),
    ([{"label": "a", "model": "r23_2d"}, {"label": "a", "model": "r23_3d"}], "repeated: ['a']"),
])
def test_a_bad_grid_file_names_the_file_row_and_field(tmp_path, rows, message):
    path = tmp_path / "bad.yaml"
    path.write_text(yaml.safe_dump({"rows": rows}))
    with pytest.raises(ValueError) as error:
        load_grid(str(path))
    assert str(path) in str(error.value) and message in str(error.value)


def test_an_unknown_grid_name_lists_the_builtin_grids():
    with pytest.raises(ValueError, match="receptive_field"):
        load_grid("receptive")


def test_a_bad_value_in_a_grid_row_is_reported_with_its_row():
    grid = load_grid("design")
    bad = type(grid.rows[0])("bad", "smallbig_r23_full", {"optim.nesterov": True})
    context = SweepContext("s", grid, preset("smoke").to_dict(), False, "parent", None)
    with pytest.raises(ValueError, match="row 'bad'.*optim.nesterov"):
        trial_config(context, bad, 0)


@pytest.mark.parametrize("resources, overrides, expected", [
    ({"CPU": 2}, {}, (1, 2.0)),  # a laptop: one trial, trained on one CPU and decoded on the other
    ({"CPU": 8}, {}, (4, 2.0)),
    ({"CPU": 8}, {"run.workers": 2}, (2, 4.0)),
    ({"CPU": 16, "GPU": 4}, {"run.gpus_per_worker": 1, "run.workers": 2}, (2, None)),
    ({"CPU": 2}, {"run.gpus_per_worker": 1}, (6, None)),  # no GPU yet: every trial asks the autoscaler
])
def test_trials_run_side_by_side_as_far_as_the_cluster_holds_them(resources, overrides, expected):
    from pipelines.cluster import plan_concurrency

    base = preset("laptop").with_overrides(overrides)
    assert plan_concurrency(base, 6, None, resources) == expected
    assert plan_concurrency(base, 6, 3, resources)[0] == 3


def test_cached_trials_need_no_decode_cpu_so_twice_as_many_run_side_by_side():
    from pipelines.cluster import plan_concurrency

    assert plan_concurrency(preset("laptop"), 6, None, {"CPU": 2}, cached=True) == (2, 1.0)
    assert plan_concurrency(preset("laptop"), 6, None, {"CPU": 8}, cached=True) == (6, 8 / 6)


def test_on_the_builtin_benchmark_the_test_metrics_split_by_class_family():
    from pipelines.data.synthetic import CLASSES
    from pipelines.training.testing import _benchmark_families

    names = [c.name for c in CLASSES]
    family_a = [i for i, c in enumerate(CLASSES) if c.family == "A"]
    family_b = [i for i, c in enumerate(CLASSES) if c.family == "B"]
    labels = family_a + family_b
    predictions = family_a + [family_b[0]] * len(family_b)  # every A right, one B right
    metrics = _benchmark_families(names, labels, predictions)
    assert metrics == {"test_top1_family_A": 100.0, "test_top1_family_B": pytest.approx(100.0 / len(family_b))}
    assert _benchmark_families(["cat", "dog"], [0, 1], [0, 1]) == {}
