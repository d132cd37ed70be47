"""The short table ``avloc predict`` prints: one line per event of the main track, then the other tracks' counts."""

from __future__ import annotations

from avloc.inference.prediction import VideoPrediction


def events_table(preds: list[VideoPrediction], max_rows: int = 20) -> str:
    lines = [f"{'video':<24} {'start':>7} {'end':>7}  {'label':<28} {'score':>6}"]
    for p in preds:
        ev = p.events.of_track("av")
        for s, e, lab, sc in list(zip(ev.start.tolist(), ev.end.tolist(), ev.label.tolist(), ev.score.tolist()))[:max_rows]:
            lines.append(f"{p.video_id[:24]:<24} {s:7.2f} {e:7.2f}  {lab[:28]:<28} {sc:6.3f}")
        if len(ev) > max_rows:
            lines.append(f"{p.video_id[:24]:<24} ... {len(ev) - max_rows} more events in events.tsv")
        if not len(ev):
            lines.append(f"{p.video_id[:24]:<24} {'-':>7} {'-':>7}  {'(no event)':<28}")
        others = p.events.take(p.events.track != "av")
        if len(others):
            counts = ", ".join(f"{t}: {int((others.track == t).sum())}" for t in dict.fromkeys(others.track.tolist()))
            lines.append(f"{'':<24} single-modality tracks: {counts}")
        metrics = ", ".join(f"{k} {v:.3f}" for k, v in p.metrics.items())
        if metrics:
            lines.append(f"{'':<24} {metrics}")
        lines.extend(f"{'':<24} note: {n}" for n in p.notes)
    return "\n".join(lines)
