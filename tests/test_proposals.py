"""CAS -> proposals: segment extraction, OIC, NMS (soft and hard), top-N, time conversion."""

from __future__ import annotations

import math
import time

import numpy as np
import pytest
import torch

from avloc.evaluation.proposals import (
    ProposalConfig,
    find_segments,
    generate_proposals,
    nms,
    oic_scores,
    select_classes,
    smooth_rows,
)

STEP, OFF = 0.32, 0.48


def grid(b, lengths, durations):
    return np.asarray(lengths), np.full(b, STEP), np.full(b, OFF), np.asarray(durations, dtype=float)


def test_find_segments_runs_per_row():
    binary = np.array([[0, 1, 1, 0, 1], [1, 1, 1, 1, 1], [0, 0, 0, 0, 0], [1, 0, 0, 0, 1]], dtype=bool)
    rows, s, e = find_segments(binary)
    assert list(zip(rows.tolist(), s.tolist(), e.tolist())) == [
        (0, 1, 3),
        (0, 4, 5),
        (1, 0, 5),
        (3, 0, 1),
        (3, 4, 5),
    ]


def test_oic_hand_case():
    cas = np.full((1, 20), 0.2)
    cas[0, 8:12] = 0.8
    # [8, 12): inner 0.8; ring of 1 step each side (trunc(0.25 * 4) = 1) at 0.2 -> 0.6
    assert oic_scores(cas, np.array([20]), np.array([0]), np.array([8]), np.array([12]), 0.25)[
        0
    ] == pytest.approx(0.6)
    # a segment covering the whole video has an empty ring -> outer 0
    assert oic_scores(cas, np.array([20]), np.array([0]), np.array([0]), np.array([20]), 0.25)[
        0
    ] == pytest.approx(cas.mean())


def test_known_segments_are_recovered_in_seconds():
    t, c = 60, 4
    cas = np.full((1, t, c), 0.05)
    cas[0, 10:20, 1] = 0.9
    cas[0, 30:45, 2] = 0.7
    cas[0, 50:60, 3] = 0.95  # class 3 is not in the video: video score too low
    vs = np.array([[0.01, 0.9, 0.8, 0.1]])
    lengths, step, off, dur = grid(1, [t], [20.0])
    p = generate_proposals(cas, vs, lengths, step, off, dur, ProposalConfig(nms="hard", nms_iou=0.5))
    assert set(p.label.tolist()) == {1, 2}
    for cls, (s, e) in {1: (10, 20), 2: (30, 45)}.items():
        best = np.nonzero(p.label == cls)[0][0]  # sorted by score within the video
        assert p.start[best] == pytest.approx(OFF + (s - 0.5) * STEP)
        assert p.end[best] == pytest.approx(OFF + (e - 0.5) * STEP)
        inner, outer = cas[0, s:e, cls].mean(), 0.05
        assert p.score[best] == pytest.approx(inner - outer + 0.2 * vs[0, cls])
    assert np.all(np.diff(p.score) <= 0)


def test_edges_padding_and_top_class_fallback():
    cas = np.zeros((2, 30, 3))
    cas[0, 0:5, 0] = 1.0  # starts at the first step -> 0 s
    cas[0, 20:30, 0] = 1.0  # ends at the last valid step (length 30) -> duration
    cas[1, 0:10, 2] = 1.0
    cas[1, 10:30, 2] = 1.0  # padding of video 1 (length 10) must be ignored
    vs = np.array([[0.9, 0.0, 0.0], [0.05, 0.0, 0.1]])  # video 1: no class >= 0.2 -> top class (2) kept
    lengths, step, off, dur = grid(2, [30, 10], [10.0, 4.0])
    p = generate_proposals(torch.tensor(cas), torch.tensor(vs), torch.tensor(lengths), step, off, dur)
    v0, v1 = p.video == 0, p.video == 1
    assert sorted(zip(p.start[v0].round(2), p.end[v0].round(2))) == [
        (0.0, round(OFF + 4.5 * STEP, 2)),
        (round(OFF + 19.5 * STEP, 2), 10.0),
    ]
    assert p.label[v1].tolist() == [2] and p.start[v1][0] == 0.0 and p.end[v1][0] == 4.0


def test_multi_threshold_duplicates_kept_once_and_top_n():
    rng = np.random.default_rng(0)
    cas = rng.random((3, 80, 5))
    vs = np.ones((3, 5))
    lengths, step, off, dur = grid(3, [80, 80, 40], [30.0, 30.0, 15.0])
    p = generate_proposals(cas, vs, lengths, step, off, dur, ProposalConfig(nms="none", top_n=7))
    assert np.bincount(p.video, minlength=3).tolist() == [7, 7, 7]
    rows = np.stack([p.video, p.label, p.start, p.end], 1)
    assert len(np.unique(rows, axis=0)) == len(rows)
    assert np.all(p.end <= np.asarray(dur)[p.video]) and np.all(p.start >= 0) and np.all(p.end > p.start)


def test_hard_nms_hand_case():
    start = np.array([0.0, 1.0, 20.0, 0.0, 5.0])
    end = np.array([10.0, 11.0, 30.0, 10.0, 8.0])
    score = np.array([0.9, 0.8, 0.7, 0.95, 0.6])
    group = np.array([0, 0, 0, 1, 0])  # row 3 is another class: never suppresses group 0
    keep, s = nms(start, end, score, group, "hard", iou_threshold=0.5)
    assert sorted(keep.tolist()) == [0, 2, 3, 4]  # row 1 overlaps row 0 by 9/11 > 0.5; row 4 only 0.3
    assert np.allclose(np.sort(s), np.sort(score[[0, 2, 3, 4]]))


