"""``avloc demo``: the whole pipeline on built-in synthetic AVE data, in a few minutes on 2 CPU cores.

Synthesises a small AVE-format dataset (the official file layout), trains PSP and VSCG (fully supervised)
with the shipped configs shortened to a few epochs, prints a table and writes a PNG timeline of test videos.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np

from avloc.config import load_config
from avloc.engine.build import load_data
from avloc.engine.loop import fit
from avloc.tools.paths import config_path

DEMO_BATCH = 32  # a small set: smaller batches give enough steps per epoch
DEMO_MODELS = (("PSP", "ave/psp_fully.yaml"), ("VSCG", "ave/vscg_fully.yaml"))


DEMO_OUT = Path("runs/demo")
DEMO_THREADS = 2  # the README's demo table was made with this many torch threads


def run_demo(out: str | Path = DEMO_OUT, videos: int = 600, epochs: int = 15, seed: int = 0,
             threads: int = DEMO_THREADS) -> dict:
    """Run the demo; returns {model: report}. Everything stays in ``out`` (data/, runs/psp, runs/vscg,
    timeline.png); a second demo replaces the first one's runs there. ``threads`` is fixed (not "all cores")
    because the float sums, hence the table's accuracies, depend on the thread count; each epoch prints a line
    so that a slow, busy machine is visibly working."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        return _demo(Path(out), videos, epochs, seed, threads)
    finally:
        torch.set_num_threads(before)  # a Python caller's own setting comes back


def _demo(out: Path, videos: int, epochs: int, seed: int, threads: int) -> dict:
    from avloc.data.synth_ave import write_synthetic_ave

    data_dir = out / "data"
    t0 = time.perf_counter()
    write_synthetic_ave(data_dir, videos=videos, seed=seed, dtype="float32")
    print(f"synthesised {videos} AVE-format videos in {time.perf_counter() - t0:.1f}s -> {data_dir}; "
          f"training with {threads} torch threads", flush=True)
    reports, preds = {}, {}
    data = None
    for label, cfg_name in DEMO_MODELS:
        # Short schedule: decay the LR once two thirds of the way through.
        cfg = load_config(config_path(cfg_name), [f"train.epochs={epochs}", f"train.seed={seed}",
                                                  f"train.threads={threads}", "train.progress=false",
                                                  f"train.batch_size={DEMO_BATCH}",
                                                  f"train.lr_decay_epochs=[{max(1, 2 * epochs // 3)}]"])
        if data is None:
            data = load_data(cfg, data_dir)
        print(f"training {label} for {epochs} epochs ...", flush=True)
        reports[label] = fit(cfg, data_dir, out / "runs" / label.lower(), data=data,
                             log=lambda line, label=label: _progress(label, epochs, line), overwrite=True)
        preds[label] = json.loads((out / "runs" / label.lower() / "predictions_test.json").read_text())
    print(_table(reports))
    png = _timeline(preds, out / "timeline.png")
    print(f"timeline of test videos (truth vs predictions): {png}")
    print(f"demo outputs in {out}: data/ (synthetic AVE files), runs/psp and runs/vscg (run folders), "
          "timeline.png")
    return reports


def _progress(label: str, epochs: int, line: str) -> None:
    """The loop's epoch lines (``epoch   3 | loss ...``) as ``PSP epoch 3/15 | loss ...``; other lines dropped."""
    if line.startswith("epoch"):
        head, _, rest = line.partition("|")
        print(f"  {label} epoch {head.split()[1]}/{epochs} |{rest}", flush=True)


def _table(reports: dict[str, dict]) -> str:
    lines = ["", "| model | test acc (val-selected) | best test acc | params | s/epoch |",
             "|---|---|---|---|---|"]
    for name, r in reports.items():
        lines.append(f"| {name} | {100 * r['test_acc']:.2f} | {100 * r['best_test_acc']:.2f} | "
                     f"{r['params']:,} | {r['seconds_per_epoch']:.2f} |")
    return "\n".join(lines) + "\n"


def _timeline(preds: dict[str, dict], path: Path, n: int = 4) -> Path:
    from avloc.tools.viz import plot_ave_timelines

    first = next(iter(preds.values()))
    vids = list(first["videos"])[:n]
    truth = np.array([first["videos"][v]["true"] for v in vids])
    model_preds = {m: np.array([p["videos"][v]["pred"] for v in vids]) for m, p in preds.items()}
    classes = first["classes"] or [str(i) for i in range(29)]
    return plot_ave_timelines(vids, truth, model_preds, classes, path)
