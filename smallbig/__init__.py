"""SmallBigNet (Li et al., CVPR 2020) and its peers, in plain PyTorch.

>>> import smallbig
>>> model = smallbig.build_model("smallbig_r23_full", num_classes=400, num_frames=8)
>>> logits = model(torch.randn(2, 3, 8, 224, 224))  # (N, C, T, H, W) -> (N, classes)
"""
from . import variants as _variants  # noqa: F401  (registers the family)
from .blocks import BlockSpec, Bottleneck
from .config import ModelConfig
from .counting import count_gmacs, count_parameters
from .inflation import LoadReport, load_2d_weights
from .paper import PAPER_TABLES, PaperRow, PaperTable
from .pools import PoolSize, make_big_view_pool
from .registry import build_model, get_entry, list_models, model_config, register_config, register_model
from .resnet import StageSpec, VideoResNet
from .units import ExtraUnit, SmallBigUnit

__all__ = [
    "BlockSpec", "Bottleneck", "ExtraUnit", "LoadReport", "ModelConfig", "PAPER_TABLES", "PaperRow",
    "PaperTable", "PoolSize", "SmallBigUnit", "StageSpec", "VideoResNet", "build_model", "count_gmacs",
    "count_parameters", "get_entry", "list_models", "load_2d_weights", "make_big_view_pool", "model_config",
    "register_config", "register_model",
]
