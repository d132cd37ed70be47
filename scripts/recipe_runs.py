"""Train several recipe variants on one AVE feature folder, loading the data once.

Each variant is a shipped config plus ``key=value`` overrides; every (variant, seed) pair becomes the run
folder ``OUT/VARIANT/sSEED`` with its per-epoch ``metrics.jsonl`` (val and test accuracy), which
``scripts/recipe_curves.py`` plots. Runs go one after another in this process (one training process at a
time on a shared machine); a finished run folder is skipped, so the script can be re-run after a stop;
``--resume`` continues every run that has a checkpoint up to ``--epochs``.

    PYTHONPATH=src python scripts/recipe_runs.py --data DIR --out runs/recipe --epochs 5 --seeds 123 1 2 \\
        --variant psp_shipped ave/psp_fully.yaml \\
        --variant psp_carried ave/psp_fully.yaml loss.avps_targets=carried
"""

from __future__ import annotations

import argparse
from pathlib import Path

from avloc.config import load_config
from avloc.engine.build import load_data
from avloc.engine.loop import fit
from avloc.tools.paths import config_path


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", required=True, help="AVE feature folder (official layout)")
    ap.add_argument("--out", required=True, help="folder of the run folders")
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--seeds", type=int, nargs="+", default=[123])
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--storage", default="float16", help="data.storage of every run")
    ap.add_argument("--resume", action="store_true", help="continue runs that have a last.pt up to --epochs")
    ap.add_argument("--variant", nargs="+", action="append", required=True, metavar="NAME CONFIG [K=V ...]",
                    help="a variant: its name, a config (file or shipped name) and overrides")
    args = ap.parse_args()
    common = [f"train.epochs={args.epochs}", f"train.threads={args.threads}", "train.progress=false",
              f"data.storage={args.storage}"]
    data = None
    for seed in args.seeds:  # seed-major: every variant has a first seed before any has a second
        for name, config, *overrides in args.variant:
            run_dir = Path(args.out) / name / f"s{seed}"
            resume = args.resume and (run_dir / "last.pt").exists()
            if not resume and (run_dir / "report.json").exists():
                print(f"{run_dir}: done, skipped")
                continue
            cfg = load_config(config_path(config), [*overrides, *common, f"train.seed={seed}"])
            if data is None:
                data = load_data(cfg, args.data)
            print(f"== {name} seed {seed}: {' '.join(overrides) or '(as shipped)'}", flush=True)
            fit(cfg, args.data, run_dir, data=data, resume=resume, overwrite=not resume,
                log=lambda line: print(f"   {line}", flush=True))


if __name__ == "__main__":
    main()
