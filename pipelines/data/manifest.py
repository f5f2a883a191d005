"""A dataset folder's manifest: the SHA-256 of every file in it, written beside them.

The built-in benchmark is written from a seed, so the same spec must give the same bytes on
any machine, in any folder and with any number of writing processes; the manifest is how
that is checked rather than assumed. A folder that is reused is hashed again and compared
with its manifest (a file changed, lost or half-written shows up), and the manifest's own
digest is the dataset's *fingerprint*: two runs whose fingerprints match trained on the same
bytes, whoever wrote them.
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

FILE_NAME = "manifest.json"


def file_hashes(root: str | os.PathLike) -> dict[str, str]:
    """Relative POSIX path -> SHA-256 of every file under ``root`` but the manifest, sorted."""
    root = Path(root)
    hashes = {}
    for path in sorted(p for p in root.rglob("*") if p.is_file()):
        name = path.relative_to(root).as_posix()
        if name != FILE_NAME:
            hashes[name] = hashlib.sha256(path.read_bytes()).hexdigest()
    return hashes


def write_manifest(root: str | os.PathLike) -> str:
    """Hash every file under ``root`` into ``root/manifest.json``; returns the fingerprint."""
    text = json.dumps(file_hashes(root), indent=0, sort_keys=True) + "\n"
    (Path(root) / FILE_NAME).write_text(text, encoding="utf-8")
    return _digest(text)


def read_manifest(root: str | os.PathLike) -> dict[str, str] | None:
    """The hashes ``root/manifest.json`` records; None when there is none or it cannot be read."""
    try:
        return json.loads((Path(root) / FILE_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None


def mismatches(root: str | os.PathLike) -> list[str]:
    """The files whose bytes differ from the manifest, are missing, or are not in it (sorted);
    ``[manifest.json]`` when there is no readable manifest. Empty: the folder is as written."""
    recorded = read_manifest(root)
    if recorded is None:
        return [FILE_NAME]
    found = file_hashes(root)
    return sorted(name for name in set(recorded) | set(found) if recorded.get(name) != found.get(name))


def fingerprint(root: str | os.PathLike) -> str | None:
    """The first 16 hex digits of the manifest's SHA-256 (None without a manifest)."""
    try:
        return _digest((Path(root) / FILE_NAME).read_text(encoding="utf-8"))
    except OSError:
        return None


def _digest(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:16]
