"""The run-level files of a predict folder: ``events.json`` over every video and ``index.html`` linking them.

Both list every video folder in ``OUT``, not only the videos of the latest command: a second ``avloc predict
... --out OUT`` adds its videos to the folder (a video predicted again replaces its own folder), which is what
one report folder per project is for; nothing on disk is dropped from the index. Each video folder's own
``events.json`` holds what its index row needs (events, duration, method, score), so the folders written
earlier are read back from it; a folder whose ``events.json`` cannot be read is listed as such, not skipped.
"""

from __future__ import annotations

import html
import json
import logging
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from avloc.inference.prediction import VideoPrediction
from avloc.report.event_files import extra_entry, results_entries
from avloc.report.names import display_name

log = logging.getLogger(__name__)


@dataclass
class VideoEntry:
    """One video folder of OUT: its main-track results (ActivityNet entries) and the ``avloc`` extras."""

    video_id: str
    results: list[dict[str, Any]] = field(default_factory=list)
    extra: dict[str, Any] = field(default_factory=dict)
    problem: str = ""  # why its events.json could not be read ("" when it was)
    new: bool = False  # written by this command


def _from_folder(folder: Path) -> VideoEntry:
    vid = folder.name
    try:
        doc = json.loads((folder / "events.json").read_text(encoding="utf-8"))
        return VideoEntry(vid, list(doc["results"][vid]), dict(doc.get("avloc", {}).get(vid, {})))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        log.warning("%s: unreadable (%s); listed in the index without its events", folder / "events.json", exc)
        return VideoEntry(vid, problem=f"unreadable events.json ({type(exc).__name__})")


def collect(preds: list[VideoPrediction], out: Path) -> list[VideoEntry]:
    """Every video folder in ``out`` (one with a ``report.html``), the videos of ``preds`` from memory."""
    mine = {p.video_id: VideoEntry(p.video_id, results_entries(p), extra_entry(p), new=True) for p in preds}
    found = {d.name: _from_folder(d) for d in sorted(out.iterdir())
             if d.is_dir() and not d.name.startswith(".") and d.name not in mine and (d / "report.html").is_file()}
    return sorted([*found.values(), *mine.values()], key=lambda e: e.video_id)


def events_json(entries: list[VideoEntry]) -> str:
    """The ActivityNet results file over every readable video (``avloc detect-eval`` scores it)."""
    ok = [e for e in entries if not e.problem]
    doc = {"version": "VERSION 1.3", "results": {e.video_id: e.results for e in ok},
           "external_data": {"used": True, "details": "pretrained backbones; see the avloc key"},
           "avloc": {e.video_id: e.extra for e in ok}}
    return json.dumps(doc, indent=1)


def index_html(entries: list[VideoEntry], style: str) -> str:
    """A table of every video folder, each linking to its report, with the method that made it."""
    rows = []
    for e in entries:
        labels = ", ".join(dict.fromkeys(display_name(r["label"]) for r in e.results)) or "none"
        metrics = e.extra.get("metrics") or {}
        score = ", ".join(f"{k} {v:.3f}" for k, v in metrics.items()) or "-"
        dur = e.extra.get("duration")
        vid = html.escape(e.video_id)
        rows.append(f'<tr><td><a href="{vid}/report.html">{vid}</a></td>'
                    f"<td>{html.escape(str(e.extra.get('method', '?')))}</td>"
                    f"<td>{'-' if dur is None else f'{dur:.1f}'}</td><td>{len(e.results)}</td>"
                    f"<td>{html.escape(e.problem or labels)}</td><td>{html.escape(score)}</td>"
                    f"<td>{'this run' if e.new else 'earlier'}</td></tr>")
    new = sum(e.new for e in entries)
    return f"""<!DOCTYPE html>
<html lang="en"><head><meta charset="utf-8"><title>avloc predict</title><link rel="icon" href="data:,">
<style>{style}</style></head><body><h2>avloc predict: {len(entries)} videos</h2>
<p class="muted">{new} from the latest command, {len(entries) - new} from earlier ones into this folder.
Method: <b>zero-shot</b> is the training-free detector; <b>run:NAME</b> the model trained in run folder NAME.</p>
<table><tr><th>video</th><th>method</th><th>duration (s)</th><th>audio-visual events</th><th>classes</th>
<th>score</th><th>written by</th></tr>{''.join(rows)}</table>
</body></html>
"""
