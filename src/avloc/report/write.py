"""One folder per video, written whole or not at all, plus a run-level events.json and index.html."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

from avloc.formats.atomic import write_text_atomic
from avloc.inference.prediction import VideoPrediction
from avloc.out_folder import check_out_folder
from avloc.report import event_files, index
from avloc.report.html import STYLE, report_html
from avloc.report.playable import playable_copy
from avloc.report.timeline import draw_timeline

VIDEO_FILES = ("events.json", "events.srt", "events.vtt", "events.tsv", "labels.txt", "timeline.png", "report.html")


def write_video_report(pred: VideoPrediction, out: Path) -> Path:
    """``out/<video id>/`` with every file of ``VIDEO_FILES`` and the playable video; replaces an old one."""
    check_out_folder(out).mkdir(parents=True, exist_ok=True)
    final = out / pred.video_id
    tmp = out / f".{pred.video_id}.tmp{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    try:
        (tmp / "events.json").write_text(event_files.events_json([pred]), encoding="utf-8")
        (tmp / "events.srt").write_text(event_files.srt(pred), encoding="utf-8")
        (tmp / "events.vtt").write_text(event_files.vtt(pred), encoding="utf-8")
        (tmp / "events.tsv").write_text(event_files.tsv(pred), encoding="utf-8")
        (tmp / "labels.txt").write_text(event_files.tsv(pred, with_score=False), encoding="utf-8")
        png = draw_timeline(pred, tmp / "timeline.png")
        video = playable_copy(pred.path, tmp)
        (tmp / "report.html").write_text(report_html(pred, png, video.name), encoding="utf-8")
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = out / f".{pred.video_id}.old{os.getpid()}"
    if final.exists():
        os.replace(final, old)
    os.replace(tmp, final)
    shutil.rmtree(old, ignore_errors=True)
    return final


def write_run_files(preds: list[VideoPrediction], out: Path) -> list[str]:
    """``out/events.json`` (for ``avloc detect-eval``) and ``out/index.html`` over every video folder in
    ``out``: the videos of ``preds`` and those earlier commands wrote there. Returns the ids listed."""
    entries = index.collect(preds, out)
    write_text_atomic(out / "events.json", index.events_json(entries))
    write_text_atomic(out / "index.html", index.index_html(entries, STYLE))
    return [e.video_id for e in entries]
