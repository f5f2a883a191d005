"""`run.py data import`: public datasets as people have them -> a dataset folder, every video probed on Ray.

The annotation files are written here in the datasets' own formats (Kinetics CSVs with quoted
labels, SSv2 JSON with placeholders, MMAction2 lists); the videos are real files.
"""
import csv
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import run
from data_helpers import bad_files, numbered_video
from pipelines.data.annotations import read_dataset_folder
from pipelines.data.folders import clip_spec_for, read_flip_map
from pipelines.data.importing import Reencoding, kinetics_listing, list_listing, ssv2_listing
from pipelines.data.sampling import ClipSpec
from pipelines.data.video_io import read_frame_number

PROJECT = Path(__file__).resolve().parents[1]
# Official Kinetics-400 labels hold spaces, parentheses and (quoted) commas.
KINETICS_LABELS = ("passing American football (in game)", "dancing, ballet", "abseiling")


def kinetics_csv(path: Path, rows, labelled: bool = True) -> Path:
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle, quoting=csv.QUOTE_MINIMAL)
        writer.writerow(["label", "youtube_id", "time_start", "time_end", "split"][0 if labelled else 1:])
        for label, youtube_id, split in rows:
            writer.writerow(([label] if labelled else []) + [youtube_id, 10, 20, split])
    return path


def kinetics_rows(split: str, per_class: int):
    return [(label, f"{split[:2]}{c}x{i}", split) for c, label in enumerate(KINETICS_LABELS) for i in range(per_class)]


def place(videos: Path, layout: str, split_folder: str, label: str, name: str, write=None) -> Path:
    """Where each of the three layouts people keep Kinetics in puts one video."""
    folder = {"nested": videos / split_folder / label, "per_split": videos / split_folder, "flat": videos}[layout]
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    (write or Path.touch)(path)
    return path


# ---------------------------------------------------------------- finding the files


@pytest.mark.parametrize("layout", ["nested", "per_split", "flat"])
def test_each_kinetics_layout_is_found_with_any_extension_and_a_missing_video_is_none(tmp_path, layout):
    train = kinetics_csv(tmp_path / "train.csv", kinetics_rows("train", 2))
    val = kinetics_csv(tmp_path / "validate.csv", kinetics_rows("validate", 1))
    videos, expected = tmp_path / "videos", {}
    extensions = [".mp4", ".mkv", ".webm"]
    for number, (label, youtube_id, split) in enumerate(kinetics_rows("train", 2) + kinetics_rows("validate", 1)):
        if youtube_id == "tr1x1":
            continue  # never downloaded
        name = f"{youtube_id}_000010_000020{extensions[number % 3]}"
        expected[youtube_id] = str(place(videos, layout, split, label, name))
    listing = kinetics_listing([train, val], videos)
    assert listing.classes == tuple(sorted(KINETICS_LABELS))
    assert sorted(listing.splits) == ["train", "val"]
    found = {w.name.split("_")[0]: w.path for ws in listing.splits.values() for w in ws}
    assert found.pop("tr1x1") is None
    assert found == expected
    labels = {w.name.split("_")[0]: listing.classes[w.label] for w in listing.splits["train"]}
    assert labels["tr0x0"] == KINETICS_LABELS[0] and labels["tr1x0"] == KINETICS_LABELS[1]


def test_a_test_csv_without_labels_is_left_out_and_said_so(tmp_path):
    train = kinetics_csv(tmp_path / "train.csv", kinetics_rows("train", 1))
    test = kinetics_csv(tmp_path / "test.csv", [(None, "te0", "test"), (None, "te1", "test")], labelled=False)
    (tmp_path / "videos").mkdir()
    listing = kinetics_listing([train, test], tmp_path / "videos")
    assert "test" not in listing.splits
    assert listing.notes == ["test.csv: 2 test videos without labels, left out"]


def test_ssv2_classes_keep_their_official_indices_and_name_the_left_right_swaps(tmp_path):
    labels, train, _ = write_ssv2(tmp_path, videos=None)
    listing = ssv2_listing(labels, {"train": train}, tmp_path)
    assert listing.classes == SSV2_CLASSES
    assert listing.flip_map == {1: 2, 2: 1}  # "Holding something" has no mirror partner
    assert [w.path for w in listing.splits["train"]] == [None] * 6


