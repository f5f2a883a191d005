"""Bad input: a good video is never thrown away, and a bad one is always named with its reason.

decord is the fast decoder; PyAV serves what decord cannot open, cannot decode, or cannot read
exactly. Every file here is written by the test with PyAV and has the defect of a file met in
the wild, and every test first shows that decord alone fails on it, so none passes vacuously.
Frames carry their index in their colour (``numbered_frames``), so a clip says which frames it holds.
"""
import logging
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from data_helpers import bad_files, numbered_video, video_list
from pipelines.data.dataset import video_rows
from pipelines.data.decode_actor import DecodeClips
from pipelines.data.decoding import BadVideo, decode_video, open_video, read_frames
from pipelines.data.health import DataHealth
from pipelines.data.sampling import ClipSpec, dense_indices
from pipelines.data.video_io import read_frame_number

ROOT = Path(__file__).resolve().parents[1]
SPEC = ClipSpec(frames=4, stride=3, crop=32, train_short=(32, 44), eval_short=40, test_short=48, test_clips=3)
FRAMES = 34  # as many as the reported Ogg/Theora video had
NO_LENGTH = "Failed to measure duration/frame-count"  # decord's words for the reported file


def numbers(frames: np.ndarray) -> list[int]:
    return [read_frame_number(frame) for frame in frames]


def decord_frames(path: str, indices: list[int]) -> np.ndarray:
    """decord alone, as the pipeline used it before: raises where it cannot open or decode."""
    import decord

    return decord.VideoReader(path, num_threads=1).get_batch(indices).asnumpy()


def write_ogg(path: Path, frames: int) -> str:
    """An Ogg/VP8 file, the reported file's container (PyAV has no Theora encoder). Written in a
    fresh interpreter: once decord's bundled FFmpeg is loaded, PyAV's libvpx encoder fails to open."""
    code = ("import sys; from pipelines.data.video_io import numbered_frames, write_video; "
            "write_video(sys.argv[1], numbered_frames(int(sys.argv[2]), 48, 64), codec='libvpx')")
    subprocess.run([sys.executable, "-c", code, str(path), str(frames)], cwd=ROOT, check=True, capture_output=True)
    return str(path)


def subfolder(folder: Path, name: str) -> Path:
    (folder / name).mkdir(parents=True, exist_ok=True)
    return folder / name


def write_no_length(folder: Path, kind: str, frames: int = FRAMES) -> str:
    """A valid video whose container says neither its duration nor its frame count."""
    if kind == "ogg":
        return write_ogg(folder / "clip.ogg", frames)
    if kind == "h264 stream":  # an elementary stream: no container at all
        return numbered_video(folder / "clip.h264", frames)
    if kind == "live mkv":  # Matroska written live: no duration, no index; H.264 (decord's own ground)
        return numbered_video(folder / "clip.mkv", frames, container_options={"live": "1"})
    raise ValueError(kind)


KINDS = ["ogg", "h264 stream", "live mkv"]


@pytest.fixture(scope="module")
def folder(tmp_path_factory):
    return tmp_path_factory.mktemp("bad_input")


@pytest.fixture(scope="module")
def no_length(folder):
    return {kind: write_no_length(subfolder(folder, kind.replace(" ", "_")), kind) for kind in KINDS}


@pytest.mark.parametrize("kind", KINDS)
def test_decord_alone_cannot_measure_a_video_without_duration_or_frame_count(no_length, kind):
    with pytest.raises(Exception, match=NO_LENGTH):
        decord_frames(no_length[kind], [0])


@pytest.mark.parametrize("kind", KINDS)
def test_a_video_without_duration_or_frame_count_is_served_whole_by_pyav(no_length, kind):
    path = no_length[kind]
    reader = open_video(path)
    assert len(reader) == FRAMES
    assert numbers(read_frames(reader, np.arange(FRAMES), path)) == list(range(FRAMES))  # the cache's read
    decoded = decode_video(path, 1, SPEC, "eval", epoch=0)
    (clip, label), = decoded.views
    assert numbers(clip) == dense_indices(FRAMES, 4, 3).tolist() and label == 1
    assert decoded.decoder == "pyav"


def test_pyav_says_why_decord_did_not_serve(no_length):
    tried = decode_video(no_length["live mkv"], 0, SPEC, "eval", epoch=0)  # decord tried, and stopped
    assert tried.why.startswith("decord: ") and NO_LENGTH in tried.why
    routed = decode_video(no_length["ogg"], 0, SPEC, "eval", epoch=0)  # decord not tried on Ogg
    assert routed.why == "decord does not read vp8 in ogg exactly"


def test_an_xvid_avi_is_read_by_pyav_because_decord_returns_the_wrong_frames(folder):
    path = numbered_video(folder / "xvid.avi", 60, codec="mpeg4", options={"bf": "2", "g": "12"})
    assert numbers(decord_frames(path, [40, 41])) != [40, 41]  # decord: no error, wrong frames
    decoded = decode_video(path, 0, SPEC, "test", epoch=0)
    assert [numbers(clip) for clip, _ in decoded.views[::3]] == [[0, 3, 6, 9], [25, 28, 31, 34], [50, 53, 56, 59]]
    assert decoded.decoder == "pyav" and decoded.why == "decord does not read mpeg4 in avi exactly"


