"""The `unav` / `anet` datasets: layout, batches, time grid, A/V alignment and every DataError."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from avloc.data.base import DataError
from avloc.formats.activitynet import FormatError
from avloc.data.unav import grid_to_seconds, resample
from avloc.catalog import DATASETS
from avloc.registry import ConfigError

STRIDE, FRAMES, FPS = 8, 24, 25.0


def steps(duration: float) -> int:
    return (int(duration * FPS) - FRAMES) // STRIDE + 1


def make(root: Path, db: dict, dims=(16, 8, 4), lengths: dict | None = None, seed: int = 0) -> Path:
    """Write a tiny UnAV layout: rgb (T, dims[0]), flow (T, dims[1]), vggish (T, dims[2])."""
    rng = np.random.default_rng(seed)
    (root / "av_features").mkdir(parents=True, exist_ok=True)
    (root / "unav100_annotations.json").write_text(json.dumps({"version": "t", "database": db}))
    for vid, e in db.items():
        t = (lengths or {}).get(vid, max(1, steps(max(e["duration"], 1.0))))
        for suf, d in zip(("_rgb.npy", "_flow.npy", "_vggish.npy"), dims):
            np.save(root / "av_features" / f"{vid}{suf}", rng.standard_normal((t, d)).astype(np.float32))
    return root


def ann(s, e, label, lid=None):
    a = {"segment": [s, e], "label": label}
    if lid is not None:
        a["label_id"] = lid
    return a


DB = {
    "a": {"duration": 10.0, "subset": "train", "annotations": [ann(0, 4, "dog", 1), ann(2, 9, "cat", 0)]},
    "b": {"duration": 20.0, "subset": "train", "annotations": [ann(5, 6, "dog", 1)]},
    "c": {"duration": 12.0, "subset": "validation", "annotations": [ann(1, 12, "cat", 0)]},
    "d": {"duration": 15.0, "subset": "test", "annotations": [ann(3, 7, "dog", 1), ann(8, 9, "dog", 1)]},
    "x": {"duration": 15.0, "subset": "other", "annotations": [ann(3, 7, "dog", 1)]},
}


def build(root, **fields):
    return DATASETS.create({"name": "unav", **fields}, root)


def test_layout_batch_and_metadata(tmp_path):
    d = build(make(tmp_path, DB))
    assert d.task == "dense" and d.class_names == ["cat", "dog"]  # sorted by label_id
    assert {k: v.tolist() for k, v in d.splits.items()} == {"train": [0, 1], "val": [2], "test": [3]}
    assert d.model_dims() == {"audio_dim": 4, "visual_dim": 24, "num_classes": 2}
    b = d.batch(torch.tensor([0, 1]))
    t0, t1 = steps(10.0), steps(20.0)
    assert b["audio"].shape == (2, t1, 4) and b["visual"].shape == (2, t1, 24)
    assert b["audio"].dtype == torch.float32 and b["mask"].dtype == torch.bool
    assert b["mask"].sum(1).tolist() == [t0, t1]
    assert torch.all(b["audio"][0, t0:] == 0) and torch.all(b["visual"][0, t0:] == 0)
    assert b["video_labels"].tolist() == [[1.0, 1.0], [0.0, 1.0]] and b["index"].tolist() == [0, 1]
    rgb = np.load(tmp_path / "av_features" / "a_rgb.npy")
    assert np.allclose(b["visual"][0, :t0, :16].numpy(), rgb)
    # time grid (ActionFormer): centre of step i = (i * stride + num_frames / 2) / fps
    assert d.step_sec[0] == pytest.approx(0.32) and d.offset_sec[0] == pytest.approx(0.48)
    assert d.seconds(np.array([0, 0]), np.array([0, 3])).tolist() == pytest.approx([0.48, 0.48 + 3 * 0.32])
    assert d.seconds(np.array([0]), np.array([1000]))[0] == 10.0  # clipped to the duration
    assert grid_to_seconds(3, STRIDE, FRAMES, FPS) == pytest.approx((24 + 12) / 25)
    gt = d.ground_truth("test")
    assert gt.video.tolist() == [3, 3] and gt.label.tolist() == [1, 1] and gt.start.tolist() == [3, 8]


def test_audio_of_other_length_is_resampled_onto_the_visual_grid(tmp_path):
    root = make(tmp_path, {"a": DB["a"], "c": DB["c"], "d": DB["d"]})
    t = steps(10.0)
    short = np.linspace(0, 1, 10, dtype=np.float32)[:, None].repeat(4, 1)  # VGGish at a 3x longer hop
    np.save(root / "av_features" / "a_vggish.npy", short)
    d = build(root)
    a = d.batch(torch.tensor([0]))["audio"][0]
    assert a.shape == (t, 4)
    assert np.allclose(a[:, 0].numpy(), np.linspace(0, 1, t), atol=1e-6)  # linear over the same span
    assert np.allclose(resample(short, 10), short)


def test_long_videos_resample_or_truncate(tmp_path):
    root = make(tmp_path, DB)
    t_b = steps(20.0)
    d = build(root, max_seq_len=20)
    assert int(d.lengths[1]) == 20 and d.step_sec[1] == pytest.approx(0.32 * (t_b - 1) / 19)
    assert d.seconds(np.array([1]), np.array([19]))[0] == pytest.approx(min(20.0, 0.48 + 0.32 * (t_b - 1)))
    d2 = build(root, max_seq_len=20, long_policy="truncate")
    assert int(d2.lengths[1]) == 20 and d2.step_sec[1] == pytest.approx(0.32)
    with pytest.raises(ConfigError, match="long_policy"):
        build(root, long_policy="crop")


def test_anet_names_and_classes_without_ids(tmp_path):
    db = {
        "v1": {
            "duration": 10.0,
            "subset": "training",
            "annotations": [ann(0, 4, "Zumba"), ann(1, 2, "Archery")],
        },
        "v2": {"duration": 10.0, "subset": "validation", "annotations": [ann(0, 9, "Zumba")]},
    }
    root = make(tmp_path, db)
    d = DATASETS.create(
        {
            "name": "anet",
            "annotations": "unav100_annotations.json",
            "visual_suffixes": ["_rgb.npy"],
            "audio_suffixes": ["_vggish.npy"],
            "feat_stride": STRIDE,
            "num_frames": FRAMES,
            "fps": FPS,
            "visual_dim": 16,
            "audio_dim": 4,
        },
        root,
    )
    assert d.class_names == ["Archery", "Zumba"]  # no label_id: sorted by name
    assert d.splits["val"].tolist() == d.splits["test"].tolist() == [1]


def test_limit_and_skip_missing(tmp_path):
    root = make(tmp_path, DB)
    assert build(root, limit=1).splits["train"].tolist() == [0]
    (root / "av_features" / "b_flow.npy").unlink()
    d = build(root, skip_missing=True)
    assert d.num_missing == 1 and d.video_ids == ["a", "c", "d"]
    with pytest.raises(DataError, match=r"b_flow\.npy: visual feature file missing"):
        build(root)


@pytest.mark.parametrize(
    "corrupt, match",
    [
        (
            lambda r: np.save(r / "av_features/a_rgb.npy", np.zeros((steps(10), 5), np.float32)),
            r"a_rgb\.npy.*dim 5\+8",
        ),
        (
            lambda r: np.save(r / "av_features/b_vggish.npy", np.zeros((0, 4), np.float32)),
            r"b_vggish\.npy.*non-empty",
        ),
        (
            lambda r: np.save(r / "av_features/b_vggish.npy", np.zeros(7, np.float32)),
            r"b_vggish\.npy.*\(T, D\)",
        ),
        (
            lambda r: np.save(r / "av_features/c_flow.npy", np.full((steps(12), 8), np.nan, np.float32)),
            r"c_flow.*NaN",
        ),
        (lambda r: (r / "av_features/c_flow.npy").write_text("junk"), r"c_flow\.npy: cannot read"),
        (
            lambda r: np.save(r / "av_features/d_rgb.npy", np.zeros((3 * steps(15), 16), np.float32)),
            r"d_rgb\.npy.*wrong feature preset",
        ),
    ],
)
def test_bad_features(tmp_path, corrupt, match):
    root = make(tmp_path, DB)
    corrupt(root)
    with pytest.raises(DataError, match=match):
        build(root, visual_dim=24, audio_dim=4)


def test_inferred_dims_must_agree_across_videos(tmp_path):
    root = make(tmp_path, DB)
    np.save(root / "av_features/b_vggish.npy", np.zeros((steps(20), 6), np.float32))
    with pytest.raises(
        DataError, match=r"b_vggish\.npy: audio features have dim 6 = 6, expected 4 \(as in .*a_vggish"
    ):
        build(root)


def with_entry(vid: str, entry) -> dict:
    return {**DB, vid: entry}


@pytest.mark.parametrize(
    "db, fields, error, match",
    [
        (
            with_entry("a", {"duration": 10.0, "subset": "train", "annotations": [ann(0, 11, "dog", 1)]}),
            {},
            DataError, r"database\['a'\]\.annotations\[0\].*outside the video \[0, 10.0\]",
        ),
        (
            with_entry("a", {"duration": 10.0, "subset": "train", "annotations": [ann(5, 4, "dog", 1)]}),
            {},
            FormatError,
            r"annotations\[0\]: segment \[5, 4\] must be finite with end >= start",
        ),
        (
            with_entry("a", {"duration": -1, "subset": "train", "annotations": []}),
            {},
            FormatError, "duration must be a positive",
        ),
        (
            with_entry("a", {"duration": 10.0, "subset": "train", "annotations": [ann(0, 4, "bird", 2)]}),
            {"class_names": ["cat", "dog"]},
            DataError, "unknown label 'bird'",
        ),
        (
            with_entry("a", {"duration": 10.0, "subset": "train", "annotations": [ann(0, 4, "dog", 7)]}),
            {},
            FormatError, "label 'dog' has label_id",
        ),
        (
            with_entry(
                "a",
                {
                    "duration": 10.0,
                    "subset": "train",
                    "annotations": [{"segment": [0, "x"], "label": "dog", "label_id": 1}],
                },
            ),
            {},
            FormatError, "two finite numbers",
        ),
        (DB, {"test_subset": "testing"}, DataError, r"no video in subset 'testing' \(test split\)"),
    ],
)
def test_bad_annotations(tmp_path, db, fields, error, match):
    with pytest.raises(error, match=match):
        build(make(tmp_path, db), **fields)


def test_zero_length_event_is_kept_as_detect_eval_keeps_it(tmp_path):
    db = with_entry("a", {"duration": 10.0, "subset": "train", "annotations": [ann(5, 5, "dog", 1)]})
    d = build(make(tmp_path, db))
    assert (d.gt_start[d.gt_video == 0].tolist(), d.gt_end[d.gt_video == 0].tolist()) == ([5.0], [5.0])
    assert d.video_labels[0].tolist() == [0.0, 1.0]


def test_annotation_within_tolerance_is_clipped(tmp_path):
    db = with_entry("a", {"duration": 10.0, "subset": "train", "annotations": [ann(-0.2, 10.3, "dog", 1)]})
    d = build(make(tmp_path, db))
    assert (d.gt_start[d.gt_video == 0].tolist(), d.gt_end[d.gt_video == 0].tolist()) == ([0.0], [10.0])


def test_malformed_json_and_missing_file(tmp_path):
    root = make(tmp_path, DB)
    (root / "unav100_annotations.json").write_text("{oops")
    with pytest.raises(FormatError, match="unav100_annotations.json: not valid JSON"):
        build(root)
    (root / "unav100_annotations.json").write_text(json.dumps({"database": []}))
    with pytest.raises(FormatError, match="'database'"):
        build(root)
    with pytest.raises(FormatError, match="annotation file not found"):
        build(root, annotations="nope.json")
