"""``run.py data``: the built-in benchmark (``synth``), and public datasets imported (``import``)."""
from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

log = logging.getLogger(__name__)


def cmd_synth(args: argparse.Namespace) -> int:
    from pipelines.data.synthetic import write_synthetic

    summary = write_synthetic(args.out, videos_per_class=args.videos_per_class, size=args.size,
                              frames=args.frames, seed=args.seed, val_per_class=args.val_per_class,
                              test_per_class=args.test_per_class, clutter=args.clutter)
    print(f"wrote {summary['videos']} videos of {summary['classes']} classes to {summary['out']} "
          f"(train/val/test {summary['splits']['train']}/{summary['splits']['val']}/{summary['splits']['test']}) "
          f"in {summary['seconds']:.1f} s")
    return 0


def listing_from_args(args: argparse.Namespace):
    """The import's :class:`~pipelines.data.importing.Listing`, from the format's own files."""
    from pipelines.data import importing

    if args.format == "kinetics":
        return importing.kinetics_listing(args.csv, args.videos)
    splits = {split: getattr(args, split) for split in ("train", "val", "test") if getattr(args, split)}
    if args.format == "ssv2":
        return importing.ssv2_listing(args.labels, splits, args.videos)
    return importing.list_listing(args.classes, splits, args.videos)


def cmd_import(args: argparse.Namespace) -> int:
    from tqdm import tqdm

    from pipelines.cli.console import setup_console
    from pipelines.cluster import start_ray
    from pipelines.data.importing import Reencoding, import_dataset

    listing = listing_from_args(args)  # a bad annotation line stops here, before Ray starts
    out = Path(args.out).expanduser().resolve()
    out.mkdir(parents=True, exist_ok=True)
    log_file = setup_console(out / "import.log", args.verbose)
    log.info("log: %s  (Ray's and the decoders' own output)", log_file)
    start_ray(args.address, route_output=True, verbose=args.verbose, dashboard=args.dashboard)
    reencode = Reencoding(args.short_side, args.keyframe_interval) if args.reencode else None
    with tqdm(unit="video", desc="probing", disable=not sys.stderr.isatty()) as bar:
        done = import_dataset(listing, out, reencode=reencode, reencode_to=args.reencode_to, progress=bar)
    print_summary(args.format, out, listing, done)
    print(f"  next: python run.py train --data {out} ...")
    return 0


def print_summary(format_name: str, out: Path, listing, done) -> None:
    """One screen: per split listed, found, usable, served by PyAV and left out by reason."""
    from pipelines.data.importing import REPORT_FILE

    print(f"\nimported {format_name} into {out}: {len(listing.classes)} classes")
    print(f"  {'split':6s} {'listed':>7s} {'found':>7s} {'usable':>7s} {'PyAV':>5s}  left out")
    for split, s in done.splits.items():
        left = ", ".join(f"{reason} {n}" for reason, n in sorted(s.skipped.items()) if n) or "-"
        print(f"  {split:6s} {s.listed:7d} {s.found:7d} {s.usable:7d} {s.pyav:5d}  {left}")
    for note in listing.notes:
        print(f"  note: {note}")
    print(f"  probed {done.probed} video(s), {done.reused} unchanged since the last import; "
          f"left out, by file: {out / REPORT_FILE}")
    if done.reencoded is not None:
        r = done.reencoded
        print(f"  re-encoded {r.made} video(s) now, {r.before} before, {r.failed} failed, into {r.folder}: "
              f"{r.bytes_in / 1e6:.1f} MB -> {r.bytes_out / 1e6:.1f} MB on disk ({r.bytes_out / max(r.bytes_in, 1):.0%})")


def add_data(commands) -> None:
    from .training import add_ray_flags

    data = commands.add_parser("data", help="datasets: the built-in benchmark, or Kinetics / SSv2 / lists imported")
    data_commands = data.add_subparsers(dest="data_command", required=True)
    _add_synth(data_commands)
    imports = data_commands.add_parser(
        "import", help="a public dataset -> a dataset folder (every video probed on Ray; a report of the bad)")
    formats = imports.add_subparsers(dest="format", required=True)
    kinetics = formats.add_parser("kinetics", help="the official CSVs (label,youtube_id,time_start,time_end,split)")
    kinetics.add_argument("--csv", action="append", required=True,
                          help="a Kinetics CSV (repeat: train.csv, validate.csv, test.csv)")
    ssv2 = formats.add_parser("ssv2", help="Something-Something V2: labels.json and the split JSON files")
    ssv2.add_argument("--labels", required=True, help="labels.json (class name -> index)")
    generic = formats.add_parser("list", help="MMAction2 / PySlowFast lists ('relative/path.mp4 label')")
    generic.add_argument("--classes", required=True, help="class names, one per line (line = index)")
    for parser, suffix in ((ssv2, ".json"), (generic, " list")):
        parser.add_argument("--train", required=True, help=f"training split{suffix}")
        parser.add_argument("--val", required=True, help=f"validation split{suffix}")
        parser.add_argument("--test", help=f"test split{suffix} (default: test on the validation split)")
    for parser in (kinetics, ssv2, generic):
        parser.add_argument("--videos", required=True, help="the folder the videos are in (any layout below it)")
        parser.add_argument("--out", required=True, help="the dataset folder to write (train with --data OUT)")
        add_ray_flags(parser, "a Ray cluster to probe on")
        parser.add_argument("--verbose", action="store_true", help="Ray's own output on the console too")
        _add_reencode(parser)
        parser.set_defaults(func=cmd_import)


def _add_reencode(parser) -> None:
    from pipelines.data.importing import Reencoding

    default = Reencoding()
    parser.add_argument("--reencode", action="store_true",
                        help="train from copies cheap to read clips from: H.264 MP4, --short-side, --keyframe-interval")
    parser.add_argument("--short-side", type=int, default=default.short_side,
                        help="the copies' short side in pixels, never enlarged (default: %(default)s)")
    parser.add_argument("--keyframe-interval", type=int, default=default.keyframe_interval,
                        help="frames between keyframes in the copies (default: %(default)s)")
    parser.add_argument("--reencode-to", help="the copies' folder (default: beside --videos, e.g. K400-320p-k8)")


def _add_synth(data_commands) -> None:
    from pipelines.data.synthetic import SyntheticSpec

    synth = data_commands.add_parser("synth", help="write the temporal benchmark as a dataset folder")
    synth.add_argument("--out", required=True, help="dataset folder to write (read back with --data DIR)")
    default = SyntheticSpec()  # the benchmark the presets use
    synth.add_argument("--videos-per-class", type=int, default=default.videos_per_class)
    synth.add_argument("--size", type=int, default=default.size, help="frame side in pixels (even)")
    synth.add_argument("--frames", type=int, default=default.frames)
    synth.add_argument("--seed", type=int, default=default.seed)
    synth.add_argument("--val-per-class", type=int, default=default.val_per_class,
                       help="validation videos per class (default: 15%%)")
    synth.add_argument("--test-per-class", type=int, default=default.test_per_class,
                       help="test videos per class (default: 15%%)")
    synth.add_argument("--clutter", action="store_true", default=default.clutter,
                       help="the harder scene: static clutter, more distractors, heavier noise")
    synth.set_defaults(func=cmd_synth)
