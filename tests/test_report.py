"""The files of one video's report: schema of each, ground truth in the captions, atomic writing."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from avloc.evaluation.detection import load_predictions
from avloc.inference.events import Events
from avloc.inference.prediction import ScoreTrack, VideoPrediction
from avloc.report.write import VIDEO_FILES, write_run_files, write_video_report
from media_clips import write_clip


def prediction(video: Path, with_gt: bool = True) -> VideoPrediction:
    """A hand-made zero-shot-like prediction over 4 s: dog 1-3 s (AV), car visual-only 0-1 s."""
    labels = ["dog", "car", "bird"]
    av = np.array([[0.1, 0.0, 0.0], [0.6, 0.1, 0.0], [0.4, 0.0, 0.1], [0.0, 0.0, 0.0]])
    events = Events(["dog", "car"], [1.0, 0.0], [3.0, 1.0], [0.5, 0.3], ["av", "visual"])
    gt = Events(["dog"], [1.5], [3.5], [1.0], ["gt"]) if with_gt else None
    return VideoPrediction(video.stem, video, 4.0, "zero-shot", events,
                           [ScoreTrack("av", labels, av, 1.0), ScoreTrack("visual", labels, av * 1.5, 1.0)],
                           ground_truth=gt, metrics={"per_second_acc": 0.75} if with_gt else {},
                           notes=["a note"])


@pytest.fixture(scope="module")
def clip(tmp_path_factory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "clip_a.mp4", 4.0)


def test_every_file_and_its_schema(clip, tmp_path):
    folder = write_video_report(prediction(clip), tmp_path)
    assert folder == tmp_path / "clip_a"
    for name in VIDEO_FILES:
        assert (folder / name).stat().st_size > 0, name
    assert (folder / "video.mp4").read_bytes() == clip.read_bytes()  # H.264 in MP4: copied as is
    doc = json.loads((folder / "events.json").read_text())
    assert doc["results"] == {"clip_a": [{"segment": [1.0, 3.0], "label": "dog", "score": 0.5}]}  # AV track only
    extra = doc["avloc"]["clip_a"]
    assert extra["tracks"]["av"]["scores"]["dog"] == [0.1, 0.6, 0.4, 0.0]
    assert extra["other_events"] == [{"track": "visual", "segment": [0.0, 1.0], "label": "car", "score": 0.3}]
    preds = load_predictions(folder / "events.json")  # what avloc detect-eval reads
    assert preds.label.tolist() == ["dog"] and preds.start.tolist() == [1.0]
    assert (folder / "events.tsv").read_text() == "1.000\t3.000\tdog\t0.5000\n"
    assert (folder / "labels.txt").read_text() == "1.000\t3.000\tdog\n"
    srt = (folder / "events.srt").read_text()
    assert "00:00:01,000 --> 00:00:03,000\ndog 0.50" in srt
    assert '<font color="#00c000">GT: dog</font>' in srt and "00:00:01,500 --> 00:00:03,500" in srt
    vtt = (folder / "events.vtt").read_text()
    assert vtt.startswith("WEBVTT\n") and "00:00:01.000 --> 00:00:03.000\ndog 0.50" in vtt
    assert "<c.lime>GT: dog</c>" in vtt
    html = (folder / "report.html").read_text()
    assert 'src="video.mp4"' in html and "data:image/png;base64," in html
    assert not re.search(r"(src|href)=\"https?:", html)  # nothing from the network
    assert 'data-start="1.000"' in html and "per_second_acc" in html


def test_run_files_index_every_video(clip, tmp_path):
    other = write_clip(tmp_path / "clip_b.mp4", 2.0, seed=1)
    preds = [prediction(clip), prediction(other, with_gt=False)]
    for p in preds:
        write_video_report(p, tmp_path)
    write_run_files(preds, tmp_path)
    assert sorted(load_predictions(tmp_path / "events.json").video.tolist()) == ["clip_a", "clip_b"]
    index = (tmp_path / "index.html").read_text()
    assert 'href="clip_a/report.html"' in index and 'href="clip_b/report.html"' in index


def test_a_video_other_codecs_is_transcoded_for_the_browser(tmp_path):
    import av

    src = write_clip(tmp_path / "old.avi", 2.0, codec="mpeg4")
    folder = write_video_report(prediction(src, with_gt=False), tmp_path / "out")
    with av.open(str(folder / "video.mp4")) as box:
        assert box.streams.video[0].codec_context.name == "h264"
        assert abs(float(box.duration / 1e6) - 2.0) < 0.2


def test_a_failed_write_leaves_nothing_and_keeps_the_old_folder(clip, tmp_path):
    good = write_video_report(prediction(clip), tmp_path)
    before = (good / "events.json").read_text()
    broken = prediction(clip)
    broken.path = tmp_path / "gone.mp4"  # the copy of the video fails after the event files are written
    with pytest.raises(Exception):
        write_video_report(broken, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["clip_a"]  # no temporary folder left
    assert (good / "events.json").read_text() == before
