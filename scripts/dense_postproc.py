"""Post-processing audit of trained dense (W-DAVEL) runs: one forward pass, many proposal settings.

For every run folder given, the val-selected checkpoint (``best.pt``) scores val and test once; every
setting of :data:`VARIANTS` (the issue-13 row-3 pipeline, then one step added at a time, then one knob
changed at a time around the shipped defaults) is then evaluated on both splits and written as JSON.
Defaults are picked on ``val`` only; ``test`` is reported beside it.

    python scripts/dense_postproc.py --data SYN --out audit.json RUN [RUN ...]
    python scripts/dense_postproc.py --data SYN --out audit.json --reproduce-out RUNS --seeds 3 [key=value ...]

The second form audits the cells of the common-pipeline rows of linear_mil, MIL and CLASP in ``avloc
reproduce dense`` (the same overrides as given to it resolve the same cell folders).
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
from pathlib import Path
from typing import Any

import torch

from avloc.config import load_config
from avloc.engine.build import build_model, load_data
from avloc.engine.checkpoint import load_safe
from avloc.engine.run_folder import data_fingerprint
from avloc.evaluation.dense_map import metric_name, predict_scores, segments_from_scores
from avloc.evaluation.detection import evaluate_detection
from avloc.evaluation.proposals import ProposalConfig
from avloc.tools.paths import config_path
from avloc.tools.reproduce import cell_dir
from avloc.tools.tables.dense import COMMON_ROWS, DENSE

# linear_mil, MIL and CLASP, each trained (and selected) with the common post-processing
AUDITED_ROWS = tuple(row for row in COMMON_ROWS if not row.startswith("HAN"))

# The row-3 post-processing: runs of CAS >= theta for theta in 0.1:0.1:0.9, score = mean CAS,
# class kept when its video score >= 0.1, hard NMS 0.5, top 100.
ROW3 = dict(thresholds=[round(0.1 * i, 1) for i in range(1, 10)], minmax=False, class_threshold=0.1,
            class_topk=0, smooth=1, score="mean", oic_gamma=0.0, nms="hard", nms_iou=0.5, top_n=100)
ROW4 = {**ROW3, "smooth": 3, "score": "oic"}  # + 3-step smoothing + outer-inner contrast

# (name, settings): the ladder adds one step at a time to row 3; the rest change one knob of "shipped".
LADDER = [
    ("row3: naive", ROW3),
    ("+ smoothing 3", {**ROW3, "smooth": 3}),
    ("+ OIC (= row4)", ROW4),
    ("+ video-score fusion 0.2", {**ROW4, "oic_gamma": 0.2}),
    ("+ soft-NMS 0.3", {**ROW4, "oic_gamma": 0.2, "nms": "soft"}),
    ("+ min-max CAS", {**ROW4, "oic_gamma": 0.2, "nms": "soft", "minmax": True}),
]


def one_knob(base: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """``base`` with one knob changed at a time."""
    knobs: dict[str, list[Any]] = {
        "class_threshold": [0.05, 0.1, 0.2, 0.3],
        "class_topk": [0, 1, 2, 3, 5],
        "smooth": [1, 3, 5],
        "thresholds": [[0.5], [round(0.1 * i, 1) for i in range(1, 10)], [round(0.05 * i, 2) for i in range(1, 20)]],
        "score": ["mean", "oic"],
        "oic_gamma": [0.0, 0.2, 0.5, 1.0],
        "minmax": [False, True],
        "nms": ["hard", "soft", "none"],
        "nms_iou": [0.5, 0.7],
        "soft_sigma": [0.3, 0.5],
        "top_n": [20, 50, 100, 200],
    }
    out = [("shipped", base)]
    for key, values in knobs.items():
        for v in values:
            if v != base.get(key):
                label = f"{len(v)} thresholds" if key == "thresholds" else v
                out.append((f"{key}={label}", {**base, key: v}))
    return out


def score(scores: Any, data: Any, split: str, settings: dict[str, Any]) -> dict[str, float]:
    pred = segments_from_scores(scores, data, ProposalConfig(**settings))
    res = evaluate_detection(data.ground_truth(split), pred, "unav")
    out = {metric_name(t): float(m) for t, m in zip(res.tious, res.mAP)}
    return out | {"mAP_avg": float(res.average_map), "per_video": len(pred) / max(1, len(data.splits[split]))}


def audit_run(run: Path, data_root: Path, cache: dict[str, Any]) -> dict[str, Any]:
    cfg = load_config(run / "config.yaml")
    key = json.dumps(cfg.to_dict()["data"], sort_keys=True)
    if key not in cache:
        cache.clear()
        cache[key] = load_data(cfg, data_root)
    data = cache[key]
    model = build_model(cfg, data)
    model.load_state_dict(load_safe(run / "best.pt")["model"])
    shipped = {f.name: getattr(cfg.eval, f.name) for f in dataclasses.fields(ProposalConfig)}
    variants = [(f"ladder {n}", s) for n, s in LADDER] + one_knob(shipped)
    result: dict[str, Any] = {"model": cfg.name("model"), "seed": cfg.train.seed, "variants": {}}
    split_scores = {s: predict_scores(model, data, s, torch.device("cpu"), 128) for s in ("val", "test")}
    for name, settings in variants:
        result["variants"][name] = {s: score(split_scores[s], data, s, settings) for s in ("val", "test")}
        result["variants"][name]["settings"] = settings
    return result


def reproduce_cells(out: Path, data: Path, seeds: int, overrides: list[str]) -> list[Path]:
    """The cell folders `avloc reproduce dense --data DATA --out OUT --seeds N OVERRIDES` trains for AUDITED_ROWS."""
    digest = data_fingerprint(data, exclude=out)["digest"]
    cells = []
    for run in (r for r in DENSE.runs if r.row in AUDITED_ROWS):
        for seed in range(seeds):
            cfg = load_config(config_path(run.config), [*overrides, *run.overrides, f"train.seed={seed}"])
            cells.append(cell_dir(out, run, cfg, digest))
    return cells


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("items", nargs="*", help="run folders, or with --reproduce-out the reproduce overrides")
    ap.add_argument("--data", required=True, type=Path)
    ap.add_argument("--out", required=True, type=Path)
    ap.add_argument("--reproduce-out", type=Path, default=None, help="the --out of `avloc reproduce dense`")
    ap.add_argument("--seeds", type=int, default=3)
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.reproduce_out is not None:
        args.runs = reproduce_cells(args.reproduce_out, args.data, args.seeds, args.items)
    else:
        args.runs = [Path(x) for x in args.items]
    done = json.loads(args.out.read_text()) if args.out.exists() else {}
    cache: dict[str, Any] = {}
    for run in args.runs:
        if str(run) in done or not (run / "report.json").exists():  # finished runs only
            continue
        done[str(run)] = audit_run(run, args.data, cache)
        tmp = args.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(done, indent=1))
        os.replace(tmp, args.out)
        print(f"{run}: {len(done[str(run)]['variants'])} settings scored")


if __name__ == "__main__":
    main()
