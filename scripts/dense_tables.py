"""Markdown tables from the JSON of ``scripts/dense_postproc.py``: mean over seeds per model and setting.

    python scripts/dense_tables.py [--combined] audit.json [audit.json ...]
    python scripts/dense_tables.py --main RUNS --data SYN [--table dense_ablation] [--paired] --seeds 5 [key=value ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

TIOUS = ["mAP@0.1", "mAP@0.3", "mAP@0.5", "mAP@0.7", "mAP@0.9"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("audits", nargs="*", type=Path)
    ap.add_argument("--combined", action="store_true", help="one table, a val / test column per model")
    ap.add_argument("--main", type=Path, default=None,
                    help="instead: the main table from the finished cells under this `reproduce dense --out`; "
                         "the audits arguments are then the reproduce overrides")
    ap.add_argument("--table", default="dense", choices=["dense", "dense_ablation"],
                    help="with --main: which `avloc reproduce` table")
    ap.add_argument("--paired", action="store_true",
                    help="with --main: each row minus its reference on the same seed (test and val avg mAP): dense: "
                         "linear_mil under the same pipeline; dense_ablation: CLASP (its shipped ablations: as shipped)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--data", type=Path, default=None, help="with --main: the data folder the cells trained on")
    args = ap.parse_args()
    if args.main is not None:
        if args.data is None:
            ap.error("--main needs --data (cell folders carry the data's fingerprint)")
        reports = cell_reports(args.main, args.data, args.seeds, [str(a) for a in args.audits], args.table)
        if args.paired:
            paired_table(reports, args.table)
        else:
            main_table(reports)
        return
    runs = [r for path in args.audits for r in json.loads(path.read_text()).values()]
    if args.combined:
        combined(runs)
        return
    models = sorted({(r["model"], r.get("label", r["model"])) for r in runs})
    for model, label in models:
        mine = [r for r in runs if r["model"] == model and r.get("label", r["model"]) == label]
        print(f"\n#### {label}: post-processing audit (mean of {len(mine)} seed(s); val picks, test reported)\n")
        print("| setting | val avg | test avg | " + " | ".join(f"test {t[4:]}" for t in TIOUS) + " | pred/video |")
        print("|---" * (4 + len(TIOUS)) + "|")
        for name in mine[0]["variants"]:
            def mean(split: str, key: str) -> float:
                return statistics.fmean(r["variants"][name][split][key] for r in mine)
            cells = [f"{100 * mean('val', 'mAP_avg'):.2f}", f"{100 * mean('test', 'mAP_avg'):.2f}"]
            cells += [f"{100 * mean('test', t):.2f}" for t in TIOUS] + [f"{mean('test', 'per_video'):.0f}"]
            print(f"| {name} | " + " | ".join(cells) + " |")


def combined(runs: list[dict]) -> None:
    """Average mAP val / test per setting (rows) and model (columns), mean over seeds."""
    models = ["linear_mil", "mil", "clasp"]
    names = list(runs[0]["variants"])
    seeds = {m: sum(r["model"] == m for r in runs) for m in models}
    print("| setting | " + " | ".join(f"{m} val / test ({seeds[m]} seeds)" for m in models) + " |")
    print("|---" * (1 + len(models)) + "|")
    for name in names:
        cells = []
        for m in models:
            mine = [r["variants"][name] for r in runs if r["model"] == m]
            if not mine:
                cells.append("–")
                continue
            val = statistics.fmean(v["val"]["mAP_avg"] for v in mine)
            test = statistics.fmean(v["test"]["mAP_avg"] for v in mine)
            cells.append(f"{100 * val:.2f} / {100 * test:.2f}")
        print(f"| {name} | " + " | ".join(cells) + " |")


def cell_reports(out: Path, data: Path, seeds: int, overrides: list[str],
                 table: str = "dense") -> dict[str, dict[int, dict]]:
    """``report.json`` of every finished cell of a dense table: row -> seed -> report (missing seeds left out)."""
    from avloc.config import load_config
    from avloc.engine.run_folder import data_fingerprint
    from avloc.tools.paths import config_path
    from avloc.tools.reproduce import cell_dir
    from avloc.tools.tables.dense import TABLES

    digest = data_fingerprint(data, exclude=out)["digest"]
    reports: dict[str, dict[int, dict]] = {}
    for run in TABLES[table].runs:
        for seed in range(seeds):
            cfg = load_config(config_path(run.config), [*overrides, *run.overrides, f"train.seed={seed}"])
            path = cell_dir(out, run, cfg, digest) / "report.json"
            if path.exists():
                reports.setdefault(run.row, {})[seed] = json.loads(path.read_text())
    return reports


def main_table(reports: dict[str, dict[int, dict]]) -> None:
    """Every row: test mAP per tIoU, test and val average, mean ± std over the finished seeds."""
    from avloc.tools.tables.dense import TIOUS

    keys = [("test", f"mAP@{t}") for t in TIOUS] + [("test", "mAP_avg"), ("val", "mAP_avg")]
    print("| model | " + " | ".join([*TIOUS, "Avg", "val Avg"]) + " | seeds |")
    print("|---" * (len(keys) + 2) + "|")
    for row, by_seed in reports.items():
        cells = []
        for split, k in keys:
            vals = [100 * r[split][k] for r in by_seed.values()]
            spread = f" ± {statistics.stdev(vals):.2f}" if len(vals) > 1 else ""
            cells.append(f"{statistics.fmean(vals):.2f}{spread}")
        print(f"| {row} | " + " | ".join(cells) + f" | {len(by_seed)} |")


def paired_table(reports: dict[str, dict[int, dict]], table: str = "dense_ablation") -> None:
    """Each row minus its reference on the same training seed (one data set: the seed is the only spread).
    dense: every model row minus linear_mil under the same pipeline (common or own); dense_ablation: the
    "CLASP shipped ..." ablations minus CLASP as shipped, every other row minus CLASP (common pipeline)."""
    from avloc.tools.tables.dense import COMMON_ROWS, OWN_ROWS, SHIPPED, SHIPPED_ROWS

    def reference(row: str) -> tuple[str, str]:
        if table == "dense":
            base = OWN_ROWS[0] if row in OWN_ROWS else COMMON_ROWS[0]
            return base, "linear_mil (same pipeline)"
        if row in SHIPPED_ROWS[1:]:
            return SHIPPED, "CLASP as shipped"
        return "CLASP", "CLASP (min-max on)"

    print("| row | minus (same seed) | test Δ avg mAP | val Δ avg mAP | seeds | test Δ per seed |")
    print("|---|---|---|---|---|---|")
    for row, by_seed in reports.items():
        base, minus = reference(row)
        seeds = sorted(set(by_seed) & set(reports.get(base, {})))
        if row == base or len(seeds) < 2:
            continue
        cells = []
        for key in ("test_mAP_avg", "val_mAP_avg"):
            diffs = [100 * (by_seed[k][key] - reports[base][k][key]) for k in seeds]
            cells.append((f"{statistics.fmean(diffs):+.2f} ± {statistics.stdev(diffs):.2f}", diffs))
        per_seed = ", ".join(f"{d:+.2f}" for d in cells[0][1])
        print(f"| {row} | {minus} | {cells[0][0]} | {cells[1][0]} | {len(seeds)} | {per_seed} |")


if __name__ == "__main__":
    main()
