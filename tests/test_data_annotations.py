"""Annotation readers: each format read as users have it; every malformed line named by file:line:field."""
import json
import pickle
from pathlib import Path

import pytest

from pipelines.data.annotations import (
    AnnotationError,
    VideoList,
    VideoRecord,
    read_classes,
    read_dataset_folder,
    read_generic_list,
    read_lines,
    write_dataset_folder,
)
from pipelines.data.formats import kinetics_file_name, left_right_swap, read_kinetics_csv, read_ssv2


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_generic_list_joins_paths_to_root_and_reads_labels(tmp_path):
    listing = write(tmp_path / "train.txt", "a/x.mp4 0\n\n# comment\nb/with space.mp4 2\n")
    records = read_generic_list(listing, tmp_path / "videos")
    assert records == [VideoRecord(str(tmp_path / "videos/a/x.mp4"), 0),
                       VideoRecord(str(tmp_path / "videos/b/with space.mp4"), 2)]


@pytest.mark.parametrize("line, problem", [
    ("a.mp4", "missing column"),
    ("a.mp4 cat", "not an integer"),
    ("a.mp4 -1", "out of range"),
    ("a.mp4 3", "out of range (expected 0..2)"),
])
def test_generic_list_errors_name_file_line_and_field(tmp_path, line, problem):
    listing = write(tmp_path / "train.txt", f"ok.mp4 1\n{line}\n")
    with pytest.raises(AnnotationError) as caught:
        read_generic_list(listing, tmp_path, num_classes=3)
    error = caught.value
    assert (error.file, error.line, error.field) == (str(listing), 2, "label")
    assert f"{listing}:2: label:" in str(error) and problem in str(error)


def test_dataset_folder_round_trips_classes_and_splits(tmp_path):
    records = [VideoRecord(str(tmp_path / "videos/v0.mp4"), 1), VideoRecord(str(tmp_path / "videos/v1.mp4"), 0)]
    write_dataset_folder(tmp_path, ["walk", "run"], {"train": records, "val": records[:1], "test": []})
    assert (tmp_path / "train.txt").read_text() == "videos/v0.mp4 1\nvideos/v1.mp4 0\n"
    train = read_dataset_folder(tmp_path, "train")
    assert train.classes == ("walk", "run") and train.class_map() == {"walk": 0, "run": 1}
    assert list(train.records) == records
    with pytest.raises(AnnotationError, match=r"test.txt: file: no videos"):
        read_dataset_folder(tmp_path, "test")  # an empty split is written, but a run cannot use it


def test_dataset_folder_rejects_label_beyond_classes_txt(tmp_path):
    write(tmp_path / "classes.txt", "walk\nrun\n")
    write(tmp_path / "val.txt", "v0.mp4 1\nv1.mp4 2\n")
    with pytest.raises(AnnotationError, match=r"val.txt:2: label: index 2 out of range \(expected 0..1\)"):
        read_dataset_folder(tmp_path, "val")


def test_classes_txt_rejects_duplicates_and_inner_blank_lines(tmp_path):
    with pytest.raises(AnnotationError, match=r"classes.txt:3: class name: 'walk' already named on line 1"):
        read_classes(write(tmp_path / "classes.txt", "walk\nrun\nwalk\n"))
    with pytest.raises(AnnotationError, match=r"classes.txt:2: class name: empty line"):
        read_classes(write(tmp_path / "classes.txt", "walk\n\nrun\n"))


def write_bytes(path: Path, data: bytes) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return path


# ---- text as editors and spreadsheets save it: read as meant, or stopped at file:line


BOM = b"\xef\xbb\xbf"


def test_a_dataset_folder_saved_with_bom_crlf_and_trailing_spaces_reads_like_a_clean_one(tmp_path):
    write(tmp_path / "clean/classes.txt", "walk\nrun\n")
    write(tmp_path / "clean/train.txt", "v/a b.mp4 1\nv/c.mp4 0\n")
    write_bytes(tmp_path / "notepad/classes.txt", BOM + b"walk  \r\nrun\t\r\n")
    write_bytes(tmp_path / "notepad/train.txt", BOM + b"v/a b.mp4 1   \r\nv/c.mp4\t0 \r\n\r\n")
    clean, notepad = read_dataset_folder(tmp_path / "clean", "train"), read_dataset_folder(tmp_path / "notepad", "train")
    assert notepad.classes == clean.classes == ("walk", "run")
    assert [(Path(r.path).relative_to(tmp_path / "notepad"), r.label) for r in notepad.records] == \
        [(Path(r.path).relative_to(tmp_path / "clean"), r.label) for r in clean.records]


