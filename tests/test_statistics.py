"""The statistics of a results table: Wilson intervals and exact McNemar tests for one seed, seed-aware
intervals and t-tests for several (checked by simulation), Holm's correction, verdicts, and a table built
on them."""
from __future__ import annotations

import csv

import numpy as np
import pytest

from pipelines.data.synthetic import CLASSES
from pipelines.sweeps.presentation import markdown, plot
from pipelines.sweeps.statistics import (
    SIGNIFICANCE,
    SeedSpread,
    format_p,
    holm,
    mcnemar_exact,
    paired_test,
    seed_interval,
    seed_test,
    wilson_interval,
)
from pipelines.sweeps.table import ResultRow, ResultsTable
from pipelines.training.predictions import VideoPredictions

NAMES = [c.name for c in CLASSES]
FAMILY_A = [i for i, c in enumerate(CLASSES) if c.family == "A"]
FAMILY_B = [i for i, c in enumerate(CLASSES) if c.family == "B"]


def test_the_wilson_interval_matches_published_values():
    # Newcombe (1998), Table I: 81/263 -> 0.2553-0.3662; 15/148 -> 0.0624-0.1605 (95%)
    assert wilson_interval(81, 263) == pytest.approx((25.53, 36.62), abs=0.01)
    assert wilson_interval(15, 148) == pytest.approx((6.24, 16.05), abs=0.01)
    low, high = wilson_interval(0, 20)  # stays inside [0, 100] where the normal interval would not
    assert low == 0.0 and high == pytest.approx(16.11, abs=0.01)


def test_mcnemars_exact_test_is_the_binomial_test_of_the_discordant_videos():
    # 10 videos only the row gets right, 2 only the baseline: p = 2 * P(X <= 2 | 12, 1/2) = 158 / 4096
    assert mcnemar_exact(10, 2) == pytest.approx(158 / 4096)
    assert mcnemar_exact(2, 10) == pytest.approx(158 / 4096)
    assert mcnemar_exact(0, 0) == 1.0  # no discordant video: no evidence either way
    assert mcnemar_exact(5, 5) == 1.0


def test_a_paired_test_counts_only_the_videos_the_two_rows_disagree_on():
    row = [True, True, True, False, True, False]
    base = [True, False, False, False, True, True]
    test = paired_test(row, base)
    assert (test.row_only, test.baseline_only, test.n) == (2, 1, 6)
    assert test.delta == pytest.approx(100 * 1 / 6)
    with pytest.raises(ValueError, match="same videos"):
        paired_test(row, base[:-1])


def test_p_values_are_printed_with_a_mark_below_the_significance_level():
    assert format_p(0.5) == "0.50"
    assert format_p(0.003) == "0.003*"
    assert format_p(1e-9) == "<1e-6*"
    assert format_p(None) == ""
    assert format_p(0.003, 0.018) == "0.003 (0.02)"  # the mark follows the Holm-adjusted p
    assert format_p(0.001, 0.004) == "0.001 (0.004)*"


def _predictions(right: dict[int, int], per_class: int = 10) -> VideoPredictions:
    """``per_class`` test videos of every benchmark class; ``right[c]`` of class c predicted right."""
    videos, labels, scores = [], [], []
    for label in range(len(NAMES)):
        for i in range(per_class):
            guess = label if i < right.get(label, 0) else (label + 1) % len(NAMES)
            row = np.full(len(NAMES), 0.01)
            row[guess] = 0.8
            videos.append(f"videos/{NAMES[label]}_{i}.mp4")
            labels.append(label)
            scores.append(row / row.sum())
    return VideoPredictions(videos, np.array(labels), np.array(scores), NAMES)


def _table() -> ResultsTable:
    base = _predictions({c: 3 for c in range(len(NAMES))})  # 30% everywhere
    better = _predictions({**{c: 3 for c in FAMILY_A}, **{c: 9 for c in FAMILY_B}})  # B: 90%
    rows = [ResultRow("2D", "r23_2d", 11.35e6, 0.18, {"test_top1": [30.0]}, predictions={0: base}),
            ResultRow("Tx3x3", "smallbig_r23_tx3x3", 11.37e6, 0.25, {"test_top1": [0.0]}, 69.5,
                      predictions={0: better}),
            ResultRow("3x5x5", "smallbig_r23_3x5x5", 11.37e6, 0.25, {})]
    return ResultsTable("Table 4", "2D", rows, "8x48x48", chance=100 / 19)


