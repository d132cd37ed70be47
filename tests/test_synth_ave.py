"""The synthetic AVE writer: official layout, byte-exact determinism, AVE-like statistics, learnability."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from avloc.data import synth_ave as S
from avloc.data.ave_labels import AVE_CLASSES, BACKGROUND, read_annotations
from avloc.catalog import DATASETS

FILES = (
    "Annotations.txt", "audio_feature.h5", "visual_feature.h5", "labels.h5", "labels_closs.h5",
    "mil_labels.h5",
    "train_order.h5", "val_order.h5", "test_order.h5",
    "audio_feature_noisy.h5", "visual_feature_noisy.h5", "labels_noisy.h5",
)


def test_same_seed_same_bytes_other_seed_differs(tmp_path: Path) -> None:
    for name, seed in (("a", 0), ("b", 0), ("c", 1)):
        S.write_synthetic_ave(tmp_path / name, videos=24, seed=seed, dtype="float32")
    for f in FILES:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    for f in ("Annotations.txt", "audio_feature.h5", "visual_feature.h5", "train_order.h5"):
        assert (tmp_path / "a" / f).read_bytes() != (tmp_path / "c" / f).read_bytes(), f


def test_official_layout_keys_shapes_and_dtypes(tmp_path: Path) -> None:
    S.write_synthetic_ave(tmp_path, videos=8, seed=3, noisy=2)  # default dtype float64, as officially
    expect = {
        "audio_feature.h5": ((8, 10, 128), "f8"), "visual_feature.h5": ((8, 10, 7, 7, 512), "f8"),
        "labels.h5": ((8, 10, 29), "f4"), "labels_closs.h5": ((8, 10), "f4"),
        "mil_labels.h5": ((8, 29), "f4"),
        "audio_feature_noisy.h5": ((2, 10, 128), "f8"), "visual_feature_noisy.h5": ((2, 10, 7, 7, 512), "f8"),
        "labels_noisy.h5": ((2, 29), "f4"),
    }
    for name, (shape, dtype) in expect.items():
        with h5py.File(tmp_path / name) as f:
            assert list(f) == ["avadataset"], name
            assert f["avadataset"].shape == shape and f["avadataset"].dtype == np.dtype(dtype), name
            if name.startswith(("audio", "visual")):
                x = f["avadataset"][()]
                assert x.min() == 0 and np.isfinite(x).all() and x.max() > 1  # ReLU-like, non-negative
    orders = []
    for split in ("train", "val", "test"):
        with h5py.File(tmp_path / f"{split}_order.h5") as f:
            assert list(f) == ["order"] and f["order"].dtype == np.int64
            orders.append(f["order"][()])
    assert sorted(np.concatenate(orders).tolist()) == list(range(8))
    lines = (tmp_path / "Annotations.txt").read_text().splitlines()
    assert len(lines) == 8 and lines[0].split("&")[1:3] == ["syn00001", "good"]
    with h5py.File(tmp_path / "labels_noisy.h5") as f:
        assert (f["avadataset"][()].argmax(1) == BACKGROUND).all()


def test_no_noisy_files_when_noisy_is_zero(tmp_path: Path) -> None:
    S.write_synthetic_ave(tmp_path, videos=4, seed=0, dtype="float32", noisy=0)
    assert not list(tmp_path.glob("*noisy*")) and (tmp_path / "visual_feature.h5").is_file()


def test_counts_follow_the_official_dataset() -> None:
    assert S.split_sizes(4143) == (3339, 402, 402)
    assert S.split_sizes(40) == (32, 4, 4) and S.split_sizes(3) == (1, 1, 1)
    assert tuple(S.class_counts(4143)) == S.AVE_CLASS_COUNTS and sum(S.AVE_CLASS_COUNTS) == 4143
    assert S.class_counts(100).sum() == 100 and S.class_counts(28).tolist() == [1] * 28
    assert [S.default_noisy(v) for v in (4143, 400, 20, 19, 5)] == [178, 17, 2, 1, 0]


def test_intervals_are_sampled_like_ave() -> None:
    start, end = S._intervals(np.random.default_rng(0), 20_000)
    length = end - start
    full = (start == 0) & (end == 10)
    assert full.mean() == pytest.approx(2750 / 4143, abs=0.02)
    assert (length >= 2).all() and (start >= 0).all() and (end <= 10).all()
    assert set(np.unique(length[~full]).tolist()) == set(range(2, 10))


def test_background_segments_include_single_modality_events() -> None:
    """Labels are 'audible AND visible'; some background segments are audible-only or visible-only."""
    rng = np.random.default_rng(1)
    n = 3000
    cat = rng.integers(0, BACKGROUND, n)
    start, end = S._intervals(rng, n)
    v = S._draw_videos(rng, cat, start, end, noisy=20)
    t = np.arange(10)
    inside = (t >= start[:, None]) & (t < end[:, None])
    both = v["on_a"] & v["on_v"]
    assert np.array_equal(both[:n], inside) and not both[n:].any()
    bg = ~inside
    audio_only = (v["on_a"][:n] & bg).sum() / bg.sum()
    visual_only = (v["on_v"][:n] & bg).sum() / bg.sum()
    assert 0.1 < audio_only < 0.4 and 0.1 < visual_only < 0.4
    assert (v["sec_cls"][n:] >= BACKGROUND).all() and v["sec_a"][n:].any(1).all()  # noisy: OOV events only
    assert (v["g_a"] < 0.6).mean() > 0.15 and (v["g_a"] > 0.6).mean() > 0.6  # hard and easy videos


def test_loader_reads_the_synthetic_layout(tiny_ave_dir: Path) -> None:
    fully = DATASETS.create({"name": "ave"}, tiny_ave_dir)
    weak = DATASETS.create({"name": "ave", "setting": "weak"}, tiny_ave_dir)
    assert {k: len(v) for k, v in fully.splits.items()} == {"train": 32, "val": 4, "test": 4}
    assert len(weak.splits["train"]) == 34 and len(weak) == 42
    ann = read_annotations(tiny_ave_dir / "Annotations.txt")
    assert fully.video_ids == ann.video_ids and {AVE_CLASSES[c] for c in ann.category} <= set(AVE_CLASSES)
    assert torch.equal(fully.tensors["video_class"], torch.from_numpy(ann.category))
    assert (fully.audio >= 0).all() and (fully.visual >= 0).all()
    assert (weak.tensors["segment_labels"][40:] == BACKGROUND).all()


def test_learnable_but_not_trivial() -> None:
    """Ridge probes fit on 2/3 of 168 videos (6 per class), scored on the rest (video class, 28-way; chance
    3.6%): audio alone and visual alone (a per-cell filter, max over the 7x7 cells) beat chance clearly,
    both together beat either by a wide margin, and nothing is perfect."""
    per = 6
    n = 28 * per
    rng = np.random.default_rng(3)
    cat = np.repeat(np.arange(BACKGROUND), per)
    start, end = S._intervals(rng, n)
    v = S._draw_videos(rng, cat, start, end, noisy=0)
    world = S.make_world()
    parts = [S._render(world, {k: x[c : c + S.CHUNK_VIDEOS] for k, x in v.items()}, np.random.default_rng(c))
             for c in range(0, n, S.CHUNK_VIDEOS)]
    audio = np.concatenate([p[0] for p in parts])  # (n, 10, 128)
    visual = np.concatenate([p[1] for p in parts]).reshape(n, 10, 49, 512)
    event = (np.arange(10) >= start[:, None]) & (np.arange(10) < end[:, None])
    train = np.arange(n) % 3 != 0
    onehot = np.eye(BACKGROUND, dtype=np.float32)[cat]
    mid = (start + end - 1) // 2  # one event segment per training video keeps the visual fit small

    def ridge(x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        mu = x.mean(0)
        xc = x - mu
        return np.linalg.solve(xc.T @ xc + 10.0 * np.eye(x.shape[1], dtype=np.float32), xc.T @ y), mu

    w_a, mu_a = ridge(audio[train, mid[train]], onehot[train])
    w_v, mu_v = ridge(visual[train, mid[train]].reshape(-1, 512), np.repeat(onehot[train], 49, 0))
    score_a = (audio - mu_a) @ w_a  # (n, 10, 28)
    score_v = ((visual - mu_v) @ w_v).max(2)  # best cell per segment

    def accuracy(score: np.ndarray) -> float:
        pooled = (score * event[..., None]).sum(1) / event.sum(1, keepdims=True)
        return float((pooled.argmax(1) == cat)[~train].mean())

    def z(s: np.ndarray) -> np.ndarray:
        return (s - s[train].mean()) / s[train].std()

    acc_a, acc_v, acc_av = accuracy(score_a), accuracy(score_v), accuracy(z(score_a) + z(score_v))
    print(f"video-class accuracy: audio {acc_a:.2f}, visual {acc_v:.2f}, both {acc_av:.2f}")
    assert acc_a > 0.25 and acc_v > 0.25, (acc_a, acc_v)
    assert acc_av > max(acc_a, acc_v) + 0.1, (acc_a, acc_v, acc_av)
    assert acc_av < 0.98, acc_av
