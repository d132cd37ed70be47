"""Per-step scores -> events and the post-processing knobs, against hand-worked examples."""

from __future__ import annotations

import numpy as np

from avloc.inference.events import Events, PostProcess, postprocess, runs_to_events


def test_runs_become_events_scored_by_their_mean():
    active = np.array([[1, 0], [1, 0], [0, 1], [1, 1], [0, 1]], bool)  # (T=5, C=2)
    scores = np.arange(10.0).reshape(5, 2)
    ev = runs_to_events(active, scores, 0.5, ["a", "b"], "av", duration=2.4).sorted()
    assert ev.label.tolist() == ["a", "b", "a"]
    assert ev.start.tolist() == [0.0, 1.0, 1.5] and ev.end.tolist() == [1.0, 2.4, 2.0]  # cut at the duration
    assert ev.score.tolist() == [1.0, 7.0, 6.0]  # mean of (0, 2); (5, 7, 9); (6,)
    assert set(ev.track.tolist()) == {"av"}


def events(rows):
    label, start, end, score, track = zip(*rows)
    return Events(label, start, end, score, track)


def test_merge_gap_joins_same_label_and_track_only():
    ev = events([("a", 0, 2, 0.5, "av"), ("a", 2.5, 3, 1.0, "av"), ("a", 5, 6, 0.2, "av"),
                 ("b", 2.2, 3, 0.9, "av"), ("a", 2.1, 2.4, 0.9, "visual")])
    out = postprocess(ev, PostProcess(merge_gap=1.0))
    rows = sorted(zip(out.track.tolist(), out.label.tolist(), out.start.tolist(), out.end.tolist()))
    assert rows == [("av", "a", 0, 3), ("av", "a", 5, 6), ("av", "b", 2.2, 3), ("visual", "a", 2.1, 2.4)]
    merged = out.score[(out.label == "a") & (out.start == 0) & (out.track == "av")]
    assert np.allclose(merged, (0.5 * 2 + 1.0 * 0.5) / 2.5)  # duration-weighted mean


def test_merge_respects_a_long_event_inside_a_key():
    ev = events([("a", 0, 10, 0.5, "av"), ("a", 1, 2, 0.5, "av"), ("a", 10.5, 11, 0.5, "av")])
    out = postprocess(ev, PostProcess(merge_gap=1.0))
    assert out.start.tolist() == [0] and out.end.tolist() == [11]  # 10.5 is 0.5 s after the 0-10 event


def test_min_duration_after_merging_and_min_score():
    ev = events([("a", 0, 1, 0.6, "av"), ("a", 1.5, 2.5, 0.6, "av"), ("b", 4, 4.5, 0.9, "av"),
                 ("c", 6, 9, 0.1, "av")])
    out = postprocess(ev, PostProcess(min_duration=2.0, merge_gap=1.0))
    assert out.label.tolist() == ["a", "c"]  # the two halves of a survive together; b is too short
    out = postprocess(ev, PostProcess(min_score=0.5))
    assert out.label.tolist() == ["a", "a", "b"]
    assert len(postprocess(ev, PostProcess())) == 4  # defaults keep everything