def test_a_byte_order_mark_is_not_part_of_the_first_path_or_class_name(tmp_path):
    records = read_generic_list(write_bytes(tmp_path / "train.txt", BOM + b"first.mp4 0\n"), tmp_path)
    assert records == [VideoRecord(str(tmp_path / "first.mp4"), 0)]
    assert read_classes(write_bytes(tmp_path / "classes.txt", BOM + b"walk\nrun\n")) == ("walk", "run")


@pytest.mark.parametrize("ending", [b"\r\n", b"\r", b"\n"], ids=["CRLF", "CR", "LF"])
def test_line_numbers_count_lines_whatever_their_ends(tmp_path, ending):
    listing = write_bytes(tmp_path / "train.txt", ending.join([b"a.mp4 0", b"# note", b"b.mp4 x", b""]))
    assert read_lines(listing) == ["a.mp4 0", "# note", "b.mp4 x"]
    with pytest.raises(AnnotationError, match=r"train.txt:3: label: 'x' is not an integer class index"):
        read_generic_list(listing, tmp_path)


@pytest.mark.parametrize("name, reader", [("train.txt", read_generic_list), ("classes.txt", read_classes)])
def test_a_byte_that_is_not_utf8_is_named_by_line_and_byte_offset(tmp_path, name, reader):
    data = BOM + b"a.mp4 0\r\nb.mp4 1\r\ncaf\xe9.mp4 2\r\n"  # Latin-1 e-acute; offset counts the BOM
    path = write_bytes(tmp_path / name, data)
    assert data.index(b"\xe9") == 24
    with pytest.raises(AnnotationError) as caught:
        reader(path)
    assert (caught.value.line, caught.value.field) == (3, "encoding")
    assert str(caught.value) == (f"{path}:3: encoding: byte 0xe9 at byte offset 24 (byte 4 of the line) "
                                 "is not UTF-8 (expected UTF-8 text)")


@pytest.mark.parametrize("text", ["", "\n\n", "# train split\n# nothing yet\n"], ids=["zero bytes", "blank", "comments"])
def test_a_list_without_a_video_says_it_has_no_videos(tmp_path, text):
    listing = write(tmp_path / "train.txt", text)
    with pytest.raises(AnnotationError, match=r"train.txt: file: no videos \(expected 'relative/path.mp4 label_index'"):
        read_generic_list(listing, tmp_path)


def test_an_empty_class_list_says_it_has_no_class_names(tmp_path):
    with pytest.raises(AnnotationError, match=r"classes.txt: file: no class names"):
        read_classes(write(tmp_path / "classes.txt", ""))


@pytest.mark.parametrize("label, problem", [
    ("3.0", "'3.0' is a float, not an integer class index (write 3)"),   # refused, not rounded: a float
    ("2.5", "'2.5' is a float, not an integer class index"),             # column is more likely the wrong one
    ("3e0", "'3e0' is a float, not an integer class index (write 3)"),
])
def test_a_float_label_is_refused_saying_an_integer_is_expected(tmp_path, label, problem):
    listing = write(tmp_path / "train.txt", f"a.mp4 1\nb.mp4 {label}\n")
    with pytest.raises(AnnotationError) as caught:
        read_generic_list(listing, tmp_path, num_classes=5)
    assert str(caught.value) == f"{listing}:2: label: {problem}"


KINETICS = ("label,youtube_id,time_start,time_end,split\n"
            "abseiling,abc123,10,20,train\n"
            "zumba,xyz789,0,10,train\n"
            "abseiling,def456,5,15,train\n")


def test_kinetics_csv_nested_layout_and_sorted_classes(tmp_path):
    (tmp_path / "videos/train").mkdir(parents=True)
    videos = read_kinetics_csv(write(tmp_path / "train.csv", KINETICS), tmp_path / "videos")
    assert videos.classes == ("abseiling", "zumba")
    assert videos.records[0] == VideoRecord(str(tmp_path / "videos/train/abseiling/abc123_000010_000020.mp4"), 0)
    assert videos.labels == [0, 1, 0]


