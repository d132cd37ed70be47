"""Markdown AVVP table (test F-scores in %, of the val-selected checkpoint, mean ± std over seeds) from run
folders: ``python scripts/avvp_table.py "HAN=runs/han_s*" "linear floor=runs/linear_s*"``."""

from __future__ import annotations

import glob
import json
import statistics
import sys

COLUMNS = [f"{level}_{kind}" for level in ("seg", "evt") for kind in ("audio", "visual", "av", "type", "event")]
HEADER = ["Seg A", "Seg V", "Seg AV", "Seg Type", "Seg Event", "Evt A", "Evt V", "Evt AV", "Evt Type", "Evt Event"]


def cell(values: list[float]) -> str:
    mean = 100 * statistics.fmean(values)
    return f"{mean:.1f}" if len(values) == 1 else f"{mean:.1f} ± {100 * statistics.stdev(values):.1f}"


def main(rows: list[str]) -> None:
    print("| model | seeds | " + " | ".join(HEADER) + " |")
    print("|---|---|" + "---|" * len(HEADER))
    for spec in rows:
        name, pattern = spec.split("=", 1)
        reports = [json.load(open(f"{d}/report.json")) for d in sorted(glob.glob(pattern))]
        if not reports:
            raise SystemExit(f"no run folder with a report.json matches {pattern}")
        cells = [cell([r["test"][c] for r in reports]) for c in COLUMNS]
        print(f"| {name} | {len(reports)} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    main(sys.argv[1:])
