"""The paper's ablation tables (Tables 2-10) as data: each row names a registered variant.

Reported figures are Kinetics-400 top-1 (one crop x clip averaged as in the paper) and
the paper's "GFlops" (multiply-accumulates per 8x224x224 view); None where the paper's
number is not recorded here. Grids and tests read these rows; nothing is built here.
"""
from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class PaperRow:
    label: str
    model: str
    frames: int = 8
    options: dict = field(default_factory=dict)
    reported_top1: float | None = None
    reported_params_m: float | None = None
    reported_gmacs: float | None = None


@dataclass(frozen=True)
class PaperTable:
    key: str
    title: str
    rows: tuple[PaperRow, ...]


R = PaperRow
PAPER_TABLES: dict[str, PaperTable] = {t.key: t for t in (
    PaperTable("table2", "Effectiveness of the SmallBig unit (R23)", (
        R("2D", "r23_2d", reported_top1=64.1, reported_params_m=11.3, reported_gmacs=17),
        R("3D 3x1x1", "r23_3d", reported_top1=68.3),
        R("SmallBig 3x1x1", "smallbig_r23_3x1x1", reported_top1=69.0),
    )),
    PaperTable("table3", "SmallBig units in different stages (R23, 3x3x3 big view)", (
        R("2D", "r23_2d", reported_top1=64.1),
        R("res2", "smallbig_r23_3x3x3_res2"),
        R("res3", "smallbig_r23_3x3x3_res3"),
        R("res4", "smallbig_r23_3x3x3_res4"),
        R("res5", "smallbig_r23_3x3x3_res5"),
        R("res3-5", "smallbig_r23_3x3x3", reported_top1=69.5),
        R("res2-5", "smallbig_r23_3x3x3_res2-5"),
    )),
    PaperTable("table4", "Receptive field of the big view (R23, first layer)", (
        R("2D", "r23_2d", reported_top1=64.1),
        R("3x1x1", "smallbig_r23_3x1x1", reported_top1=69.0),
        R("3x3x3", "smallbig_r23_3x3x3", reported_top1=69.5),
        R("3x5x5", "smallbig_r23_3x5x5"),
        R("3x7x7", "smallbig_r23_3x7x7"),
        R("Tx3x3", "smallbig_r23_tx3x3"),
    )),
    PaperTable("table5", "SmallBig layers in a bottleneck (R23)", (
        R("2D", "r23_2d", reported_top1=64.1),
        R("1st layer", "smallbig_r23_3x3x3", reported_top1=69.5),
        R("1st+2nd layers", "smallbig_r23_layers12"),
        R("Typical", "smallbig_r23_typical", reported_top1=71.4),
        R("Full", "smallbig_r23_full", reported_top1=72.6, reported_params_m=13.4, reported_gmacs=31),
    )),
    PaperTable("table6", "Design of the SmallBig unit (R23 Full)", (
        R("2D", "r23_2d", reported_top1=64.1, reported_params_m=11.3, reported_gmacs=17),
        R("max pool, shared conv, individual BN", "smallbig_r23_full", reported_top1=72.6,
          reported_params_m=13.4, reported_gmacs=31),
        R("avg pool", "smallbig_r23_full_avgpool"),
        R("no sharing", "smallbig_r23_full_noshare", reported_params_m=22.1, reported_gmacs=31),
        R("single BN", "smallbig_r23_full_singlebn"),
    )),
    PaperTable("table7", "SmallBig vs 3D baselines and Non-local", (
        R("R23 2D", "r23_2d", reported_top1=64.1),
        R("R23 3D 3x1x1", "r23_3d", reported_top1=68.3),
        R("R23 Non-local", "nonlocal_r23"),
        R("SmallBig-R23", "smallbig_r23_full", reported_top1=72.6),
        R("R50 2D", "r50_2d"),
        R("R50 3D 3x1x1", "r50_3d"),
        R("R50 Non-local", "nonlocal_r50"),
        R("SmallBig-R50", "smallbig_r50_full", reported_top1=76.3),
    )),
    PaperTable("table8", "Backbones", (
        R("R23 2D", "r23_2d", reported_top1=64.1),
        R("SmallBig-R23", "smallbig_r23_full", reported_top1=72.6),
        R("R50 2D", "r50_2d"),
        R("SmallBig-R50", "smallbig_r50_full", reported_top1=76.3),
        R("R101 2D", "r101_2d"),
        R("SmallBig-R101", "smallbig_r101_full"),
    )),
    PaperTable("table9", "The extra unit (R23)", (
        R("none (Typical)", "smallbig_r23_typical", reported_top1=71.4),
        R("official (released code)", "smallbig_r23_full", reported_top1=72.6),
        R("paper text (sigmoid product)", "smallbig_r23_full_paper"),
        R("simple (SE)", "smallbig_r23_full_se"),
    )),
    PaperTable("table10", "Kinetics-400 comparison rows", (
        R("SmallBig-R50 8f", "smallbig_r50_full", 8, reported_top1=76.3),
        R("SmallBig-R101 8f", "smallbig_r101_full", 8),
        R("SmallBig-R101 16f", "smallbig_r101_full", 16),
        R("SmallBig-R101 32f", "smallbig_r101_full", 32),
        R("SmallBig-R50 Something-Something", "slowonly_r50_extra", 8),
    )),
)}