@pytest.mark.parametrize("case", ["kinetics_time", "kinetics_split", "kinetics_label", "ssv2_template", "list_label"])
def test_a_malformed_annotation_stops_the_import_with_file_line_and_field(tmp_path, capsys, case):
    (tmp_path / "videos").mkdir()
    good = kinetics_csv(tmp_path / "train.csv", kinetics_rows("train", 1))
    if case.startswith("kinetics"):
        rows = {"kinetics_time": 'abseiling,abc,ten,20,validate\n', "kinetics_split": 'abseiling,abc,10,20,holdout\n',
                "kinetics_label": '"surfing water",abc,10,20,validate\n'}[case]
        bad = tmp_path / "validate.csv"
        bad.write_text("label,youtube_id,time_start,time_end,split\nabseiling,xyz,10,20,validate\n" + rows)
        argv, expected = ["kinetics", "--csv", str(good), "--csv", str(bad)], {
            "kinetics_time": f"{bad}:3: time_start: 'ten' is not a number of seconds",
            "kinetics_split": f"{bad}:3: split: split 'holdout' (expected train, val",
            "kinetics_label": f"{bad}:3: label: class 'surfing water' is not in the training split"}[case]
    elif case == "ssv2_template":
        labels, train, val = write_ssv2(tmp_path, videos=None)
        val.write_text(json.dumps([{"id": "7", "label": "holding a cup", "placeholders": ["a cup"]}]))
        argv = ["ssv2", "--labels", str(labels), "--train", str(train), "--val", str(val)]
        expected = f"{val}: entry 0.template: missing"
    else:
        classes = tmp_path / "classes.txt"
        classes.write_text("a\nb\n")
        (tmp_path / "train.txt").write_text("x.mp4 0\ny.mp4 1.0\n")
        argv = ["list", "--classes", str(classes), "--train", str(tmp_path / "train.txt"),
                "--val", str(tmp_path / "train.txt")]
        expected = f"{tmp_path / 'train.txt'}:2: label: '1.0' is a float"
    code = run.main(["data", "import", *argv, "--videos", str(tmp_path / "videos"), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and "Traceback" not in err
    assert err.startswith("error: " + expected), err
    assert not (tmp_path / "out").exists()  # nothing written, Ray never started


def test_the_dataset_flip_map_is_used_only_when_clips_are_flipped_without_a_map(tmp_path):
    (tmp_path / "classes.txt").write_text("left to right\nright to left\nstill\n")
    (tmp_path / "flip_map.txt").write_text("# comment\n0 1\n1 0\n")
    assert clip_spec_for(ClipSpec(flip=True), tmp_path).flip_label_map == {0: 1, 1: 0}
    assert clip_spec_for(ClipSpec(flip=False), tmp_path).flip_label_map is None
    assert clip_spec_for(ClipSpec(flip=True, flip_label_map={2: 2}), tmp_path).flip_label_map == {2: 2}
    (tmp_path / "flip_map.txt").write_text("0 1\n1 3\n")
    with pytest.raises(ValueError, match=r"flip_map.txt:2: classes: '1 3' \(expected two class indices 0..2"):
        read_flip_map(tmp_path)


# ---------------------------------------------------------------- imports on Ray, as a user runs them

SSV2_CLASSES = ("Holding something", "Pushing something from left to right", "Pushing something from right to left")


def write_ssv2(root: Path, videos: Path | None):
    """labels.json, train.json and validation.json in the official form; the videos (webm, VP9) if asked."""
    labels = root / "labels.json"
    labels.write_text(json.dumps({name: str(i) for i, name in enumerate(SSV2_CLASSES)}))
    templates = ["Holding [something]", "Pushing [something] from left to right",
                 "Pushing [something] from right to left"]
    entries = {"train": [(100 + i, templates[i % 3]) for i in range(6)], "validation": [(200 + i, templates[i]) for i in range(3)]}
    files = []
    for split, rows in entries.items():
        file = root / f"{split}.json"
        file.write_text(json.dumps([{"id": str(i), "label": t.replace("[something]", "a pen"), "template": t,
                                     "placeholders": ["a pen"]} for i, t in rows]))
        files.append(file)
        for number, _ in rows if videos is not None else ():
            numbered_video(videos / f"{number}.webm", 20, codec="libvpx-vp9")
    return labels, *files


def import_command(*argv: str, timeout: int = 300) -> subprocess.CompletedProcess:
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    env.pop("RAY_ADDRESS", None)
    return subprocess.run([sys.executable, "run.py", "data", "import", *argv], cwd=PROJECT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def kinetics_copy(tmp_path_factory):
    """A Kinetics copy as people have it: official CSVs, one flat folder per split (``val`` for the
    CSVs' ``validate``), one video never downloaded, one that is not a video."""
    root = tmp_path_factory.mktemp("kinetics")
    train = kinetics_csv(root / "train.csv", kinetics_rows("train", 3))
    val = kinetics_csv(root / "validate.csv", kinetics_rows("validate", 1))
    videos = root / "videos"
    bad = bad_files(root / "bad")
    for label, youtube_id, split in kinetics_rows("train", 3) + kinetics_rows("validate", 1):
        name = f"{youtube_id}_000010_000020.mp4"
        if youtube_id == "tr2x2":
            continue  # never downloaded
        write = (lambda p: os.link(bad["unreadable"], p)) if youtube_id == "tr0x1" else (
            lambda p: numbered_video(p, 24))
        place(videos, "per_split", "train" if split == "train" else "val", label, name, write)
    out = root / "dataset"
    first = import_command("kinetics", "--csv", str(train), "--csv", str(val), "--videos", str(videos), "--out", str(out))
    assert first.returncode == 0, first.stderr[-3000:]
    return root, out, first


def test_a_kinetics_copy_imports_in_one_command_and_lists_only_its_usable_videos(kinetics_copy):
    root, out, first = kinetics_copy
    assert (out / "classes.txt").read_text().splitlines() == sorted(KINETICS_LABELS)
    train, val = read_dataset_folder(out, "train"), read_dataset_folder(out, "val")
    assert len(train) == 7 and len(val) == 3  # 9 listed, one missing, one unreadable
    assert all(r.key.startswith("videos/train/") for r in train.records)  # the same keys from any folder
    assert {train.classes[r.label] for r in train.records} == set(KINETICS_LABELS)
    assert (out / "test.txt").read_text() == (out / "val.txt").read_text()
    assert "no labelled test split: test.txt is the validation list" in first.stdout


def test_the_import_report_names_the_missing_and_the_unreadable_video(kinetics_copy):
    root, out, first = kinetics_copy
    with (out / "import_report.csv").open() as handle:
        report = list(csv.DictReader(handle))
    assert [(r["split"], r["reason"]) for r in report] == [("train", "unreadable"), ("train", "missing")]
    assert report[0]["path"] == str(root / "videos" / "train" / "tr0x1_000010_000020.mp4")
    assert report[1]["path"] == "tr2x2_000010_000020"
    assert report[1]["detail"] == f"no tr2x2_000010_000020 (.mp4, .mkv or .webm) under {root / 'videos'}"
    assert report[0]["detail"].endswith("PyAV cannot open it either")
    summary = [line.split() for line in first.stdout.splitlines() if line.split()[:1] in (["train"], ["val"])]
    assert summary == [["train", "9", "8", "7", "0", "missing", "1,", "unreadable", "1"],
                       ["val", "3", "3", "3", "0", "-"]]
    assert "ERROR" not in first.stdout + first.stderr and "Traceback" not in first.stderr  # decord's lines: the log


def test_an_ssv2_import_trains_with_its_flip_map(tmp_path):
    videos = tmp_path / "videos"
    videos.mkdir()
    labels, train, val = write_ssv2(tmp_path, videos)
    out = tmp_path / "dataset"
    done = import_command("ssv2", "--labels", str(labels), "--train", str(train), "--val", str(val),
                          "--videos", str(videos), "--out", str(out))
    assert done.returncode == 0, done.stderr[-3000:]
    assert read_flip_map(out) == {1: 2, 2: 1}
    assert (out / "classes.txt").read_text().splitlines() == list(SSV2_CLASSES)
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    trained = subprocess.run([sys.executable, "run.py", "train", "--preset", "smoke", "--data", str(out),
                              "--storage", str(tmp_path / "runs"), "--name", "ssv2", "--no-test",
                              "--set", "data.clip.flip=true", "--set", "optim.epochs=1"],
                             cwd=PROJECT, env=env, capture_output=True, text=True, timeout=400)
    assert trained.returncode == 0, trained.stderr[-3000:]
    from mlflow.tracking import MlflowClient

    client = MlflowClient(tracking_uri=f"sqlite:///{tmp_path / 'runs' / 'mlflow.db'}")
    run_info = client.search_runs([client.get_experiment_by_name("smallbig").experiment_id])[0]
    params = run_info.data.params
    assert {k: v for k, v in params.items() if k.startswith("data.clip.flip_label_map")} == {
        "data.clip.flip_label_map.1": "2", "data.clip.flip_label_map.2": "1"}
    assert run_info.data.metrics["epoch"] == 0 and params["data.clip.flip"] == "True"


def test_a_list_import_reencodes_into_copies_beside_the_videos_and_resumes_an_interrupted_reencode(tmp_path):
    out = tmp_path / "dataset"
    (out / "clips").mkdir(parents=True)
    for i in range(4):
        numbered_video(out / "clips" / f"c{i}.mp4", 20)
    (tmp_path / "classes.txt").write_text("a\nb\n")
    (tmp_path / "train.txt").write_text("c0.mp4 0\nc1.mp4 1\ngone.mp4 1\n")
    (tmp_path / "val.txt").write_text("c2.mp4 0\nc3.mp4 1\n")
    listing = list_listing(tmp_path / "classes.txt", {"train": tmp_path / "train.txt", "val": tmp_path / "val.txt"},
                           out / "clips")
    assert [w.path is None for w in listing.splits["train"]] == [False, False, True]
    argv = ["list", "--classes", str(tmp_path / "classes.txt"), "--train", str(tmp_path / "train.txt"),
            "--val", str(tmp_path / "val.txt"), "--videos", str(out / "clips"), "--out", str(out),
            "--reencode", "--short-side", "40", "--keyframe-interval", "4"]
    first = import_command(*argv)
    assert first.returncode == 0, first.stderr[-3000:]
    copies = out / "clips-40p-k4"
    # the copies are made beside the sources, inside the dataset folder: named from there, no link
    assert (out / "train.txt").read_text() == "clips-40p-k4/c0.mp4 0\nclips-40p-k4/c1.mp4 1\n"
    assert not (out / "videos").exists()
    assert "probed 4 video(s), 0 unchanged since the last import" in first.stdout
    assert f"re-encoded 4 video(s) now, 0 before, 0 failed, into {copies}" in first.stdout

    # interrupted: one copy lost, a half-written one left in its place; the rerun makes that one only
    (copies / "c1.mp4").unlink()
    (copies / "c1.mp4.partial").write_bytes(b"\x00" * 100)
    again = import_command(*argv)
    assert again.returncode == 0, again.stderr[-3000:]
    assert "probed 0 video(s), 4 unchanged since the last import" in again.stdout  # nothing probed twice
    assert f"re-encoded 1 video(s) now, 3 before, 0 failed, into {copies}" in again.stdout
    assert again.stdout.split("imported")[1].split("probed")[0] == first.stdout.split("imported")[1].split("probed")[0]
    assert not (copies / "c1.mp4.partial").exists()
    import decord

    copy = decord.VideoReader(str(copies / "c1.mp4"))
    assert len(copy) == 20 and copy[0].shape == (40, 54, 3)  # 48x64 scaled to a 40 px short side, even
    assert list(copy.get_key_indices()) == [0, 4, 8, 12, 16]
    assert read_frame_number(copy[13].asnumpy()) == 13


def test_copies_are_never_enlarged_and_a_folder_of_other_settings_is_refused(tmp_path):
    spec = Reencoding(short_side=320, keyframe_interval=8)
    assert spec.size_for(256, 340) == (256, 340) and spec.size_for(720, 1280) == (320, 568)
    assert spec.size_for(361, 641) == (320, 568)  # rounded to even sides for x264
    spec.claim(tmp_path / "copies")
    with pytest.raises(ValueError, match="re-encoded with .*keyframe_interval.: 8.*choose another --reencode-to"):
        Reencoding(short_side=320, keyframe_interval=16).claim(tmp_path / "copies")
