"""report.html: one page per video that works opened straight from disk (no network, no server).

The video plays at the top (``video.mp4`` beside the page), the timeline picture is embedded as a data URI with a
playhead that follows playback, and every event (and ground-truth segment) is a button that seeks the video to
its start. ``index.html`` (:mod:`avloc.report.index`) links the pages of every video in the folder.
"""

from __future__ import annotations

import base64
import html
import json
from pathlib import Path

from avloc.inference.prediction import VideoPrediction
from avloc.report.answer import answer, score_note
from avloc.report.names import display_name
from avloc.report.timeline import AXIS_LEFT, AXIS_RIGHT, TRACK_NAME, class_colours, timeline_labels

STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.2em auto; max-width: 1000px; color: #222; }
video { width: 100%; max-height: 60vh; background: #000; }
#timeline { position: relative; margin-top: .6em; cursor: pointer; }
#timeline img { width: 100%; display: block; }
#playhead { position: absolute; top: 0; bottom: 0; width: 2px; background: #d00; pointer-events: none; }
.events { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: .35em; }
.events button { border: 1px solid #888; border-radius: 4px; padding: .2em .5em; cursor: pointer; background: #fff; }
.events button .swatch { display: inline-block; width: .8em; height: .8em; margin-right: .3em; vertical-align: -1px; }
.gt button { border-style: dashed; }
table { border-collapse: collapse; } td, th { border: 1px solid #ccc; padding: .2em .6em; text-align: left; }
.note { color: #a40; } .muted { color: #666; font-size: .9em; }
.answer { font-size: 1.25em; font-weight: 600; margin: .3em 0; }
"""

_SCRIPT = """
const video = document.getElementById('video');
const head = document.getElementById('playhead');
const meta = JSON.parse(document.getElementById('meta').textContent);
function place() {
  const f = Math.min(Math.max(video.currentTime / meta.duration, 0), 1);
  head.style.left = (100 * (meta.left + f * (meta.right - meta.left))) + '%';
}
function follow() { place(); if (!video.paused && !video.ended) requestAnimationFrame(follow); }
video.addEventListener('timeupdate', place);
video.addEventListener('seeked', place);
video.addEventListener('play', () => requestAnimationFrame(follow));
document.querySelectorAll('[data-start]').forEach(b => b.addEventListener('click', () => {
  video.currentTime = parseFloat(b.dataset.start);
  place();
}));
document.getElementById('timeline').addEventListener('click', ev => {
  const box = ev.currentTarget.getBoundingClientRect();
  const f = ((ev.clientX - box.left) / box.width - meta.left) / (meta.right - meta.left);
  if (f >= 0 && f <= 1) { video.currentTime = f * meta.duration; place(); }
});
place();
"""


def _rgb(colour: tuple) -> str:
    return "#" + "".join(f"{int(round(255 * c)):02x}" for c in colour[:3])


def _event_buttons(rows: list[tuple[str, float, float, str, str]], colours: dict, css: str) -> str:
    """rows: (track, start, end, label, text) -> a list of buttons that seek to ``start``."""
    items = []
    for track, s, e, lab, text in rows:
        items.append(f'<li><button data-start="{s:.3f}" title="{html.escape(track)}">'
                     f'<span class="swatch" style="background:{_rgb(colours.get(lab, (0.5, 0.5, 0.5)))}"></span>'
                     f'{html.escape(text)} <span class="muted">{s:.1f}-{e:.1f} s</span></button></li>')
    return f'<ul class="events {css}">' + "".join(items) + "</ul>" if items else '<p class="muted">none</p>'


def _track_section(pred: VideoPrediction, track: str, colours: dict) -> str:
    ev = pred.events.of_track(track)
    rows = [(track, s, e, lab, f"{display_name(lab)} {sc:.2f}") for s, e, lab, sc in
            zip(ev.start.tolist(), ev.end.tolist(), ev.label.tolist(), ev.score.tolist())]
    return (f"<h3>{html.escape(TRACK_NAME.get(track, track))} events</h3>"
            + _event_buttons(rows, colours, f"pred track-{track}"))


def report_html(pred: VideoPrediction, timeline_png: Path, video_name: str) -> str:
    """The page for one video; ``timeline_png`` is embedded, ``video_name`` is a path relative to the page.
    The answer comes first (the audio-visual events, or why there are none), then the video and timeline,
    then the single-modality tracks, the ground truth and the score."""
    image = base64.b64encode(Path(timeline_png).read_bytes()).decode()
    colours = class_colours(timeline_labels(pred))
    meta = {"duration": pred.duration, "left": AXIS_LEFT, "right": AXIS_RIGHT}
    others = [t for t in ("audio", "visual") if any(tr.name == t for tr in pred.tracks) or t in pred.events.track]
    sections = [_track_section(pred, t, colours) for t in others]
    if pred.ground_truth is not None:
        gt = pred.ground_truth
        rows = [("ground truth", s, e, lab, display_name(lab))
                for s, e, lab in zip(gt.start.tolist(), gt.end.tolist(), gt.label.tolist())]
        sections.append("<h3>ground truth</h3>" + _event_buttons(rows, colours, "gt"))
    if pred.metrics:
        cells = "".join(f"<tr><th>{html.escape(k)}</th><td>{v:.4f}</td></tr>" for k, v in pred.metrics.items())
        sections.append(f"<h3>score against the ground truth</h3><table id=\"metrics\">{cells}</table>")
    notes = "".join(f'<p class="note">{html.escape(n)}</p>' for n in pred.notes)
    title = html.escape(pred.video_id)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>{title}: avloc predict</title>
<link rel="icon" href="data:,">
<style>{STYLE}</style></head>
<body>
<h2>{title} <span class="muted">{html.escape(pred.method)}, {pred.duration:.1f} s</span></h2>
<p class="answer" id="answer">{html.escape(answer(pred))}</p>
{_track_section(pred, "av", colours)}
<p class="muted" id="score-note">{html.escape(score_note(pred))}</p>
{notes}
<video id="video" src="{html.escape(video_name)}" controls preload="auto"></video>
<div id="timeline"><img alt="timeline of {title}" src="data:image/png;base64,{image}"><div id="playhead"></div></div>
{''.join(sections)}
<script type="application/json" id="meta">{json.dumps(meta)}</script>
<script>{_SCRIPT}</script>
</body></html>
"""
