"""Markdown tables from the JSON of ``scripts/dense_postproc.py``: mean over seeds per model and setting.

    python scripts/dense_tables.py audit.json [audit.json ...]
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

TIOUS = ["mAP@0.1", "mAP@0.3", "mAP@0.5", "mAP@0.7", "mAP@0.9"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("audits", nargs="+", type=Path)
    args = ap.parse_args()
    runs = [r for path in args.audits for r in json.loads(path.read_text()).values()]
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


if __name__ == "__main__":
    main()
