"""Where a run's files go: a folder on this machine, or a URI (``s3://``, ``gs://``) on a cluster.

Every rule that depends on which of the two ``run.storage`` is lives here, so the rest of
the code asks (:func:`is_uri`, :func:`resolve`, :func:`local_folder`) instead of testing
strings itself. Folders are made absolute, because Ray workers run in folders of their own.
"""
from __future__ import annotations

from pathlib import Path

DEFAULT = "runs"


def is_uri(location: str) -> bool:
    """``s3://bucket/x``, ``gs://...``, ``file:///...``: anything a filesystem library opens by scheme."""
    return "://" in str(location)


def resolve(storage: str) -> str:
    """A URI as it is; a folder as an absolute path (the same for the driver and every worker)."""
    return storage if is_uri(storage) else str(Path(storage).expanduser().resolve())


def local_folder(storage: str) -> Path:
    """A folder on this machine for what cannot live in object storage (a sqlite file, results
    written before upload): ``storage`` itself, or the default folder when it is a URI."""
    return Path(DEFAULT if is_uri(storage) else storage).expanduser().resolve()


def join(storage: str, *parts: str) -> str:
    """``storage/part/...`` for a folder or a URI alike."""
    return "/".join([resolve(storage).rstrip("/"), *parts])


def as_uri(storage: str) -> str:
    """A URI for ``storage`` (``file:///abs/path`` for a folder)."""
    return storage.rstrip("/") if is_uri(storage) else Path(resolve(storage)).as_uri()


def with_scheme_of(storage: str, path: str) -> str:
    """A path that a filesystem library gave without its scheme, given back the scheme of
    ``storage`` (Ray names a checkpoint in a bucket as ``bucket/...``); folders pass through."""
    if not is_uri(storage) or is_uri(path):
        return path
    return f"{storage.split('://', 1)[0]}://{path}"
