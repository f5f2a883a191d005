"""The errors a model builder raises for what it was asked to build, not for its own bugs.

``smallbig`` is plain PyTorch and knows nothing of the pipeline above it, so it has its own
error type: a command line catches :class:`ModelError` to print one line, and lets any other
exception show its traceback.
"""
from __future__ import annotations


class ModelError(ValueError):
    """A model that cannot be built as asked: an unknown option, a value it does not take, 2D
    weights that do not fit."""


class UnknownModel(ModelError, KeyError):
    """A model name that is not registered (also a ``KeyError``: a failed lookup)."""