def test_the_table_gives_each_accuracy_its_interval_and_each_row_its_test_against_the_baseline():
    table = _table()
    cell = table.cell(table.rows[1], "family_B")
    assert cell.value == pytest.approx(90.0)
    assert cell.accuracy.interval == pytest.approx(wilson_interval(81, 90))
    assert cell.test.row_only == 54 and cell.test.baseline_only == 0 and cell.test.significant
    overall = table.cell(table.rows[1], "test_top1")
    assert overall.value == pytest.approx(100 * (30 + 81) / 190)  # recomputed from the predictions
    assert table.cell(table.rows[0], "test_top1").test is None  # the baseline is not tested against itself
    assert table.cell(table.rows[1], "family_A").test.p == 1.0  # same videos right on A
    assert table.best() == ("Tx3x3", pytest.approx(100 * 111 / 190))


def test_results_csv_has_one_line_per_row_with_the_named_statistics_columns(tmp_path):
    with open(_table().write_csv(tmp_path / "results.csv")) as handle:
        lines = list(csv.DictReader(handle))
    assert [line["row"] for line in lines] == ["2D", "Tx3x3", "3x5x5"]
    for column in ("row", "test_top1", "test_top1_low", "test_top1_high", "delta", "p",
                   "family_A_top1", "family_A_low", "family_A_high", "family_A_delta", "family_A_p",
                   "family_B_top1", "family_B_low", "family_B_high", "family_B_delta", "family_B_p"):
        assert column in lines[0], column
    base, tx = lines[0], lines[1]
    assert base["p"] == "" and base["family_B_p"] == ""  # the baseline has no p-values
    assert float(tx["family_B_delta"]) == pytest.approx(60.0)
    assert float(tx["family_B_p"]) < 1e-6
    assert float(tx["test_top1_low"]) < float(tx["test_top1"]) < float(tx["test_top1_high"])
    assert lines[2]["test_top1"] == ""  # a row with no finished run stays, empty


def test_the_markdown_table_shows_intervals_marks_significance_and_says_what_was_tested():
    text = markdown(_table())
    assert "| Tx3x3 | smallbig_r23_tx3x3 | 11.37 | 0.250 | 58.4 [51.3, 65.2] | +28.4 | <1e-6 (<1e-6)* |" in text
    assert "Wilson score interval over the 190 test videos" in text
    assert "exact McNemar test" in text and "adjusted p < 0.01" in text
    assert "cover the test videos, not retraining" in text
    assert "Verdict: unresolved: one seed per row cannot separate rows" in text
    assert "chance: 5.3% top-1" in text


def test_rows_over_seeds_show_mean_and_sd_and_pool_their_paired_outcomes():
    seeds = {0: _predictions({c: 3 for c in range(len(NAMES))}), 1: _predictions({c: 5 for c in range(len(NAMES))})}
    row = ResultRow("2D", "r23_2d", None, None, {"test_top1": [30.0, 50.0]}, predictions=seeds)
    cell = ResultsTable("t", "2D", [row]).cell(row, "test_top1")
    assert (cell.value, cell.sd) == (pytest.approx(40.0), pytest.approx(14.142, abs=1e-3))
    assert (cell.accuracy.correct, cell.accuracy.n) == (8 * 19, 380)


