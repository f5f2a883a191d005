"""The seeds' peers, registered beside the SmallBig family (same ``build_model``, same clips).

| name | what | paper |
|---|---|---|
| ``nonlocal_r{23,50}`` | the 3D 3x1x1 ResNet (``r{23,50}_3d``) + embedded-Gaussian non-local blocks after every other block of res3 and res4 (R50: 2 + 3 = 5 blocks) | Wang et al., CVPR 2018 |
| ``tsm_r{23,50}`` | 2D ResNet + temporal shift (1/8 of channels each way) before the first conv of every bottleneck | Lin et al., ICCV 2019 |
| ``blvnet_tam_r{23,50}`` | Big-Little video net (alpha 2, beta 4) with TAM | Fan et al., NeurIPS 2019 |
| ``s3d``, ``s3dg`` | Inception with separable 3D convs; S3D-G adds feature gating | Xie et al., ECCV 2018 |

The ResNet-based peers are ``ModelConfig`` variants (any option applies: e.g.
``build_model("nonlocal_r50", temporal_stages=[])`` is the Non-local paper's C2D + NL, and
``temporal_module="tam"`` puts TAM in every block of any ResNet here). bLVNet and S3D have
their own builders taking ``base_width`` and ``dropout`` (plus ``alpha``/``beta``, ``gating``).
"""
from __future__ import annotations

from .blvnet import BigLittleVideoNet
from .config import ALL_SMALLBIG_STAGES, ModelConfig
from .errors import ModelError
from .registry import register_config, register_model
from .s3d import S3D

NONLOCAL_STAGES = ("res3", "res4")


def _checked(name: str, options: dict, allowed: tuple[str, ...]) -> dict:
    unknown = sorted(set(options) - set(allowed))
    if unknown:
        raise ModelError(f"unknown model option(s) {unknown} for {name}; valid options: {sorted(allowed)}")
    return options


def _blvnet(depth: int):
    def build(*, num_classes: int, num_frames: int, **options) -> BigLittleVideoNet:
        _checked(f"blvnet_tam_r{depth}", options, ("base_width", "dropout", "alpha", "beta"))
        return BigLittleVideoNet(depth, num_classes=num_classes, **options)
    build.__doc__ = f"bLVNet-TAM R{depth} (Fan et al., NeurIPS 2019): odd/even frames in big/little branches, TAM"
    return build


def _s3d(gating: bool):
    def build(*, num_classes: int, num_frames: int, **options) -> S3D:
        _checked("s3dg" if gating else "s3d", options, ("base_width", "dropout", "gating"))
        return S3D(num_classes=num_classes, **{"gating": gating, **options})
    build.__doc__ = ("S3D-G (Xie et al., ECCV 2018): separable 3D Inception with feature gating" if gating else
                     "S3D (Xie et al., ECCV 2018): separable 3D Inception, no gating")
    return build


def _register_peers() -> None:
    for depth in (23, 50):
        register_config(f"nonlocal_r{depth}",
                        ModelConfig(depth=depth, temporal_stages=ALL_SMALLBIG_STAGES, nonlocal_stages=NONLOCAL_STAGES),
                        f"Non-local R{depth}: 3D 3x1x1 ResNet + non-local blocks after every other res3/res4 block")
        register_config(f"tsm_r{depth}", ModelConfig(depth=depth, temporal_module="tsm"),
                        f"TSM R{depth}: 2D ResNet with 1/8 of channels shifted each way in every residual branch")
        register_model(f"blvnet_tam_r{depth}")(_blvnet(depth))
    register_model("s3d")(_s3d(False))
    register_model("s3dg")(_s3d(True))


_register_peers()
PEERS = ("nonlocal_r23", "nonlocal_r50", "tsm_r23", "tsm_r50", "blvnet_tam_r23", "blvnet_tam_r50", "s3d", "s3dg")
