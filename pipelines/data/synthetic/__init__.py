"""The built-in temporal benchmark: small H.264 videos whose class only time can tell.

:data:`CLASSES` lists every class with its family, group and property (``classes``);
:func:`render_video` draws one video (``render``); :func:`write_synthetic` writes the
dataset folder (``writer``).
"""
from .classes import CLASSES, REVERSED_OF, SynthClass, accuracy_by_group, class_names, flip_label_map
from .render import render_video
from .writer import SyntheticSpec, write_synthetic

__all__ = ["CLASSES", "REVERSED_OF", "SynthClass", "SyntheticSpec", "accuracy_by_group", "class_names",
           "flip_label_map", "render_video", "write_synthetic"]