def test_the_chart_draws_each_bar_with_its_interval(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot

    drawn = []
    original = pyplot.Axes.bar

    def recording_bar(self, *args, **kwargs):
        drawn.append(kwargs.get("yerr"))
        return original(self, *args, **kwargs)

    pyplot.Axes.bar = recording_bar
    try:
        path = plot(_table(), tmp_path / "results.png")
    finally:
        pyplot.Axes.bar = original
    assert path.read_bytes()[:4] == b"\x89PNG"
    below, above = drawn[0]  # the test top-1 series: asymmetric Wilson error bars
    assert below[1] > 0 and above[1] > 0 and below[1] != above[1]


def test_holms_adjustment_matches_the_step_down_by_hand():
    # sorted 0.01, 0.03, 0.04 over 3 tests: 3 x 0.01, max(0.03, 2 x 0.03), max(0.06, 1 x 0.04)
    assert holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06])
    assert holm([0.5, 0.9]) == pytest.approx([1.0, 1.0])  # capped at 1
    assert holm([]) == []


# ---------------------------------------------------------------- seeds: simulation

def _simulated_rows(rng, thresholds, seeds: int, videos: int, video_sd: float, seed_sd: float) -> list[np.ndarray]:
    """Each row's (seeds, videos) outcomes: video v is right for seed s of row r when
    u_v + g_rs + e_rsv < c_r, u (how hard the video is, shared by every row), g (the training
    run) and e (the rest) normal; a row's true accuracy is Phi(c_r / sqrt(video_sd² + seed_sd² + 1))."""
    hard = rng.normal(0, video_sd, videos)
    return [hard[None, :] + rng.normal(0, seed_sd, (seeds, 1)) + rng.normal(0, 1, (seeds, videos)) < c
            for c in thresholds]


SIMULATION = dict(seeds=3, videos=400, video_sd=1.0, seed_sd=0.3)  # seed sd about 10 points of accuracy


def test_the_seed_aware_interval_covers_the_true_accuracy_95_percent_of_the_time():
    from scipy.stats import norm

    rng = np.random.default_rng(2026)
    thresholds = [-0.5, 0.0, 0.2, 0.8]  # true accuracies about 35, 50, 57 and 74%
    scale = np.sqrt(SIMULATION["video_sd"] ** 2 + SIMULATION["seed_sd"] ** 2 + 1)
    truth = [100 * norm.cdf(c / scale) for c in thresholds]
    covered, wilson_covered, trials = 0, 0, 0
    for _ in range(500):
        rows = _simulated_rows(rng, thresholds, **SIMULATION)
        spread = SeedSpread.pooled(rows)
        for outcomes, true in zip(rows, truth):
            low, high = seed_interval(outcomes, spread)
            covered += low <= true <= high
            w_low, w_high = wilson_interval(int(outcomes.sum()), outcomes.size)
            wilson_covered += w_low <= true <= w_high
            trials += 1
    assert 0.93 <= covered / trials <= 0.985
    assert wilson_covered / trials < 0.80  # pooling (seed, video) outcomes ignores retraining: far too narrow


def test_the_seed_aware_test_of_equal_rows_rejects_at_most_at_its_level_where_pooled_mcnemar_does_not():
    rng = np.random.default_rng(7)
    rejected, mcnemar_rejected, reps = 0, 0, 2000
    for _ in range(reps):
        rows = _simulated_rows(rng, [0.2] * 4, **SIMULATION)  # four rows, all equally good
        rejected += seed_test(rows[0], rows[1], SeedSpread.pooled(rows)).p < SIGNIFICANCE
        mcnemar_rejected += paired_test(rows[0].ravel(), rows[1].ravel()).p < SIGNIFICANCE
    assert rejected / reps <= SIGNIFICANCE
    assert mcnemar_rejected / reps > 0.3  # the anti-conservative test this replaces


def test_the_seed_aware_test_finds_a_real_difference():
    rng = np.random.default_rng(3)
    found = 0
    for _ in range(200):
        rows = _simulated_rows(rng, [0.2, 0.2, 0.2, 2.0], **SIMULATION)  # the last row is about 36 points better
        found += seed_test(rows[3], rows[0], SeedSpread.pooled(rows)).p < SIGNIFICANCE
    assert found / 200 > 0.9


def test_a_seed_aware_interval_is_never_narrower_than_the_wilson_interval_of_the_pooled_outcomes():
    same = np.tile(np.arange(200) % 2 == 0, (3, 1))  # three seeds, identical outcomes: no seed spread at all
    spread = SeedSpread.pooled([same, same])
    assert spread.variance == 0.0 and spread.df == 4
    low, high = seed_interval(same, spread)
    w_low, w_high = wilson_interval(300, 600)
    assert low <= w_low and high >= w_high


