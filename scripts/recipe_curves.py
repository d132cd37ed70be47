"""Learning curves of recipe variants: val and test accuracy per epoch, mean +- std over seeds.

Reads the run folders ``RUNS/VARIANT/sSEED/metrics.jsonl`` that ``scripts/recipe_runs.py`` writes, prints
one markdown table per model (accuracy in % per epoch, ``mean +- std (n seeds)``) and draws one PNG:
a row per model, val and test side by side, one line per variant with its +-std band.

    python scripts/recipe_curves.py --runs runs/recipe --out docs/training_recipe.png \\
        --model PSP psp_shipped psp_carried --model VSCG vscg_shipped "vscg_psp_carried:official objective"

A variant may carry its legend label after a colon (``VARIANT:LABEL``).
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def load_curves(variant_dir: Path, split: str) -> dict[int, np.ndarray]:
    """{seed: accuracy (%) per epoch 1..E} of one variant and split (seeds with no rows are left out)."""
    curves: dict[int, np.ndarray] = {}
    for run in sorted(variant_dir.glob("s*")):
        path = run / "metrics.jsonl"
        if not path.exists():
            continue
        rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
        acc = [100.0 * r[f"{split}_acc"] for r in rows if f"{split}_acc" in r]
        if acc:
            curves[int(run.name[1:])] = np.array(acc)
    return curves


def summary(curves: dict[int, np.ndarray]) -> tuple[np.ndarray, np.ndarray, int]:
    """Mean and sample std (ddof 1; 0 for one seed) per epoch over the seeds, on the epochs every seed reached."""
    n_epochs = min(len(c) for c in curves.values())
    stack = np.stack([c[:n_epochs] for c in curves.values()])  # (seeds, epochs)
    return stack.mean(0), stack.std(0, ddof=1) if len(curves) > 1 else np.zeros(n_epochs), len(curves)


def split_label(spec: str) -> tuple[str, str]:
    """``VARIANT:LABEL`` -> (VARIANT, LABEL); a bare ``VARIANT`` is its own label."""
    name, _, label = spec.partition(":")
    return name, label or name


def val_selected(runs: Path, variant: str) -> np.ndarray:
    """Test accuracy (%) of each seed's val-selected epoch (the first epoch with the best val accuracy), over
    the epochs every seed of the variant reached, as the run's own selection would pick it."""
    val, test = load_curves(runs / variant, "val"), load_curves(runs / variant, "test")
    n_epochs = min(len(c) for c in val.values())
    return np.array([test[s][int(np.argmax(val[s][:n_epochs]))] for s in sorted(val)])


def table(model: str, runs: Path, variants: list[str], epochs: list[int] | None = None) -> str:
    """Markdown tables of val and test accuracy per epoch (all epochs, or the ``epochs`` asked for), and the
    test accuracy of the val-selected epoch."""
    lines = []
    for split in ("val", "test"):
        curves = {v: (label, load_curves(runs / v, split)) for v, label in map(split_label, variants)}
        curves = {v: lc for v, lc in curves.items() if lc[1]}
        if not curves:
            continue
        width = max(len(summary(c)[0]) for _, c in curves.values())
        cols = [e - 1 for e in epochs if e <= width] if epochs else list(range(width))
        extra = split == "test"
        lines += [f"{model}, {split} accuracy (%) per epoch", "",
                  "| variant | seeds | " + " | ".join(f"ep {e + 1}" for e in cols)
                  + (" | val-selected |" if extra else " |"),
                  "|---|---|" + "---|" * (len(cols) + extra)]
        for v, (label, c) in curves.items():
            mean, std, n = summary(c)
            cells = [(f"{mean[e]:.1f} ± {std[e]:.1f}" if n > 1 else f"{mean[e]:.1f}") if e < len(mean) else "–"
                     for e in cols]
            if extra:
                sel = val_selected(runs, v)
                cells.append(f"{sel.mean():.1f} ± {sel.std(ddof=1):.1f}" if n > 1 else f"{sel.mean():.1f}")
            lines.append(f"| {label} | {', '.join(str(s) for s in sorted(c))} | " + " | ".join(cells) + " |")
        lines.append("")
    return "\n".join(lines)


def plot(models: list[list[str]], runs: Path, out: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.ticker import MaxNLocator

    fig, axes = plt.subplots(len(models), 2, figsize=(10, 3.6 * len(models)), squeeze=False)
    for row, (model, *variants) in enumerate(models):
        for col, split in enumerate(("val", "test")):
            ax = axes[row][col]
            for v, label in map(split_label, variants):
                curves = load_curves(runs / v, split)
                if not curves:
                    continue
                mean, std, n = summary(curves)
                epochs = np.arange(1, len(mean) + 1)
                line, = ax.plot(epochs, mean, marker="o", label=f"{label} (n={n})")
                ax.fill_between(epochs, mean - std, mean + std, color=line.get_color(), alpha=0.2)
            ax.set_title(f"{model} fully: {split} accuracy")
            ax.set_xlabel("epoch")
            ax.xaxis.set_major_locator(MaxNLocator(integer=True))
            ax.set_ylabel("segment accuracy (%)")
            ax.grid(alpha=0.3)
            ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", required=True, type=Path, help="folder of VARIANT/sSEED run folders")
    ap.add_argument("--out", required=True, type=Path, help="PNG to write")
    ap.add_argument("--model", nargs="+", action="append", required=True, metavar="TITLE VARIANT",
                    help="a figure row: its title and the variants drawn in it")
    ap.add_argument("--epochs", type=int, nargs="+", help="table columns: these epochs only (default: all)")
    args = ap.parse_args()
    for model, *variants in args.model:
        print(table(model, args.runs, variants, args.epochs))
    plot(args.model, args.runs, args.out)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
