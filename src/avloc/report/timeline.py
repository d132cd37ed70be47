"""timeline.png: per-class score strips of the top classes, then the events of every track and the ground truth.

All panels share one time axis placed at fixed fractions of the image width (``AXIS_LEFT`` .. ``AXIS_RIGHT``),
so report.html can put a playhead over the picture without knowing how matplotlib laid it out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avloc.inference.prediction import VideoPrediction

AXIS_LEFT, AXIS_RIGHT = 0.13, 0.98  # fractions of the image width spanned by [0, duration]
TOP_CLASSES = 4
TRACK_STYLE = {"av": ("-", 2.0), "audio": (":", 1.2), "visual": ("--", 1.2)}
TRACK_NAME = {"av": "audio-visual", "audio": "audio track", "visual": "visual track"}


def class_colours(labels: list[str]) -> dict[str, tuple]:
    """One distinct colour per label, in order (tab10, then tab20's lighter half)."""
    import matplotlib

    base = list(matplotlib.colormaps["tab10"].colors) + list(matplotlib.colormaps["tab20"].colors)[1::2]
    return {lab: base[i % len(base)] for i, lab in enumerate(dict.fromkeys(labels))}


def timeline_labels(pred: VideoPrediction) -> list[str]:
    """Labels drawn, in colour order: the main track's top classes, then any other event or GT label."""
    main = pred.tracks[0]
    labels = [main.labels[i] for i in main.top(TOP_CLASSES)]
    labels += pred.events.label.tolist()
    if pred.ground_truth is not None:
        labels += pred.ground_truth.label.tolist()
    return list(dict.fromkeys(labels))


def draw_timeline(pred: VideoPrediction, path: str | Path) -> Path:
    """Write the picture to ``path`` (PNG) and return it."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    main = pred.tracks[0]
    top = [main.labels[i] for i in main.top(TOP_CLASSES)]
    colours = class_colours(timeline_labels(pred))
    event_rows = [t for t in ("av", "audio", "visual") if any(t == tr.name for tr in pred.tracks)] or ["av"]
    if pred.ground_truth is not None:
        event_rows.append("ground truth")
    strip_h, row_h = 0.55, 0.28  # inches
    height = 0.5 + strip_h * len(top) + row_h * len(event_rows) + 0.67
    fig = plt.figure(figsize=(10, height), dpi=100)
    y = 1 - 0.25 / height
    dur = max(pred.duration, 1e-3)
    for lab in top:
        y -= strip_h / height
        ax = fig.add_axes((AXIS_LEFT, y, AXIS_RIGHT - AXIS_LEFT, 0.8 * strip_h / height))
        for tr in pred.tracks:
            if lab in tr.labels:
                sc = tr.scores[:, tr.labels.index(lab)]
                edges = np.minimum(np.arange(len(sc) + 1) * tr.step_s, dur)
                style, width = TRACK_STYLE.get(tr.name, ("-", 1.5))
                ax.stairs(sc, edges, color=colours[lab], linestyle=style, linewidth=width,
                          label=TRACK_NAME.get(tr.name, tr.name))
        ax.set_xlim(0, dur)
        ax.set_ylim(0, 1)
        ax.set_yticks([0, 1])
        ax.tick_params(labelsize=7, labelbottom=False)
        ax.set_ylabel(lab, rotation=0, ha="right", va="center", fontsize=9, color=colours[lab])
        ax.grid(axis="x", alpha=0.3)
    if len(pred.tracks) > 1 and top:
        fig.axes[0].legend(loc="lower right", bbox_to_anchor=(1, 0.95), fontsize=7, ncol=3, frameon=False)
    y -= (row_h * len(event_rows) + 0.12) / height
    ax = fig.add_axes((AXIS_LEFT, y, AXIS_RIGHT - AXIS_LEFT, row_h * len(event_rows) / height))
    for r, row in enumerate(event_rows):
        ev = pred.ground_truth if row == "ground truth" else pred.events.of_track(row)
        ypos = len(event_rows) - 1 - r
        for s, e, lab in zip(ev.start.tolist(), ev.end.tolist(), ev.label.tolist()):
            ax.broken_barh([(s, max(e - s, 0.05))], (ypos + 0.12, 0.76), color=colours[lab],
                           edgecolor="black" if row == "ground truth" else "none", linewidth=0.6)
            ax.text(s + 0.05 * dur / 10, ypos + 0.5, lab, fontsize=6.5, va="center", clip_on=True)
    ax.set_yticks(np.arange(len(event_rows)) + 0.5, [TRACK_NAME.get(r, r) for r in reversed(event_rows)], fontsize=8)
    ax.set_ylim(0, len(event_rows))
    ax.set_xlim(0, dur)
    ax.set_xlabel("time (s)", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", alpha=0.3)
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