def test_the_seed_spread_is_pooled_within_rows_and_ignores_single_seed_rows():
    a = np.array([[1, 1, 0, 0], [1, 1, 1, 0]], bool)  # accuracies 0.50, 0.75
    b = np.array([[1, 0, 0, 0], [1, 0, 0, 0], [1, 1, 1, 1]], bool)  # 0.25, 0.25, 1.00
    lone = np.array([[1, 1, 1, 1]], bool)
    spread = SeedSpread.pooled([a, b, lone])
    # squares: a 2 x 0.125^2; b 0.25^2 + 0.25^2 + 0.5^2; df 1 + 2 + 0
    assert spread.df == 3
    assert spread.variance == pytest.approx((2 * 0.125 ** 2 + 2 * 0.25 ** 2 + 0.5 ** 2) / 3)
    assert SeedSpread.pooled([lone]).df == 0


# ---------------------------------------------------------------- seeds: the table

def _seeded(accuracies: list[int]) -> dict[int, VideoPredictions]:
    """One VideoPredictions per seed, seed s getting ``accuracies[s]`` of 10 videos per class right."""
    return {seed: _predictions({c: right for c in range(len(NAMES))}) for seed, right in enumerate(accuracies)}


def _seeded_table() -> ResultsTable:
    rows = [ResultRow("2D", "r23_2d", None, None, {"test_top1": [0.0] * 3}, predictions=_seeded([2, 3, 2])),
            ResultRow("3x3x3", "smallbig_r23_3x3x3", None, None, {"test_top1": [0.0] * 3},
                      predictions=_seeded([8, 7, 8])),
            ResultRow("3x5x5", "smallbig_r23_3x5x5", None, None, {"test_top1": [0.0] * 3},
                      predictions=_seeded([7, 8, 8]))]
    return ResultsTable("Table 4", "2D", rows)


def test_with_several_seeds_each_row_gets_a_verdict_against_the_best_row():
    table = _seeded_table()
    assert table.best()[0] == "3x3x3"  # 76.7 against 3x5x5's 76.7: the first of equals
    assert table.verdicts() == {"2D": "below best", "3x3x3": "best", "3x5x5": "tied with best"}
    assert table.verdict() == "best: 3x3x3; tied with it: 3x5x5; below: 2D (3 seeds, Holm-adjusted p < 0.01)"
    test, adjusted = table.vs_best(table.rows[0])
    assert test.seed_aware and test.delta == pytest.approx(-100 * 16 / 30)
    assert test.p <= adjusted < SIGNIFICANCE
    assert table.vs_best(table.rows[1]) is None


def test_results_csv_carries_seeds_spread_holm_and_the_verdict(tmp_path):
    with open(_seeded_table().write_csv(tmp_path / "results.csv")) as handle:
        lines = {line["row"]: line for line in csv.DictReader(handle)}
    for column in ("seeds", "test_top1_sd", "p_holm", "vs_best_delta", "vs_best_p", "vs_best_p_holm", "verdict",
                   "test_videos"):
        assert column in lines["2D"], column
    assert lines["3x5x5"]["seeds"] == "3" and lines["3x5x5"]["test_videos"] == "190"
    assert float(lines["3x3x3"]["p_holm"]) >= float(lines["3x3x3"]["p"])
    assert lines["3x3x3"]["vs_best_p"] == "" and lines["2D"]["verdict"] == "below best"
    low, high = float(lines["2D"]["test_top1_low"]), float(lines["2D"]["test_top1_high"])
    assert (low, high) == pytest.approx(seed_interval(_seeded_table().rows[0].matrix("all", 1)[1],
                                                      _seeded_table().spread()), abs=0.01)


def test_with_one_seed_every_row_is_unresolved():
    table = _table()
    assert set(table.verdicts().values()) == {"unresolved", ""}  # the unfinished row has no verdict
    assert table.verdict().startswith("unresolved: one seed per row")