def test_a_frame_decord_cannot_copy_is_decoded_by_pyav_and_said_so(folder):
    path = numbered_video(folder / "w48.mp4", 30, height=48, width=48)
    with pytest.raises(Exception):
        decord_frames(path, [10])
    decoded = decode_video(path, 0, SPEC, "eval", epoch=0)
    assert numbers(decoded.views[0][0]) == dense_indices(30, 4, 3).tolist()
    assert decoded.decoder == "pyav" and decoded.why.startswith("decord: ")


@pytest.mark.parametrize("name", ["h264.mp4", "h264.mkv"])
def test_a_video_decord_reads_exactly_stays_with_decord(folder, name):
    path = numbered_video(folder / name, 30)
    decoded = decode_video(path, 0, SPEC, "eval", epoch=0)
    assert (decoded.decoder, decoded.why) == ("decord", "")
    assert numbers(decoded.views[0][0]) == dense_indices(30, 4, 3).tolist()


def test_a_stream_cut_short_without_an_index_is_a_shorter_video(folder):
    whole = Path(write_no_length(subfolder(folder, "cut"), "h264 stream", 60))
    cut = folder / "cut.h264"
    cut.write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])  # nothing says it was longer
    reader = open_video(str(cut))
    assert 4 <= len(reader) < 60
    # every frame before the cut is exact; the one the cut went through is concealed by the decoder
    assert numbers(read_frames(reader, np.arange(len(reader)), str(cut)))[:-1] == list(range(len(reader) - 1))


def no_video(folder: Path, reason: str) -> str:
    """A file that no decoder can give a clip of, for ``reason``, in the formats PyAV serves."""
    if reason == "empty":
        (folder / "empty.h264").write_bytes(b"")
        return str(folder / "empty.h264")
    if reason == "unreadable":
        (folder / "notes.ogg").write_text("minutes of the meeting\n" * 40)
        return str(folder / "notes.ogg")
    return write_no_length(folder, "h264 stream", frames=3)  # too_short: 3 frames, a clip needs 4


@pytest.mark.parametrize("reason", ["empty", "unreadable", "too_short"])
def test_a_file_no_decoder_can_read_is_still_named_with_its_reason(folder, reason):
    path = no_video(subfolder(folder, reason), reason)
    with pytest.raises(BadVideo) as caught:
        decode_video(path, 0, SPEC, "train", epoch=0)
    assert caught.value.reason == reason and caught.value.path == path


def test_an_mp4_cut_short_is_truncated_although_pyav_decodes_its_first_frames(folder):
    path = bad_files(folder / "bad")["truncated"]  # its index promises 60 frames; 13 decode, then garbage
    with pytest.raises(Exception):
        decord_frames(path, [0])
    with pytest.raises(BadVideo) as caught:
        decode_video(path, 0, SPEC, "train", epoch=0)
    assert caught.value.reason == "truncated"
    assert caught.value.detail.startswith("decord: ") and "; PyAV: " in caught.value.detail


def batch_of(paths):
    rows = video_rows(video_list(paths))
    return {key: np.array([row[key] for row in rows]) for key in rows[0]}


def test_the_tally_counts_videos_served_by_pyav_in_each_epoch(folder, no_length):
    good = numbered_video(folder / "good.mp4", 30)
    paths = [good, no_length["ogg"], no_length["h264 stream"], str(folder / "missing.mp4")]
    health = DataHealth(dataset_size=4, max_bad_fraction=1.0)
    for epoch in (0, 1):
        list(DecodeClips(SPEC, "train", health, epoch=epoch)(batch_of(paths)))
    for epoch in (0, 1):
        summary = health.summary(epoch)
        assert (summary["videos_served"], summary["served_by_pyav"]) == (3, 2)
        assert summary["skipped_by_reason"] == {"missing": 1}


def test_the_tally_still_takes_served_videos_without_a_decoder():
    health = DataHealth(dataset_size=2)
    health.record([(0, 0, 1), (0, 1, 1, "pyav")], [])  # three fields: no decoder named, decord
    assert (health.summary(0)["videos_served"], health.summary(0)["served_by_pyav"]) == (2, 1)


def test_a_video_served_by_pyav_is_logged_once_not_every_epoch(folder, caplog):
    path = write_no_length(subfolder(folder, "logged"), "h264 stream")
    with caplog.at_level(logging.INFO, logger="pipelines.data.decoding"):
        for epoch in range(3):
            decode_video(path, 0, SPEC, "train", epoch)
    lines = [r.getMessage() for r in caplog.records if "served by PyAV" in r.getMessage()]
    assert lines == [f"{path}: served by PyAV (decord does not read h264 in h264 exactly)"]


def test_a_broken_decoder_install_is_an_error_not_a_bad_video(tmp_path, monkeypatch):
    """Only what FFmpeg says about a file makes it unreadable; a decoder that fails for another
    reason (simulated here: a PyAV whose ``open`` is broken) stops with its own error."""
    import av

    from pipelines.data.video_io import count_frames_pyav, probe_frames

    path = tmp_path / "not-a-video.mp4"
    path.write_bytes(b"junk" * 100)
    assert probe_frames(str(path)) is None and count_frames_pyav(str(path)) is None  # a bad file: unreadable

    def broken(*args, **kwargs):
        raise AttributeError("module 'av' has no attribute 'codec'")

    monkeypatch.setattr(av, "open", broken)
    with pytest.raises(AttributeError):
        probe_frames(str(path))
    with pytest.raises(AttributeError):
        count_frames_pyav(str(path))
