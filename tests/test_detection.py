"""mAP@tIoU with the ActivityNet/UnAV rules: hand-computed cases, properties, a loop reference, real GT."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from avloc.evaluation.detection import (DetectionError, detect_eval, evaluate_detection, remove_duplicates,
                                        tiou)
from avloc.formats.activitynet import (FormatError, Segments, load_ground_truth, load_predictions,
                                       save_predictions)

SHARED = Path(__file__).resolve().parents[2] / "shared"
UNAV_JSON = SHARED / "data" / "unav100" / "unav100_annotations.json"


def seg(rows, scores=None):
    """rows: (video, start, end, label) tuples."""
    v, s, e, lab = zip(*rows) if rows else ((), (), (), ())
    return Segments(
        np.array(v, dtype=str),
        np.array(s, float),
        np.array(e, float),
        np.array(lab, dtype=str),
        None if scores is None else np.array(scores, float),
    )


def ap_at(gt, pred, thr=0.5):
    return evaluate_detection(gt, pred, [thr])


# ------------------------------------------------------------------ hand-computed cases


def test_greedy_by_score_and_gt_matched_once():
    gt = seg([("v", 0, 10, "a"), ("v", 20, 30, "a")])
    # p1 takes GT0 (score first) although p2 overlaps it better; p2 is then a FP; p3 hits GT1.
    pred = seg([("v", 0, 8, "a"), ("v", 0, 10, "a"), ("v", 20, 30, "a")], [0.9, 0.8, 0.7])
    # precision 1, 1/2, 2/3 at recall 1/2, 1/2, 1 -> envelope 1, 2/3, 2/3 -> AP = 1/2 + 1/2 * 2/3
    assert ap_at(gt, pred).average_map == pytest.approx(0.5 + 0.5 * 2 / 3)


def test_match_goes_to_highest_tiou_unmatched_gt():
    gt = seg([("v", 0, 6, "a"), ("v", 0, 9, "a")])
    # p1 [0,10]: tIoU 0.6 with A, 0.9 with B -> must take B; p2 [0,4]: 0.667 with A -> TP.
    # Had p1 taken A, p2 would have only B at 0.444 < 0.5 and be a FP.
    pred = seg([("v", 0, 10, "a"), ("v", 0, 4, "a")], [0.9, 0.8])
    assert ap_at(gt, pred).average_map == pytest.approx(1.0)


def test_interpolated_precision_envelope():
    gt = seg([("v", 0, 1, "a"), ("v", 10, 11, "a"), ("v", 20, 21, "a")])
    # ranked TP, FP, FP, TP, TP: precision 1, .5, .333, .5, .6 at recall 1/3,1/3,1/3,2/3,1
    # envelope: 1, .6, .6, .6, .6 -> AP = (1 + .6 + .6) / 3 (non-interpolated would be (1 + .5 + .6) / 3)
    pred = seg(
        [("v", 0, 1, "a"), ("v", 40, 41, "a"), ("v", 50, 51, "a"), ("v", 10, 11, "a"), ("v", 20, 21, "a")],
        [0.9, 0.8, 0.7, 0.6, 0.5],
    )
    assert ap_at(gt, pred).average_map == pytest.approx((1 + 0.6 + 0.6) / 3)


def test_duplicate_gt_removed():
    gt = seg([("v", 0, 10, "a"), ("v", 0.0005, 10.0009, "a"), ("v", 0, 10, "b")])
    clean = remove_duplicates(gt)
    assert len(clean) == 2  # the near-identical "a" is dropped; the same span labelled "b" stays
    pred = seg([("v", 0, 10, "a"), ("v", 0, 10, "b")], [0.9, 0.9])
    assert ap_at(gt, pred).average_map == pytest.approx(1.0)  # without removal: "a" recall 1/2
    far = seg([("v", 0, 10, "a"), ("v", 0.002, 10, "a")])
    assert len(remove_duplicates(far)) == 2  # 2 ms apart: beyond the 1e-3 s tolerance


def test_duplicate_chain_keeps_rows_matching_only_a_dropped_row():
    # B duplicates A, C duplicates B but not A: B is dropped, so C is kept (the sequential rule).
    gt = seg([("v", 0, 10, "a"), ("v", 0.0008, 10, "a"), ("v", 0.0016, 10, "a")])
    kept = remove_duplicates(gt)
    assert kept.start.tolist() == [0.0, 0.0016]


def test_classes_come_from_ground_truth_only():
    gt = seg([("v", 0, 10, "a")])
    good = seg([("v", 0, 10, "a")], [0.5])
    noisy = seg([("v", 0, 10, "a"), ("v", 0, 10, "zzz"), ("w", 3, 4, "zzz")], [0.5, 0.99, 0.99])
    r1, r2 = ap_at(gt, good), ap_at(gt, noisy)
    assert r2.average_map == r1.average_map == pytest.approx(1.0)
    assert r2.classes.tolist() == ["a"]


def test_gt_class_without_predictions_scores_zero_and_counts():
    gt = seg([("v", 0, 10, "a"), ("v", 0, 10, "b")])
    pred = seg([("v", 0, 10, "a")], [0.5])
    res = ap_at(gt, pred)
    assert res.ap[0].tolist() == [1.0, 0.0] and res.average_map == pytest.approx(0.5)


def test_predictions_in_unknown_or_wrong_videos_are_false_positives():
    gt = seg([("v", 0, 10, "a")])
    pred = seg([("nowhere", 0, 10, "a"), ("v", 0, 10, "a")], [0.9, 0.8])
    assert ap_at(gt, pred).average_map == pytest.approx(0.5)  # precision 1/2 at recall 1


def test_threshold_is_inclusive_and_presets():
    gt = seg([("v", 0, 10, "a")])
    pred = seg([("v", 0, 5, "a")], [1.0])  # tIoU exactly 0.5
    assert ap_at(gt, pred, 0.5).average_map == 1.0
    assert ap_at(gt, pred, 0.51).average_map == 0.0
    r = evaluate_detection(gt, pred, "unav")
    assert np.allclose(r.tious, np.linspace(0.1, 0.9, 9)) and np.allclose(r.mAP, [1] * 5 + [0] * 4)
    assert len(evaluate_detection(gt, pred, "anet").tious) == 10
    assert np.allclose(evaluate_detection(gt, pred, "0.3,0.7").mAP, [1, 0])
    with pytest.raises(DetectionError):
        evaluate_detection(gt, pred, "coco")


def test_int_and_str_labels_are_not_mixed():
    gt = Segments(np.array(["v"]), [0.0], [1.0], np.array([3]))
    pred = seg([("v", 0, 1, "3")], [1.0])
    with pytest.raises(DetectionError, match="labels"):
        evaluate_detection(gt, pred)
    ok = Segments(np.array([7]), [0.0], [1.0], np.array([3]), [1.0])
    assert evaluate_detection(Segments(np.array([7]), [0.0], [1.0], np.array([3])), ok).average_map == 1.0


def test_empty_predictions_give_zero():
    gt = seg([("v", 0, 10, "a")])
    r = evaluate_detection(gt, seg([], []))
    assert r.average_map == 0.0 and r.num_predictions == 0


# ------------------------------------------------------------------ a plain-loop reference of the rules


def reference_map(gt: Segments, pred: Segments, thr: np.ndarray, tiou_sort: str | None = None) -> np.ndarray:
    """Per-prediction loop, following the ActivityNet toolkit's procedure literally (its default argsort of
    the tIoU of a prediction with the GT of its video and class; ``tiou_sort`` another kind)."""
    gt = remove_duplicates(gt)
    classes = np.unique(gt.label)
    ap = np.zeros((len(thr), len(classes)))
    for ci, c in enumerate(classes):
        g = np.nonzero(gt.label == c)[0]
        p = np.nonzero(pred.label == c)[0]
        if len(p) == 0:
            continue
        p = p[np.argsort(pred.score[p])[::-1]]
        lock = -np.ones((len(thr), len(g)), dtype=int)
        tp = np.zeros((len(thr), len(p)))
        for pi, j in enumerate(p):
            same = np.nonzero(gt.video[g] == pred.video[j])[0]
            if len(same) == 0:
                continue
            ov = np.array([tiou(pred.start[j], pred.end[j], gt.start[g[k]], gt.end[g[k]]) for k in same])
            order = ov.argsort(kind=tiou_sort)[::-1]
            for ti, t in enumerate(thr):
                for o in order:
                    if ov[o] < t:
                        break
                    if lock[ti, same[o]] >= 0:
                        continue
                    tp[ti, pi] = 1
                    lock[ti, same[o]] = pi
                    break
        fp = 1 - tp
        tc, fc = np.cumsum(tp, 1), np.cumsum(fp, 1)
        rec, prec = tc / len(g), tc / (tc + fc)
        for ti in range(len(thr)):
            mp = np.hstack([[0], prec[ti], [0]])
            mr = np.hstack([[0], rec[ti], [1]])
            for i in range(len(mp) - 2, -1, -1):
                mp[i] = max(mp[i], mp[i + 1])
            idx = np.nonzero(mr[1:] != mr[:-1])[0] + 1
            ap[ti, ci] = np.sum((mr[idx] - mr[idx - 1]) * mp[idx])
    return ap.mean(axis=1)


@st.composite
def scenario(draw):
    n_gt = draw(st.integers(1, 12))
    n_pred = draw(st.integers(0, 30))
    vids, labs = ["v0", "v1", "v2"], ["a", "b", "c"]

    def rows(n):
        out = []
        for _ in range(n):
            s = float(draw(st.integers(0, 40)))
            ln = float(draw(st.integers(1, 15)))
            out.append((draw(st.sampled_from(vids)), s, s + ln, draw(st.sampled_from(labs))))
        return out

    g = rows(n_gt)
    p = rows(n_pred)
    # mostly jittered copies of GT so there are matches to find
    p += [
        (v, s + draw(st.integers(-2, 2)), e + draw(st.integers(-1, 3)), lab)
        for v, s, e, lab in g
        if draw(st.booleans())
    ]
    scores = draw(st.lists(st.integers(0, 10**6), min_size=len(p), max_size=len(p), unique=True))
    return seg(g), seg(p, [x / 10**6 for x in scores])


@settings(max_examples=80, deadline=None)
@given(scenario())
def test_matches_loop_reference(case):
    gt, pred = case
    thr = np.linspace(0.1, 0.9, 9)
    got = evaluate_detection(gt, pred, thr).mAP
    assert np.allclose(got, reference_map(gt, pred, thr), atol=1e-12)


@settings(max_examples=40, deadline=None)
@given(scenario())
def test_perfect_predictions_score_one(case):
    gt, _ = case
    clean = remove_duplicates(gt)
    perfect = Segments(clean.video, clean.start, clean.end, clean.label, np.linspace(1, 0.5, len(clean)))
    assert evaluate_detection(gt, perfect, "anet").average_map == pytest.approx(1.0)


@settings(max_examples=40, deadline=None)
@given(scenario(), st.floats(0.1, 10), st.floats(-5, 5))
def test_monotone_rescaling_of_scores_changes_nothing(case, a, b):
    gt, pred = case
    if len(pred) == 0:
        return
    r1 = evaluate_detection(gt, pred)
    rescaled = Segments(pred.video, pred.start, pred.end, pred.label, np.exp(a * pred.score) + b)
    assert np.array_equal(r1.ap, evaluate_detection(gt, rescaled).ap)


@given(st.floats(-100, 100), st.floats(0, 50), st.floats(-100, 100), st.floats(0, 50))
def test_tiou_symmetric_and_bounded(s1, l1, s2, l2):
    a = tiou(s1, s1 + l1, s2, s2 + l2)
    b = tiou(s2, s2 + l2, s1, s1 + l1)
    assert a == b and 0.0 <= a <= 1.0
    if s1 + l1 > s1:  # non-empty in floating point
        assert tiou(s1, s1 + l1, s1, s1 + l1) == 1.0


# ------------------------------------------------------------------ JSON I/O and the real annotation file


def _write_one_video_gt(path):
    """A 30 s test video "v" with one event of class "a" at [0, 10] s."""
    ann = {"database": {"v": {"duration": 30, "subset": "test",
                              "annotations": [{"segment": [0, 10], "label": "a", "label_id": 0}]}}}
    path.write_text(json.dumps(ann))


def test_prediction_json_round_trip_and_cli_function(tmp_path):
    _write_one_video_gt(tmp_path / "gt.json")
    pred = Segments(np.array([0, 0]), [0.0, 20.0], [10.0, 25.0], np.array([0, 0]), [0.9, 0.95])
    save_predictions(tmp_path / "p.json", pred, video_ids=["v"], class_names=["a"])
    back = load_predictions(tmp_path / "p.json")
    assert back.video.tolist() == ["v", "v"] and back.label.tolist() == ["a", "a"]
    out = json.loads(detect_eval(tmp_path / "gt.json", "test", tmp_path / "p.json", "unav", as_json=True))
    assert out["average_mAP"] == pytest.approx(0.5)
    assert "| 0.10 |" in detect_eval(tmp_path / "gt.json", "test", tmp_path / "p.json")


@pytest.mark.parametrize(
    "content, match",
    [
        ("{not json", "not valid JSON"),
        ('{"res": {}}', "'results'"),
        ('{"results": {"v": {}}}', "must be a list"),
        (
            '{"results": {"v": [{"segment": [5, 1], "label": "a", "score": 1}]}}',
            r"results\['v'\]\[0\].*end >= start",
        ),
        ('{"results": {"v": [{"segment": [0, 1], "label": "a", "score": NaN}]}}', "finite"),
        ('{"results": {"v": [{"segment": [0, 1], "score": 0.3}]}}', "'label' and 'score'"),
        ('{"results": {"v": [{"segment": [0, true], "label": "a", "score": 0.3}]}}', "two finite numbers"),
        ('{"results": {"v": [{"segment": [0, 1], "label": "a", "score": "0.3"}]}}', "not a finite number"),
        ('{"results": {"v": [], "w": [{"segment": [0, 1, 2], "label": "a", "score": 1}]}}',
         r"results\['w'\]\[0\]: 'segment' must be two"),
        ('{"results": {"v": [{"segment": "0-1", "label": "a", "score": 0.3}]}}', "segment"),
    ],
)
def test_prediction_loader_errors(tmp_path, content, match):
    (tmp_path / "p.json").write_text(content)
    with pytest.raises(FormatError, match=match):
        load_predictions(tmp_path / "p.json")


def test_ground_truth_loader_errors(tmp_path):
    with pytest.raises(FormatError, match="not found"):
        load_ground_truth(tmp_path / "missing.json", "test")
    (tmp_path / "g.json").write_text(json.dumps({"database": {"v": {"subset": "train", "annotations": []}}}))
    with pytest.raises(FormatError, match="subsets present"):
        load_ground_truth(tmp_path / "g.json", "test")


@pytest.mark.skipif(not UNAV_JSON.is_file(), reason="shared UnAV-100 annotations not available")
def test_real_unav_test_split_perfect():
    gt = load_ground_truth(UNAV_JSON, "test")
    assert len(np.unique(gt.video)) == 2167 and len(np.unique(gt.label)) == 100
    clean = remove_duplicates(gt)
    assert len(clean) <= len(gt)
    perfect = Segments(clean.video, clean.start, clean.end, clean.label, np.ones(len(clean)))
    assert evaluate_detection(gt, perfect, "unav").average_map == pytest.approx(1.0)
    # 100 predictions per test video (216,700), mostly jittered copies of the video's own events so that
    # nearly all of them reach the matching stage: the whole split is scored in well under 3 s.
    rng = np.random.default_rng(0)
    order = np.argsort(gt.video, kind="stable")
    vids, first, count = np.unique(gt.video[order], return_index=True, return_counts=True)
    v = np.repeat(np.arange(len(vids)), 100)
    own = order[first[v] + (rng.random(len(v)) * count[v]).astype(int)]
    start = gt.start[own] + rng.normal(0, 2, len(v))
    end = np.maximum(gt.end[own] + rng.normal(0, 2, len(v)), start + 0.2)
    label = np.where(
        rng.random(len(v)) < 0.8, gt.label[own], np.unique(gt.label)[rng.integers(0, 100, len(v))]
    )
    pred = Segments(vids[v], start, end, label, rng.random(len(v)))
    res = evaluate_detection(gt, pred, "unav")
    assert 0.1 < res.average_map < 0.9


def whole_and_merged(gt: Segments, rng: np.random.Generator) -> Segments:
    """Per video and GT class: a whole-video prediction, one merged over all its events and one over each
    three consecutive events, and jittered copies of the events; equal-length events tie in tIoU."""
    rows = []
    for v, c in sorted({(v, c) for v, c in zip(gt.video.tolist(), gt.label.tolist())}):
        own = np.nonzero((gt.video == v) & (gt.label == c))[0]
        s, e = gt.start[own], gt.end[own]
        rows += [(v, 0.0, e.max() + 1.0, c), (v, s.min(), e.max(), c)]
        rows += [(v, s[k], e[k + 2], c) for k in range(len(own) - 2)]
        rows += [(v, a + rng.normal(0, 0.3), b + rng.normal(0, 0.3), c) for a, b in zip(s, e)]
    return seg([(v, a, max(a, b), c) for v, a, b, c in rows], rng.permutation(len(rows)) / len(rows))


def test_tie_order_follows_the_reference_argsort():
    # 4-7 events of one length per (video, class): the whole-video and merged predictions tie with them.
    rng = np.random.default_rng(1)
    rows = []
    for v in range(30):
        for lab in ("a", "b", "c"):
            length, gap = rng.integers(1, 4), rng.integers(1, 3)
            rows += [(f"v{v}", k * (length + gap), k * (length + gap) + length, lab)
                     for k in range(rng.integers(4, 8))]
    gt = seg(rows)
    pred = whole_and_merged(gt, rng)
    thr = np.linspace(0.1, 0.9, 9)
    got = evaluate_detection(gt, pred, thr).mAP
    assert np.allclose(got, reference_map(gt, pred, thr), rtol=0, atol=1e-12)


@pytest.mark.skipif(not UNAV_JSON.is_file(), reason="shared UnAV-100 annotations not available")
def test_tie_order_on_real_unav_ground_truth():
    gt = load_ground_truth(UNAV_JSON, "test")
    keep = np.isin(gt.video, np.unique(gt.video)[:600])
    gt = gt.take(keep)
    pred = whole_and_merged(gt, np.random.default_rng(0))
    thr = np.linspace(0.1, 0.9, 9)
    got = evaluate_detection(gt, pred, thr).mAP
    assert np.allclose(got, reference_map(gt, pred, thr), rtol=0, atol=1e-12)


def test_zero_length_segments_are_kept_as_the_reference_does(tmp_path):
    ann = {"database": {"v": {"duration": 30, "subset": "test", "annotations": [
        {"segment": [0, 10], "label": "a"}, {"segment": [20, 20], "label": "a"}]}}}
    (tmp_path / "gt.json").write_text(json.dumps(ann))
    (tmp_path / "p.json").write_text(json.dumps({"results": {"v": [
        {"segment": [0, 10], "label": "a", "score": 0.9}, {"segment": [5, 5], "label": "a", "score": 0.5}]}}))
    gt, pred = load_ground_truth(tmp_path / "gt.json", "test"), load_predictions(tmp_path / "p.json")
    assert len(gt) == 2 and len(pred) == 2
    # the zero-length event counts in the recall but no prediction reaches it: AP = 1/2 at every threshold
    assert evaluate_detection(gt, pred).average_map == pytest.approx(0.5)
    ann["database"]["v"]["annotations"][1]["segment"] = [20, 19]
    (tmp_path / "gt.json").write_text(json.dumps(ann))
    with pytest.raises(FormatError, match=r"\['v'\]\.annotations\[1\]: segment \[20, 19\].*end >= start"):
        load_ground_truth(tmp_path / "gt.json", "test")


def test_detect_eval_does_not_import_torch(tmp_path):
    _write_one_video_gt(tmp_path / "gt.json")
    pred = {"results": {"v": [{"segment": [0, 6], "label": "a", "score": 1}]}}
    (tmp_path / "p.json").write_text(json.dumps(pred))
    code = (
        "import sys\n"
        "from avloc.tools.cli import main\n"
        f"assert main(['detect-eval', '--annotations', {str(tmp_path / 'gt.json')!r}, "
        f"'--predictions', {str(tmp_path / 'p.json')!r}]) == 0\n"
        "heavy = sorted(m for m in sys.modules if m.split('.')[0] == 'torch' or m == 'avloc.registry')\n"
        "assert not heavy, heavy\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert "| 0.10 |" in done.stdout


def test_cli_detect_eval(tmp_path, capsys):
    from avloc.tools.cli import main

    _write_one_video_gt(tmp_path / "gt.json")
    (tmp_path / "p.json").write_text(
        json.dumps({"results": {"v": [{"segment": [0, 6], "label": "a", "score": 1}]}})
    )
    args = [
        "detect-eval",
        "--annotations",
        str(tmp_path / "gt.json"),
        "--predictions",
        str(tmp_path / "p.json"),
    ]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["mAP@0.60"] == 1.0 and out["mAP@0.70"] == 0.0 and out["average_mAP"] == pytest.approx(6 / 9)
    assert main([*args, "--tiou", "anet"]) == 0 and "| 0.95 | Avg |" in capsys.readouterr().out
    (tmp_path / "p.json").write_text("[]")
    assert main(args) == 2 and "'results'" in capsys.readouterr().err