def test_kinetics_csv_flat_layout_uses_given_classes(tmp_path):
    videos = read_kinetics_csv(write(tmp_path / "val.csv", KINETICS), tmp_path / "flat",
                               classes=["zumba", "abseiling"], layout="auto")
    assert videos.records[1].path == str(tmp_path / "flat" / kinetics_file_name("xyz789", 0, 10))
    assert videos.labels == [1, 0, 1]


def test_kinetics_csv_errors_name_line_and_field(tmp_path):
    bad_time = write(tmp_path / "a.csv", KINETICS + "zumba,q,soon,10,train\n")
    with pytest.raises(AnnotationError, match=r"a.csv:5: time_start: 'soon' is not a number"):
        read_kinetics_csv(bad_time, tmp_path)
    short = write(tmp_path / "b.csv", KINETICS + "zumba,q,1\n")
    with pytest.raises(AnnotationError, match=r"b.csv:5: time_end: missing column"):
        read_kinetics_csv(short, tmp_path)
    unknown = write(tmp_path / "c.csv", KINETICS)
    with pytest.raises(AnnotationError, match=r"c.csv:3: label: unknown class 'zumba'"):
        read_kinetics_csv(unknown, tmp_path, classes=["abseiling"])
    header = write(tmp_path / "d.csv", "label,youtube_id,time_start\nx,y,1\n")
    with pytest.raises(AnnotationError, match=r"d.csv:1: header: missing column\(s\) \['time_end', 'split'\]"):
        read_kinetics_csv(header, tmp_path)


def ssv2_files(tmp_path, entries):
    labels = {"Pushing something from left to right": "0", "Pushing something from right to left": "1",
              "Holding something": "2"}
    return (write(tmp_path / "labels.json", json.dumps(labels)),
            write(tmp_path / "train.json", json.dumps(entries)))


def test_ssv2_maps_templates_to_label_indices(tmp_path):
    labels, train = ssv2_files(tmp_path, [
        {"id": "42", "label": "pushing a cup from left to right",
         "template": "Pushing [something] from left to right", "placeholders": ["a cup"]},
        {"id": "7", "template": "Holding [something]"}])
    videos = read_ssv2(labels, train, tmp_path / "20bn")
    assert videos.records == (VideoRecord(str(tmp_path / "20bn/42.webm"), 0), VideoRecord(str(tmp_path / "20bn/7.webm"), 2))
    assert left_right_swap(videos.classes) == {0: 1, 1: 0}


def test_ssv2_errors_name_entry_and_field(tmp_path):
    labels, train = ssv2_files(tmp_path, [{"id": "1", "template": "Holding [something]"}, {"id": "2"}])
    with pytest.raises(AnnotationError, match=r"train.json: entry 1.template: missing"):
        read_ssv2(labels, train, tmp_path)
    labels, train = ssv2_files(tmp_path, [{"id": "3", "template": "Dropping [something]"}])
    with pytest.raises(AnnotationError, match=r"entry 0.template: unknown class 'Dropping something'"):
        read_ssv2(labels, train, tmp_path)
    broken = write(tmp_path / "broken.json", '[{"id": 1,\n "template": }]')
    with pytest.raises(AnnotationError, match=r"broken.json:2: json:"):
        read_ssv2(labels, broken, tmp_path)


def test_a_list_sent_to_a_worker_arrives_whole_and_as_a_few_objects_not_one_per_record():
    records = [VideoRecord(f"/data/k400/videos/v{i:06d}.mp4", i % 400, f"videos/v{i:06d}.mp4") for i in range(50_000)]
    videos = VideoList(records, [f"class {i}" for i in range(400)], "train.txt")
    sent = pickle.dumps(videos)
    assert pickle.loads(sent) == videos
    assert [r.key for r in pickle.loads(sent).records] == [r.key for r in records]  # keys are not compared
    names = sum(len(r.path) + len(r.key) + 2 for r in records)  # each with a separator
    assert len(sent) < names + 8 * len(records) + 16_384  # names, 8-byte labels, the class list: nothing per record
    for odd in ([VideoRecord("/data/a.mp4", 0, "a.mp4"), VideoRecord("/elsewhere/b.mp4", 1, "b.mp4")],  # two folders
                [VideoRecord("/data/a.mp4", 0)],  # the key is the path
                []):
        videos = VideoList(odd, ("a", "b"), "odd.txt")
        assert pickle.loads(pickle.dumps(videos)) == videos
        assert [r.key for r in pickle.loads(pickle.dumps(videos)).records] == [r.key for r in odd]
