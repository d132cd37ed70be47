"""The report answers the question first: the audio-visual events or why there are none, what an event's number
means, thresholds on the strips, readable names, strips about the events, labels that fit, and an index of
every video folder in OUT (a second predict into the same folder adds to it)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from avloc.inference.events import Events
from avloc.inference.prediction import ScoreTrack, VideoPrediction
from avloc.report.answer import answer, decision_thresholds
from avloc.report.timeline import fit_label, lanes, strip_labels, timeline_figure
from avloc.report.write import write_run_files, write_video_report
from media_clips import write_clip

GROUPS = ["fish", "bird", "reptile_amphib", "dog", "other_mammal"]


def silent_dog(video: Path = Path("dog.mp4"), duration: float = 10.0) -> VideoPrediction:
    """A zero-shot-like prediction: a dog on the visual track 2-9 s, nothing heard, no audio-visual event."""
    t = int(duration)
    vis = np.zeros((t, len(GROUPS)))
    vis[2:9, 3] = 0.6
    zero = np.zeros_like(vis)
    ev = Events(["dog"], [2.0], [9.0], [0.6], ["visual"])
    return VideoPrediction(video.stem, video, duration, "zero-shot", ev,
                           [ScoreTrack("av", GROUPS, zero, 1.0), ScoreTrack("audio", GROUPS, zero, 1.0),
                            ScoreTrack("visual", GROUPS, vis, 1.0)])


def test_the_answer_says_why_there_is_no_audio_visual_event():
    assert answer(silent_dog()) == "No audio-visual event: dog seen, not heard."
    pred = silent_dog()
    pred.events = Events(["dog", "dog"], [0.0, 5.0], [2.0, 8.0], [0.5, 0.4], ["audio", "visual"])
    assert answer(pred) == "No audio-visual event: dog heard and seen, but never in the same second."
    pred.events = Events(["other_mammal"], [1.0], [4.0], [0.4], ["av"])
    assert answer(pred) == "Audio-visual event: other mammal 1.0-4.0 s."  # readable, not other_mammal
    pred.events = Events()
    assert "nothing was heard or seen" in answer(pred)
    run = VideoPrediction("r", Path("r.mp4"), 10.0, "run:avel", Events(), [ScoreTrack("av", ["Bark"], np.zeros((10, 1)), 1.0)])
    assert "background" in answer(run) and decision_thresholds(run) == {}


def test_page_puts_the_answer_and_audio_visual_events_first(tmp_path):
    clip = write_clip(tmp_path / "dog.mp4", 3.0)
    page = (write_video_report(silent_dog(clip, 3.0), tmp_path / "out") / "report.html").read_text()
    answer_at, av_at = page.index('id="answer"'), page.index("audio-visual events</h3>")
    assert answer_at < av_at < page.index("<video") < page.index("visual track events</h3>")
    assert "dog seen, not heard" in page and "The number on an event is its mean score" in page
    assert "other_mammal" not in page.split("<script")[0].split("<img")[0]  # shown names are readable


def test_strips_show_the_classes_of_the_events_and_draw_the_threshold():
    pred = silent_dog()
    assert strip_labels(pred) == ["dog"]  # not fish / bird / reptile at 0
    pred_none = silent_dog()
    pred_none.events = Events()
    assert strip_labels(pred_none) == ["dog"]  # no event: the classes that score, none at 0
    fig = timeline_figure(pred)
    strip = fig.axes[0]
    texts = [t.get_text() for t in strip.texts]
    assert "dog" in texts and any(t.startswith("threshold 0.25") for t in texts)
    thr = decision_thresholds(pred)  # the shipped ones: this hand-made prediction carries none
    want = sorted({round(thr["av"]["dog"], 2), round(thr["visual"]["dog"], 2)})  # av dog, alone
    assert sorted({round(float(line.get_ydata()[0]), 2) for line in strip.lines}) == want
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_timeline_labels_fit_inside_the_figure_and_do_not_overlap():
    import matplotlib.pyplot as plt

    long = "Male speech, man speaking"
    ev = Events([long, "dog", "dog", "bird", "other_mammal"], [0.0, 0.5, 1.0, 0.6, 3.0], [9.0, 0.9, 1.4, 0.8, 6.0],
                [0.5, 0.4, 0.4, 0.3, 0.3], ["av"] * 5)
    labels = [long, "dog", "bird", "other_mammal"]
    scores = np.full((10, 4), 0.2)
    pred = VideoPrediction("busy", Path("busy.mp4"), 10.0, "run:x", ev, [ScoreTrack("av", labels, scores, 1.0)])
    fig = timeline_figure(pred)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    whole = fig.bbox
    boxes = []
    for ax in fig.axes:
        for t in ax.texts:
            if t.get_text():
                bb = t.get_window_extent(renderer)
                assert whole.x0 - 1 <= bb.x0 and bb.x1 <= whole.x1 + 1, t.get_text()  # never cut off
                boxes.append((t.get_text(), bb))
    assert any(text == long for text, _ in boxes)  # the strip names the whole class
    events_ax = fig.axes[-1]
    drawn = [t.get_window_extent(renderer) for t in events_ax.texts if t.get_text()]
    for i, a in enumerate(drawn):
        for b in drawn[i + 1:]:
            assert not a.overlaps(b)
    plt.close(fig)
    assert fit_label("Male speech, man speaking", 0.5) == "Male spe…" and fit_label("dog", 0.05) == ""
    lane, n = lanes(np.array([0.0, 0.5, 1.0, 3.0]), np.array([9.0, 0.9, 1.4, 6.0]))
    assert n == 2 and lane.tolist() == [0, 1, 1, 1]


def test_a_second_predict_into_the_same_folder_keeps_the_first_videos(tmp_path):
    out = tmp_path / "out"
    a = write_clip(tmp_path / "clip_a.mp4", 2.0)
    b = write_clip(tmp_path / "clip_b.mp4", 2.0, seed=1)
    first = silent_dog(a, 2.0)
    write_video_report(first, out)
    assert write_run_files([first], out) == ["clip_a"]
    second = silent_dog(b, 2.0)
    second.method = "run:avel"
    second.events = Events(["dog"], [0.0], [1.0], [0.7], ["av"])
    write_video_report(second, out)
    assert write_run_files([second], out) == ["clip_a", "clip_b"]
    doc = json.loads((out / "events.json").read_text())
    assert sorted(doc["results"]) == ["clip_a", "clip_b"] and doc["results"]["clip_b"][0]["label"] == "dog"
    assert doc["avloc"]["clip_a"]["method"] == "zero-shot"
    index = (out / "index.html").read_text()
    assert 'href="clip_a/report.html"' in index and 'href="clip_b/report.html"' in index
    assert "<td>zero-shot</td>" in index and "<td>run:avel</td>" in index
    assert "1 from the latest command, 1 from earlier ones" in index
    (out / "clip_a" / "events.json").write_text("{broken")  # a damaged folder is listed, not dropped
    assert write_run_files([second], out) == ["clip_a", "clip_b"]
    assert "unreadable events.json" in (out / "index.html").read_text()



def test_terminal_table_says_why_there_is_no_event():
    from avloc.report.table import events_table

    assert "-  No audio-visual event: dog seen, not heard." in events_table([silent_dog()])