def test_soft_nms_gaussian_decay():
    start, end = np.array([0.0, 5.0, 40.0]), np.array([10.0, 15.0, 50.0])
    score = np.array([0.9, 0.8, 0.5])
    keep, s = nms(start, end, score, np.zeros(3, int), "soft", sigma=0.3, min_score=0.0)
    got = dict(zip(keep.tolist(), s.tolist()))
    iou = 5 / 15
    assert got[0] == pytest.approx(0.9)
    assert got[1] == pytest.approx(0.8 * math.exp(-(iou**2) / 0.3))
    assert got[2] == pytest.approx(0.5)  # no overlap: untouched
    assert keep.tolist() == [0, 1, 2]  # picked in score order (0.8 * 0.69 = 0.55 > 0.5)
    # an identical copy is decayed by exp(-1 / sigma) and dropped below min_score
    keep, s = nms(
        np.array([0.0, 0.0]),
        np.array([1.0, 1.0]),
        np.array([0.9, 0.5]),
        np.zeros(2, int),
        "soft",
        sigma=0.3,
        min_score=0.05,
    )
    assert keep.tolist() == [0]


def test_soft_nms_many_groups_match_per_group_runs():
    rng = np.random.default_rng(1)
    n = 300
    start = rng.uniform(0, 50, n)
    end = start + rng.uniform(0.5, 10, n)
    score = rng.random(n)
    group = rng.integers(0, 7, n)
    keep, s = nms(start, end, score, group, "soft", sigma=0.4, min_score=0.01)
    for g in range(7):
        m = np.nonzero(group == g)[0]
        k1, s1 = nms(start[m], end[m], score[m], np.zeros(len(m), int), "soft", sigma=0.4, min_score=0.01)
        mine = np.isin(keep, m)
        assert keep[mine].tolist() == m[k1].tolist() and np.allclose(s[mine], s1)


def test_bad_shapes_and_config():
    with pytest.raises(ValueError, match="video_scores"):
        generate_proposals(np.zeros((2, 5, 3)), np.zeros((2, 4)), [5, 5], [STEP] * 2, [OFF] * 2, [2.0, 2.0])
    with pytest.raises(ValueError, match="nms"):
        ProposalConfig(nms="fancy")


def test_batch_speed_is_vectorised():
    rng = np.random.default_rng(0)
    b, t, c = 32, 188, 100
    base = rng.random((b, t, 1)) * 0.3
    cas = np.clip(base + rng.random((b, t, c)) * 0.7, 0, 1)
    vs = rng.random((b, c)) * 0.5  # ~60 kept classes per video: a pessimistic load
    lengths, step, off, dur = grid(b, [t] * b, [60.0] * b)
    t0 = time.process_time()
    p = generate_proposals(cas, vs, lengths, step, off, dur)
    assert time.process_time() - t0 < 30.0
    assert np.bincount(p.video).max() <= 100


def test_smoothing_is_a_moving_average_over_valid_steps_only():
    rows = np.array([[0.0, 3.0, 0.0, 0.0, 9.0, 9.0]])
    valid = np.array([[True, True, True, True, False, False]])
    out = smooth_rows(rows, valid, 3)
    # ends average the valid steps their window covers; padding neither leaks in nor gets a value
    assert out.tolist() == [[1.5, 1.0, 1.0, 0.0, 0.0, 0.0]]
    assert smooth_rows(rows, valid, 1) is rows


def test_smoothing_joins_an_event_split_by_one_low_step():
    cas = np.zeros((1, 20, 1))
    cas[0, 5:15, 0] = 0.9
    cas[0, 9, 0] = 0.0  # one noisy step inside the event
    base = dict(thresholds=[0.5], class_threshold=0.0, nms="none", oic_gamma=0.0)
    g = grid(1, [20], [20 * STEP])
    raw = generate_proposals(cas, np.ones((1, 1)), *g, ProposalConfig(**base))
    smooth = generate_proposals(cas, np.ones((1, 1)), *g, ProposalConfig(**base, smooth=3))
    assert len(raw) == 2 and len(smooth) == 1


def test_class_selection_threshold_and_topk():
    scores = np.array([[0.9, 0.5, 0.3, 0.05], [0.01, 0.02, 0.0, 0.03]])
    assert select_classes(scores, 0.2, 0).tolist() == [[True, True, True, False], [False, False, False, True]]
    assert select_classes(scores, 0.2, 2).tolist() == [[True, True, False, False], [False, False, False, True]]
    assert select_classes(scores, 0.0, 1).tolist() == [[True, False, False, False], [False, False, False, True]]


def test_mean_score_has_no_outer_ring():
    cas = np.full((1, 20, 1), 0.2)
    cas[0, 8:12, 0] = 0.8
    g = grid(1, [20], [20 * STEP])
    base = dict(thresholds=[0.5], class_threshold=0.0, nms="none", oic_gamma=0.0)
    mean = generate_proposals(cas, np.ones((1, 1)), *g, ProposalConfig(**base, score="mean"))
    oic = generate_proposals(cas, np.ones((1, 1)), *g, ProposalConfig(**base, score="oic"))
    assert mean.score.tolist() == pytest.approx([0.8]) and oic.score.tolist() == pytest.approx([0.6])
    with pytest.raises(ValueError, match="score"):
        ProposalConfig(score="max")
    with pytest.raises(ValueError, match="smooth"):
        ProposalConfig(smooth=2)
