"""Real video files for the data tests: numbered clips and one bad file of every kind."""
from __future__ import annotations

from pathlib import Path

from pipelines.data.annotations import VideoList, VideoRecord
from pipelines.data.video_io import numbered_frames, write_video


def numbered_video(path: Path, frames: int, height: int = 48, width: int = 64, **options) -> str:
    write_video(path, numbered_frames(frames, height, width), **options)
    return str(path)


def bad_files(folder: Path) -> dict[str, str]:
    """reason -> path of a file the decoder must skip for that reason."""
    folder.mkdir(parents=True, exist_ok=True)
    files = {"missing": str(folder / "missing.mp4")}
    (folder / "empty.mp4").write_bytes(b"")
    files["empty"] = str(folder / "empty.mp4")
    (folder / "notes.mp4").write_text("these are meeting notes, not a video\n" * 20)
    files["unreadable"] = str(folder / "notes.mp4")
    # faststart puts the index first, so a file cut in half still opens but its frames are gone
    whole = numbered_video(folder / "whole.mp4", 60, container_options={"movflags": "+faststart"})
    data = Path(whole).read_bytes()
    Path(whole).unlink()
    (folder / "truncated.mp4").write_bytes(data[: len(data) // 2])
    files["truncated"] = str(folder / "truncated.mp4")
    files["too_short"] = numbered_video(folder / "short.mp4", 3)
    files["bad_size"] = numbered_video(folder / "tiny.mp4", 30, height=8, width=8)
    return files


def video_list(paths: list[str], labels: list[int] | None = None, classes=("a", "b", "c")) -> VideoList:
    labels = labels if labels is not None else [i % len(classes) for i in range(len(paths))]
    return VideoList([VideoRecord(p, l) for p, l in zip(paths, labels)], classes, source="test list")


def skip_or_fail_in_ci(reason: str) -> None:
    """Skip a test whose inputs cannot be had here, saying why; under ``CI=true`` fail instead,
    since there everything is installed first and a quiet skip would hide a broken install."""
    import os

    import pytest

    if os.environ.get("CI", "").lower() == "true":
        pytest.fail(f"{reason} (CI installs what every test needs, so this does not skip there)")
    pytest.skip(reason)
