"""The short table ``avloc predict`` prints: one line per event of the main track, then the other tracks' counts."""

from __future__ import annotations

from avloc.inference.prediction import VideoPrediction
from avloc.report.answer import answer
from avloc.report.names import display_name


def events_table(preds: list[VideoPrediction], max_rows: int = 20) -> str:
    """Whole ids and labels: the columns are as wide as the longest (a cut id names no file)."""
    w = max([5, *(len(p.video_id) for p in preds)])
    lw = max([10, *(len(display_name(lab)) for p in preds for lab in p.events.of_track("av").label.tolist())])
    lines = [f"{'video':<{w}} {'start':>7} {'end':>7}  {'label':<{lw}} {'score':>6}"]
    for p in preds:
        ev = p.events.of_track("av")
        for s, e, lab, sc in list(zip(ev.start.tolist(), ev.end.tolist(), ev.label.tolist(), ev.score.tolist()))[:max_rows]:
            lines.append(f"{p.video_id:<{w}} {s:7.2f} {e:7.2f}  {display_name(lab):<{lw}} {sc:6.3f}")
        if len(ev) > max_rows:
            lines.append(f"{p.video_id:<{w}} ... {len(ev) - max_rows} more events in events.tsv")
        if not len(ev):
            lines.append(f"{p.video_id:<{w}} {'-':>7} {'-':>7}  {answer(p)}")
        others = p.events.take(p.events.track != "av")
        if len(others):
            counts = ", ".join(f"{t}: {int((others.track == t).sum())}" for t in dict.fromkeys(others.track.tolist()))
            lines.append(f"{'':<{w}} single-modality tracks: {counts}")
        metrics = ", ".join(f"{k} {v:.3f}" for k, v in p.metrics.items())
        if metrics:
            lines.append(f"{'':<{w}} {metrics}")
        lines.extend(f"{'':<{w}} note: {n}" for n in p.notes)
    return "\n".join(lines)
