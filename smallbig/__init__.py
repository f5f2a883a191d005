"""SmallBigNet (Li et al., CVPR 2020) and its peers (Non-local, TSM, bLVNet-TAM, S3D-G), in plain PyTorch.

>>> import smallbig
>>> model = smallbig.build_model("smallbig_r23_full", num_classes=400, num_frames=8)
>>> logits = model(torch.randn(2, 3, 8, 224, 224))  # (N, C, T, H, W) -> (N, classes)
"""
from . import peers as _peers  # noqa: F401  (registers the peers)
from . import variants as _variants  # noqa: F401  (registers the family)
from .blocks import BlockSpec, Bottleneck
from .blvnet import BigLittleVideoNet
from .config import ModelConfig
from .counting import count_gmacs, count_parameters
from .errors import ModelError, UnknownModel
from .inflation import LoadReport, load_2d_weights
from .paper import PAPER_TABLES, PaperRow, PaperTable
from .peers import PEERS
from .pools import PoolSize, make_big_view_pool
from .registry import build_model, get_entry, list_models, model_config, register_config, register_model
from .resnet import StageSpec, VideoResNet
from .reversal import ReversalCheck, check_reversal
from .s3d import S3D, FeatureGate, SepConv3d
from .temporal import NonLocalBlock, TemporalAggregation, TemporalShift
from .units import ExtraUnit, SmallBigUnit, ViewOptions

__all__ = [
    "BigLittleVideoNet", "BlockSpec", "Bottleneck", "ExtraUnit", "FeatureGate", "LoadReport", "ModelConfig",
    "ModelError", "UnknownModel",
    "NonLocalBlock", "PAPER_TABLES", "PEERS", "PaperRow", "PaperTable", "PoolSize", "ReversalCheck", "S3D",
    "SepConv3d", "SmallBigUnit", "StageSpec", "ViewOptions", "TemporalAggregation", "TemporalShift", "VideoResNet",
    "build_model", "check_reversal", "count_gmacs", "count_parameters", "get_entry", "list_models",
    "load_2d_weights", "make_big_view_pool", "model_config", "register_config", "register_model",
]
