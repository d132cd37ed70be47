"""timeline.png: per-class score strips, then the events of every track and the ground truth.

The strips show the classes the page is about: those of the events (any track) and of the ground truth;
only a clip without any event shows its highest-scoring classes instead (never one at 0 throughout). Each
strip names its class inside the plot (long names are never cut by the margin) and draws its decision
threshold as a dashed line where the detector has one. Event labels stay inside their bar (shortened with
"…", or left out when the bar is too narrow); events of one track that overlap in time get their own lanes.

All panels share one time axis placed at fixed fractions of the image width (``AXIS_LEFT`` .. ``AXIS_RIGHT``),
so report.html can put a playhead over the picture without knowing how matplotlib laid it out.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avloc.inference.prediction import VideoPrediction
from avloc.report.answer import decision_thresholds
from avloc.report.names import display_name

AXIS_LEFT, AXIS_RIGHT = 0.13, 0.98  # fractions of the image width spanned by [0, duration]
WIDTH_IN = 10.0
TOP_CLASSES = 4  # strips of a clip without events: its best-scoring classes
MAX_STRIPS = 8  # at most this many strips, however many classes the events name
EVENT_FONT = 6.5  # points
TRACK_STYLE = {"av": ("-", 2.0), "audio": (":", 1.2), "visual": ("--", 1.2)}
TRACK_NAME = {"av": "audio-visual", "audio": "audio track", "visual": "visual track"}


def class_colours(labels: list[str]) -> dict[str, tuple]:
    """One distinct colour per label, in order (tab10, then tab20's lighter half)."""
    import matplotlib

    base = list(matplotlib.colormaps["tab10"].colors) + list(matplotlib.colormaps["tab20"].colors)[1::2]
    return {lab: base[i % len(base)] for i, lab in enumerate(dict.fromkeys(labels))}


def strip_labels(pred: VideoPrediction) -> list[str]:
    """The classes drawn as strips: the event and ground-truth classes (best event first); when there are none,
    the ``TOP_CLASSES`` with the highest peak over every track (never one at 0 throughout). At most
    ``MAX_STRIPS``."""
    ev = pred.events
    order = np.argsort(-ev.score, kind="stable")
    named = list(dict.fromkeys(ev.label[order].tolist()))
    if pred.ground_truth is not None:
        named += [lab for lab in pred.ground_truth.label.tolist() if lab not in named]
    peak: dict[str, float] = {}
    for tr in pred.tracks:
        top = tr.scores.max(0) if len(tr.scores) else np.zeros(len(tr.labels))
        for lab, v in zip(tr.labels, top.tolist()):
            peak[lab] = max(peak.get(lab, 0.0), v)
    if named:
        return named[:MAX_STRIPS]
    return [lab for lab in sorted(peak, key=lambda k: -peak[k]) if peak[lab] > 1e-3][:TOP_CLASSES]


def timeline_labels(pred: VideoPrediction) -> list[str]:
    """Labels drawn, in colour order: the strips' classes, then any other event or ground-truth label."""
    labels = strip_labels(pred) + pred.events.label.tolist()
    if pred.ground_truth is not None:
        labels += pred.ground_truth.label.tolist()
    return list(dict.fromkeys(labels))


def fit_label(text: str, width_in: float, font_pt: float = EVENT_FONT) -> str:
    """``text`` as it fits in ``width_in`` inches: whole, cut with "…", or "" when under 3 characters fit."""
    fits = int(width_in * 72 / (0.6 * font_pt))  # a generous average glyph width
    if len(text) <= fits:
        return text
    return text[: fits - 1] + "…" if fits >= 4 else ""


def lanes(start: np.ndarray, end: np.ndarray) -> tuple[np.ndarray, int]:
    """A lane per interval so that intervals in one lane do not overlap (greedy, by start); and the count."""
    lane = np.zeros(len(start), dtype=int)
    ends: list[float] = []
    for i in np.argsort(start, kind="stable").tolist():  # a drawing's few events, not a hot path
        free = next((k for k, e in enumerate(ends) if e <= start[i] + 1e-9), None)
        if free is None:
            free = len(ends)
            ends.append(float(end[i]))
        else:
            ends[free] = float(end[i])
        lane[i] = free
    return lane, max(1, len(ends))


def timeline_figure(pred: VideoPrediction):  # noqa: ANN201  (matplotlib Figure)
    """The picture as a matplotlib Figure (``draw_timeline`` saves it)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    top = strip_labels(pred)
    colours = class_colours(timeline_labels(pred))
    thresholds = decision_thresholds(pred)
    event_rows = [t for t in ("av", "audio", "visual") if any(t == tr.name for tr in pred.tracks)] or ["av"]
    if pred.ground_truth is not None:
        event_rows.append("ground truth")
    rows = {r: pred.ground_truth if r == "ground truth" else pred.events.of_track(r) for r in event_rows}
    packed = {r: lanes(ev.start, ev.end) for r, ev in rows.items()}
    strip_h, lane_h = 0.55, 0.2  # inches
    heights = [max(0.28, lane_h * packed[r][1]) for r in event_rows]
    height = 0.5 + strip_h * len(top) + sum(heights) + 0.67
    fig = plt.figure(figsize=(WIDTH_IN, height), dpi=100)
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
        levels = sorted({thresholds[t][lab] for t in thresholds if lab in thresholds[t]})
        for i, thr in enumerate(levels):  # the lowest level's label under its line, the others above theirs
            ax.axhline(thr, color="0.35", linestyle=(0, (4, 3)), linewidth=0.8)
            ax.text(1.0, thr, f"threshold {thr:.2f} ", transform=ax.get_yaxis_transform(), ha="right",
                    va="top" if i == 0 and len(levels) > 1 else "bottom", fontsize=6, color="0.35")
        ax.set_xlim(0, dur)
        ax.set_ylim(0, 1)
        ax.set_yticks([0, 1])
        ax.tick_params(labelsize=7, labelbottom=False)
        ax.text(0.004, 0.94, display_name(lab), transform=ax.transAxes, ha="left", va="top", fontsize=8.5,
                color=colours[lab], fontweight="bold", bbox={"facecolor": "white", "alpha": 0.75, "pad": 1,
                                                              "edgecolor": "none"})
        ax.grid(axis="x", alpha=0.3)
    if len(pred.tracks) > 1 and top:
        fig.axes[0].legend(loc="lower right", bbox_to_anchor=(1, 0.95), fontsize=7, ncol=3, frameon=False)
    y -= (sum(heights) + 0.12) / height
    ax = fig.add_axes((AXIS_LEFT, y, AXIS_RIGHT - AXIS_LEFT, sum(heights) / height))
    inch_per_s = WIDTH_IN * (AXIS_RIGHT - AXIS_LEFT) / dur
    base = np.cumsum([0.0, *heights[::-1]])[:-1][::-1]  # (rows,) bottom of each row, first row on top
    for r, row in enumerate(event_rows):
        ev, (lane, n) = rows[row], packed[row]
        lane_in = heights[r] / n
        for s, e, lab, k in zip(ev.start.tolist(), ev.end.tolist(), ev.label.tolist(), lane.tolist()):
            y0 = base[r] + (n - 1 - k) * lane_in
            ax.broken_barh([(s, max(e - s, 0.05))], (y0 + 0.1 * lane_in, 0.8 * lane_in), color=colours[lab],
                           edgecolor="black" if row == "ground truth" else "none", linewidth=0.6)
            text = fit_label(display_name(lab), (e - s) * inch_per_s - 0.04) if lane_in >= 0.13 else ""
            if text:
                ax.text(s + 0.02 / inch_per_s, y0 + lane_in / 2, text, fontsize=EVENT_FONT, va="center")
    ax.set_yticks(base + np.asarray(heights) / 2, [TRACK_NAME.get(r, r) for r in event_rows], fontsize=8)
    ax.set_ylim(0, sum(heights))
    ax.set_xlim(0, dur)
    ax.set_xlabel("time (s)", fontsize=9)
    ax.tick_params(axis="x", labelsize=8)
    ax.grid(axis="x", alpha=0.3)
    return fig


def draw_timeline(pred: VideoPrediction, path: str | Path) -> Path:
    """Write the picture to ``path`` (PNG) and return it."""
    import matplotlib.pyplot as plt

    fig = timeline_figure(pred)
    path = Path(path)
    fig.savefig(path, dpi=100)
    plt.close(fig)
    return path
