"""Timeline pictures: ground truth vs prediction per one-second segment, one strip pair per video."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np


def plot_ave_timelines(
    videos: Sequence[str],
    truth: np.ndarray,
    preds: dict[str, np.ndarray],
    class_names: Sequence[str],
    path: str | Path,
    background: int = 28,
) -> Path:
    """Draw, for each video, a ground-truth strip and one strip per model; background segments are grey.

    Args:
        truth: (V, T) true class per segment; preds: model name -> (V, T) predicted classes.
    """
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    from matplotlib.patches import Patch

    truth = np.asarray(truth)
    n_vid, n_seg = truth.shape
    strips = ["truth", *preds]
    cmap = plt.get_cmap("tab20", 28)
    fig, axes = plt.subplots(n_vid, 1, figsize=(9, 0.45 * len(strips) * n_vid + 0.8), squeeze=False)
    used: set[int] = set()
    for v, ax in enumerate(axes[:, 0]):
        for s, name in enumerate(strips):
            row = truth[v] if name == "truth" else np.asarray(preds[name])[v]
            for t, c in enumerate(row):
                c = int(c)
                color = (0.85, 0.85, 0.85) if c == background else cmap(c % 28)
                ax.broken_barh([(t, 1)], (len(strips) - 1 - s, 0.9), facecolors=color, edgecolor="white")
                if c != background:
                    used.add(c)
                if name != "truth" and c != int(truth[v, t]):  # mark every wrong segment, background too
                    ax.text(t + 0.5, len(strips) - 1 - s + 0.45, "x", ha="center", va="center", fontsize=7)
        ax.set_xlim(0, n_seg)
        ax.set_ylim(0, len(strips))
        ax.set_yticks([len(strips) - 1 - s + 0.45 for s in range(len(strips))])
        ax.set_yticklabels(strips, fontsize=7)
        ax.set_xticks(range(n_seg + 1))
        ax.tick_params(axis="x", labelsize=6)
        ax.set_title(videos[v], fontsize=8, loc="left")
    handles = [Patch(color=(0.85, 0.85, 0.85), label="background")]
    handles += [Patch(color=cmap(c % 28), label=class_names[c]) for c in sorted(used)]
    fig.legend(handles=handles, loc="lower center", ncol=3, fontsize=7, frameon=False)
    axes[-1, 0].set_xlabel("second  (x = wrong prediction)", fontsize=7)
    fig.tight_layout(rect=(0, 0.08, 1, 1))
    path = Path(path)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
