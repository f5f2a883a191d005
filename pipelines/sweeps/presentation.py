"""A results table as people read it: Markdown with intervals and marked tests, a chart with error bars.

``results.md`` (also printed at the end of a sweep), ``results.csv`` (the same numbers, one
column each, for pandas or a spreadsheet) and ``results.png`` (bars with their 95% intervals)
are written side by side and logged to the sweep's parent MLflow run.
"""
from __future__ import annotations

import textwrap
from pathlib import Path

from ..training.metrics import TEST_TOP1, TEST_TOP5, TRAIN_CLIPS_PER_S
from .statistics import format_p
from .table import Cell, ResultsTable


def _accuracy_text(cell: Cell | None) -> str:
    """``45.2 [41.7, 48.8]``, or ``45.2 ± 1.3 [39.0, 51.4]`` over seeds (the interval then counts
    retraining); empty when missing."""
    if cell is None or cell.value is None:
        return ""
    text = f"{cell.value:.1f}" + (f" ± {cell.sd:.1f}" if cell.sd is not None else "")
    if cell.interval is not None:
        low, high = cell.interval
        text += f" [{low:.1f}, {high:.1f}]"
    return text


def markdown_records(table: ResultsTable) -> list[dict[str, str]]:
    """Text cells, one dict per row (shared by the Markdown table and the console)."""
    records = []
    short = {TEST_TOP1: "", "family_A": " A", "family_B": " B"}
    verdicts = table.verdicts()
    for row in table.rows:
        record = {"row": row.label, "model": row.model,
                  "params (M)": f"{row.params / 1e6:.2f}" if row.params else "",
                  f"GMACs{' @ ' + table.clip if table.clip else ''}": f"{row.gmacs:.3f}" if row.gmacs else ""}
        for title, prefix in table.present():
            cell = table.cell(row, prefix)
            record[title] = _accuracy_text(cell)
            if prefix in short:
                test = cell.test if cell else None
                record[f"Δ{short[prefix]}"] = f"{test.delta:+.1f}" if test else ""
                record[f"p{short[prefix]} (Holm)"] = format_p(test.p, cell.p_holm) if test else ""
            if prefix == TEST_TOP1:
                found = table.vs_best(row)
                record["Δ best"] = f"{found[0].delta:+.1f}" if found else ""
                record["p best (Holm)"] = format_p(found[0].p, found[1]) if found else ""
                record["verdict"] = verdicts[row.label]
        if row.time_symmetric is not None and "family A top-1" in record:
            record["time-symmetric"] = "yes" if row.time_symmetric else "no"
        speed = row.mean(TRAIN_CLIPS_PER_S)
        record["train clips/s"] = f"{speed:.0f}" if speed else ""
        record["seeds"] = str(row.seeds())
        record["paper K400 top-1"] = f"{row.paper_top1:.1f}" if row.paper_top1 is not None else ""
        records.append(record)
    return records


def markdown(table: ResultsTable) -> str:
    records = markdown_records(table)
    header = list(records[0]) if records else ["row"]
    lines = [f"**{table.title}**", ""]
    if any(table.verdicts().values()):
        lines += [f"Verdict: {table.verdict()}", ""]
    lines.append("| " + " | ".join(header) + " |")
    lines.append("|" + "|".join("---" if h in ("row", "model") else "---:" for h in header) + "|")
    lines += ["| " + " | ".join(r[h] for h in header) + " |" for r in records]
    notes = table.footnotes()
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    return "\n".join(lines)


def plot(table: ResultsTable, path: Path) -> Path:
    """Grouped bars: test top-1 and each class family's per row, with their 95% intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    series = [(t, p) for t, p in table.present() if p != TEST_TOP5]
    labels = [r.label for r in table.rows]
    x = np.arange(len(labels))
    width = 0.8 / max(1, len(series))
    fig, ax = plt.subplots(figsize=(max(6.0, 1.1 * len(labels) + 2), 4.2))
    for i, (title, prefix) in enumerate(series):
        cells = [table.cell(row, prefix) for row in table.rows]
        heights = [c.value if c and c.value is not None else 0.0 for c in cells]
        below, above = zip(*[_error(c) for c in cells]) if cells else ((), ())
        ax.bar(x + (i - (len(series) - 1) / 2) * width, heights, width, label=title,
               yerr=[below, above], capsize=3, error_kw={"elinewidth": 1})
    if table.chance is not None:
        ax.axhline(table.chance, color="grey", linestyle="--", linewidth=1, label="chance")
    ax.set_xticks(x, labels, rotation=20, ha="right")
    ax.set_ylabel("top-1 accuracy (%), 95% interval")
    ax.set_title(table.title, fontsize=10)
    ax.legend(fontsize=8)
    if any(table.verdicts().values()):
        fig.text(0.01, 0.01, "\n".join(textwrap.wrap(f"Verdict: {table.verdict()}", 120)), fontsize=7, va="bottom")
        fig.tight_layout(rect=(0, 0.08, 1, 1))
    else:
        fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def _error(cell: Cell | None) -> tuple[float, float]:
    """Distances from the bar's top to its interval's ends (0, 0 without an interval)."""
    if cell is None or cell.interval is None or cell.value is None:
        return 0.0, 0.0
    low, high = cell.interval
    return max(0.0, cell.value - low), max(0.0, high - cell.value)


def write_results(table: ResultsTable, folder: str | Path) -> list[Path]:
    """results.md, results.csv and results.png in ``folder``."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    text = folder / "results.md"
    text.write_text(markdown(table) + "\n")
    return [text, table.write_csv(folder / "results.csv"), plot(table, folder / "results.png")]
