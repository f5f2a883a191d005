"""The one kind of error that is the user's to fix, not ours.

A :class:`UsageError` says what was asked for that cannot be done: a flag, a config value, an
annotation line, a grid file, a checkpoint. ``run.py`` prints its message on one line and
exits 2. Any other exception is a bug in this project or a library it uses, and keeps its
traceback, so it can be reported and fixed.
"""
from __future__ import annotations


class UsageError(ValueError):
    """What the user asked for cannot be done; the message says what and, where it helps, how
    to ask instead (the valid values, the file and line)."""
