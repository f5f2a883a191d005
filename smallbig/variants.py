"""The SmallBigNet family as data: every block of Fig. 2 and every row of Tables 2-10.

Naming: ``r{depth}_2d`` / ``r{depth}_3d`` are the baselines; ``smallbig_r{depth}_{block}``
the SmallBig nets (SmallBig in res3-res5 as in the official code, unless the name says
otherwise); ``slowonly_r50*`` the Something-Something variant.
"""
from __future__ import annotations

from .config import ALL_SMALLBIG_STAGES, ModelConfig
from .registry import register_config

TYPICAL = ("3x3x3", "3x3x3", "Tx3x3")
FIRST_LAYER_POOLS = ("3x1x1", "3x3x3", "3x5x5", "3x7x7", "Tx3x3")


def _smallbig(depth: int, big_views=("3x3x3", None, None), **options) -> ModelConfig:
    options.setdefault("smallbig_stages", ALL_SMALLBIG_STAGES)
    return ModelConfig(depth=depth, big_views=big_views, **options)


def _register_family() -> None:
    for depth in (23, 50, 101):
        r = f"r{depth}"
        register_config(f"{r}_2d", ModelConfig(depth=depth), f"2D ResNet-{depth} applied to every frame")
        register_config(f"{r}_3d", ModelConfig(depth=depth, temporal_stages=ALL_SMALLBIG_STAGES),
                        f"3D ResNet-{depth}: first conv of res3-res5 blocks inflated to 3x1x1")
        for pool in FIRST_LAYER_POOLS:
            register_config(f"smallbig_{r}_{pool.lower()}", _smallbig(depth, (pool, None, None)),
                            f"SmallBig-R{depth}, big view {pool} on the first layer (Fig. 2c/d)")
        register_config(f"smallbig_{r}_typical", _smallbig(depth, TYPICAL), f"SmallBig-R{depth} Typical (Fig. 2e)")
        register_config(f"smallbig_{r}_full", _smallbig(depth, TYPICAL, extra_unit="official"),
                        f"SmallBig-R{depth} Full (Fig. 2f), extra unit as released")

    # Table 3: which stages hold SmallBig blocks (3x3x3 big view on the first layer).
    for stages in (("res2",), ("res3",), ("res4",), ("res5",), ("res2", "res3", "res4", "res5")):
        suffix = "res2-5" if len(stages) == 4 else stages[0]
        register_config(f"smallbig_r23_3x3x3_{suffix}", _smallbig(23, smallbig_stages=stages),
                        f"SmallBig-R23 3x3x3 in {', '.join(stages)} only (Table 3)")
    # Table 5: which layers of the bottleneck are SmallBig units.
    register_config("smallbig_r23_layers12", _smallbig(23, ("3x3x3", "3x3x3", None)),
                    "SmallBig-R23 with big views on the first two layers (Table 5)")
    # Table 6: the unit's design choices, on the Full block.
    full = _smallbig(23, TYPICAL, extra_unit="official")
    register_config("smallbig_r23_full_avgpool", full.replace(pool_type="avg"), "SmallBig-R23 Full, average pooling (Table 6)")
    register_config("smallbig_r23_full_noshare", full.replace(share_conv=False), "SmallBig-R23 Full, a separate conv per view (Table 6)")
    register_config("smallbig_r23_full_singlebn", full.replace(norm="single"), "SmallBig-R23 Full, one BN after the summed views (Table 6)")
    # Table 9: the extra unit's readings.
    register_config("smallbig_r23_full_paper", full.replace(extra_unit="paper"), "SmallBig-R23 Full, extra unit as the paper's text (Table 9)")
    register_config("smallbig_r23_full_se", full.replace(extra_unit="se"), "SmallBig-R23 Full, simple SE extra unit (Table 9)")
    # Something-Something: slow-only R50 (3x1x1 first convs in res4-res5), with extra units.
    slow = ModelConfig(depth=50, temporal_stages=("res4", "res5"))
    register_config("slowonly_r50", slow, "Slow-only R50: 3x1x1 first convs in res4-res5")
    register_config("slowonly_r50_extra", slow.replace(extra_unit="official", extra_unit_stages=("res4", "res5")),
                    "Slow-only R50 + extra units in res4-res5 (official Something-Something model)")
    register_config("slowonly_r50_extra_paper", slow.replace(extra_unit="official", extra_unit_stages=ALL_SMALLBIG_STAGES),
                    "Slow-only R50 + extra units in res3-res5 (the paper's Something-Something text)")
    register_config("smallbig_r50_full_temporal", _smallbig(50, TYPICAL, extra_unit="official", temporal_stages=ALL_SMALLBIG_STAGES),
                    "SmallBig-R50 Full whose shared first conv is 3x1x1")


_register_family()
