"""Ablation grids as data: named rows of experiment overrides, one grid per table of the paper.

A grid is a list of rows; each row names a registered model and may override any experiment
field (``optim.lr``, ``data.clip.frames``) or model option (a key without a dot, such as
``pool_type``). The built-in grids are the paper's Tables 2-9 (``smallbig.PAPER_TABLES``) and
``peers`` (SmallBig against the seeds' peers) and ``arrow_of_time`` (which models can tell a
clip from its reversal);
users add their own as YAML without touching code::

    title: Learning rate of SmallBig-R23 Full
    rows:
      - {label: "2D", model: r23_2d, baseline: true}
      - {label: "lr 0.01", model: smallbig_r23_full, set: {optim.lr: 0.01}}
      - {label: "avg pool", model: smallbig_r23_full, set: {pool_type: avg}}
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import smallbig

from ..config import qualify
from ..errors import UsageError


@dataclass(frozen=True)
class GridRow:
    label: str  # as in the paper's table, e.g. "3x3x3"
    model: str  # a registered model name
    overrides: dict = field(default_factory=dict)  # dotted experiment fields; no dot = a model option
    baseline: bool = False  # the row that deltas are measured against
    paper_top1: float | None = None  # the paper's Kinetics-400 figure, for reference

    @property
    def slug(self) -> str:
        """A file- and run-name-safe form of the label: ``"3x3x3"``, ``"1st_2nd_layers"``."""
        return re.sub(r"[^A-Za-z0-9.]+", "_", self.label).strip("_") or "row"

    def experiment_overrides(self) -> dict[str, Any]:
        """The row as ``ExperimentConfig.with_overrides`` input."""
        return {"model.name": self.model, **{qualify(key): value for key, value in self.overrides.items()}}


@dataclass(frozen=True)
class Grid:
    name: str
    title: str
    rows: tuple[GridRow, ...]
    source: str = "built-in"

    @property
    def baseline(self) -> GridRow:
        """The row marked ``baseline``, else the first 2D row, else the first row."""
        for row in self.rows:
            if row.baseline:
                return row
        return next((r for r in self.rows if r.model.endswith("_2d")), self.rows[0])


# The paper's tables behind each built-in grid (issue: one grid per ablation table).
PAPER_GRIDS = {
    "effectiveness": "table2",
    "stages": "table3",
    "receptive_field": "table4",
    "layers": "table5",
    "design": "table6",
    "nonlocal": "table7",
    "backbone": "table8",
    "extra_unit": "table9",
}


def _from_paper(name: str, key: str) -> Grid:
    table = smallbig.PAPER_TABLES[key]
    rows = tuple(GridRow(r.label, r.model, dict(r.options), paper_top1=r.reported_top1)
                 for r in table.rows if r.model in smallbig.list_models())
    return Grid(name, f"{table.title} (paper {key.replace('table', 'Table ')})", rows)


# Grids beyond the paper's tables.
PEERS_GRID = Grid("peers", "SmallBig-R23 against the seeds' peers (R23 backbones where the peer has one)", (
    GridRow("2D", "r23_2d", baseline=True),
    GridRow("3D 3x1x1", "r23_3d"),
    GridRow("Non-local", "nonlocal_r23"),
    GridRow("TSM", "tsm_r23"),
    GridRow("bLVNet-TAM", "blvnet_tam_r23"),
    GridRow("S3D-G", "s3dg"),
    GridRow("SmallBig Full", "smallbig_r23_full"),
))


# Who can tell the arrow of time: the released SmallBig unit is symmetric in time (centred max
# pooling, 1x1x1 shared convs), so on the benchmark's reversal pairs (family A) it can get at
# most half of each pair right; a temporal shared conv, a 3D conv or a temporal shift can do better.
ARROW_OF_TIME_GRID = Grid("arrow_of_time", "Who can tell a clip from its reversal (R23; family A: reversal pairs)", (
    GridRow("2D", "r23_2d", baseline=True),
    GridRow("SmallBig Full", "smallbig_r23_full"),
    GridRow("SmallBig Full temporal", "smallbig_r23_full", {"temporal_stages": ["res3", "res4", "res5"]}),
    GridRow("3D", "r23_3d"),
    GridRow("TSM", "tsm_r23"),
))


def builtin_grids() -> dict[str, Grid]:
    grids = {name: _from_paper(name, key) for name, key in PAPER_GRIDS.items()}
    for grid in (PEERS_GRID, ARROW_OF_TIME_GRID):
        grids[grid.name] = grid
    return grids


def load_grid(name_or_path: str) -> Grid:
    """A built-in grid by name, or a YAML grid file; errors name the file, row and field."""
    grids = builtin_grids()
    if name_or_path in grids:
        return grids[name_or_path]
    path = Path(name_or_path)
    if path.suffix not in (".yaml", ".yml") and not path.exists():
        raise UsageError(f"unknown grid {name_or_path!r}; built-in grids: {sorted(grids)} "
                         f"(or give a YAML file, see `run.py ablation --list`)")
    return grid_from_yaml(path)


_ROW_KEYS = {"label", "model", "set", "baseline"}


def grid_from_yaml(path: str | Path) -> Grid:
    import yaml

    path = Path(path)
    if not path.exists():
        raise UsageError(f"{path}: no such grid file")
    try:
        data = yaml.safe_load(path.read_text())
    except yaml.YAMLError as error:
        raise UsageError(f"{path}: not valid YAML: {error}") from None
    if not isinstance(data, dict) or not isinstance(data.get("rows"), list) or not data["rows"]:
        raise UsageError(f"{path}: expected a mapping with a non-empty 'rows' list")
    unknown = set(data) - {"name", "title", "rows"}
    if unknown:
        raise UsageError(f"{path}: unknown top-level key(s) {sorted(unknown)}; expected name, title, rows")
    rows = []
    models = set(smallbig.list_models())
    for number, entry in enumerate(data["rows"], start=1):
        where = f"{path}: row {number}"
        if not isinstance(entry, dict):
            raise UsageError(f"{where}: expected a mapping with label, model[, set, baseline]")
        unknown = set(entry) - _ROW_KEYS
        if unknown:
            raise UsageError(f"{where}: unknown field(s) {sorted(unknown)}; expected {sorted(_ROW_KEYS)}")
        for key in ("label", "model"):
            if not isinstance(entry.get(key), str) or not entry[key]:
                raise UsageError(f"{where}: field {key!r} is missing or not a string")
        if entry["model"] not in models:
            raise UsageError(f"{where}: field 'model': unknown model {entry['model']!r} (see `run.py models`)")
        overrides = entry.get("set") or {}
        if not isinstance(overrides, dict):
            raise UsageError(f"{where}: field 'set' must be a mapping of key: value")
        rows.append(GridRow(entry["label"], entry["model"], dict(overrides), bool(entry.get("baseline", False))))
    labels = [r.label for r in rows]
    repeated = sorted({l for l in labels if labels.count(l) > 1})
    if repeated:
        raise UsageError(f"{path}: row labels must be unique; repeated: {repeated}")
    return Grid(str(data.get("name") or path.stem), str(data.get("title") or path.stem), tuple(rows), str(path))


def describe(grids: dict[str, Grid]) -> str:
    """Every grid with its rows, for ``run.py ablation --list``."""
    lines = []
    for name, grid in grids.items():
        lines.append(f"{name}: {grid.title}")
        for row in grid.rows:
            extra = "".join(f" {k}={v}" for k, v in row.overrides.items())
            mark = "  (baseline)" if row is grid.baseline else ""
            lines.append(f"    {row.label:40s} {row.model}{extra}{mark}")
    return "\n".join(lines)
