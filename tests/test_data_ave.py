"""The AVE loader: official layout, label rebuild (vs the real files), noisy videos, and every bad input."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from avloc.data import ave_files
from avloc.data.ave import AVEDataset
from avloc.data.ave_labels import (
    AVE_CLASSES,
    BACKGROUND,
    event_mask,
    mil_labels,
    one_hot_labels,
    prob_label,
    read_annotations,
    segment_labels,
    write_annotations,
)
from avloc.data.base import DataError
from avloc.catalog import DATASETS
from avloc.registry import ConfigError

N, GRID, VDIM = 12, 2, 16  # tiny layout: 12 videos, 2x2 visual grid of 16-d features
KEY = "avadataset"


def _h5(path: Path, data: np.ndarray, key: str = KEY) -> None:
    with h5py.File(path, "w") as f:
        f.create_dataset(key, data=data)


def write_tiny(root: Path, n: int = N, seed: int = 0, noisy: int = 0) -> dict[str, np.ndarray]:
    """Official file names and keys with tiny float64 features; no label files (the loader rebuilds them)."""
    rng = np.random.default_rng(seed)
    root.mkdir(parents=True, exist_ok=True)
    cat = rng.integers(0, BACKGROUND, n)
    start = rng.integers(0, 5, n)
    end = start + rng.integers(2, 6, n)
    write_annotations(root / "Annotations.txt", cat, [f"vid{i:03d}" for i in range(n)], start, end)
    audio = rng.random((n, 10, 128))
    visual = rng.random((n, 10, GRID, GRID, VDIM))
    _h5(root / "audio_feature.h5", audio)
    _h5(root / "visual_feature.h5", visual)
    perm = rng.permutation(n)
    n_val = max(1, n // 6)
    _h5(root / "train_order.h5", perm[: n - 2 * n_val], "order")
    _h5(root / "val_order.h5", perm[n - 2 * n_val : n - n_val], "order")
    _h5(root / "test_order.h5", perm[n - n_val :], "order")
    out = {"audio": audio, "visual": visual, "cat": cat, "start": start, "end": end, "perm": perm}
    if noisy:
        out["audio_noisy"] = rng.random((noisy, 10, 128))
        _h5(root / "audio_feature_noisy.h5", out["audio_noisy"])
        _h5(root / "visual_feature_noisy.h5", rng.random((noisy, 10, GRID, GRID, VDIM)))
        bg = np.zeros((noisy, 29), np.float32)
        bg[:, BACKGROUND] = 1
        _h5(root / "labels_noisy.h5", bg)
    return out


def load(root: Path, **cfg: object) -> AVEDataset:
    return DATASETS.create({"name": "ave", **cfg}, root)


# ------------------------------------------------------------------------------------------ the happy path
def test_loads_tiny_layout_as_float32(tmp_path: Path) -> None:
    src = write_tiny(tmp_path)
    ds = load(tmp_path)
    assert ds.task == "ave" and len(ds) == N
    assert ds.audio.dtype == torch.float32 and ds.visual.shape == (N, 10, GRID, GRID, VDIM)
    assert torch.equal(ds.audio, torch.from_numpy(src["audio"].astype(np.float32)))
    assert torch.equal(ds.visual, torch.from_numpy(src["visual"].astype(np.float32)))
    assert sorted(torch.cat(list(ds.splits.values())).tolist()) == list(range(N))
    assert torch.equal(ds.splits["test"], torch.from_numpy(src["perm"][-2:]))
    assert ds.video_ids[3] == "vid003" and ds.class_names[BACKGROUND] == "background"
    dims = {"audio_dim": 128, "visual_dim": VDIM, "att_regions": GRID * GRID, "num_classes": 29}
    assert ds.model_dims() == dims


def test_batch_keys_shapes_and_labels(tmp_path: Path) -> None:
    src = write_tiny(tmp_path)
    ds = load(tmp_path)
    idx = torch.tensor([5, 0, 5])
    b = ds.batch(idx)
    shapes = {k: tuple(v.shape) for k, v in b.items()}
    assert shapes == {
        "audio": (3, 10, 128), "visual": (3, 10, GRID, GRID, VDIM), "labels": (3, 10, 29),
        "segment_labels": (3, 10), "event_mask": (3, 10), "video_label": (3, 29), "video_class": (3,),
        "prob_label": (3, 29),
    }
    assert b["segment_labels"].dtype == torch.long and b["video_class"].dtype == torch.long
    assert torch.equal(b["audio"][0], b["audio"][2]) and torch.equal(b["audio"][1], ds.audio[0])
    s, e, c = int(src["start"][5]), int(src["end"][5]), int(src["cat"][5])
    expect = torch.full((10,), BACKGROUND)
    expect[s:e] = c
    assert torch.equal(b["segment_labels"][0], expect)
    assert torch.equal(b["labels"][0].argmax(-1), expect)
    assert torch.equal(b["event_mask"][0], (expect != BACKGROUND).float())
    assert int(b["video_class"][0]) == c and b["video_label"][0].argmax() == c
    assert b["prob_label"][0, c] == pytest.approx((e - s) / 10)
    assert b["prob_label"][0].sum() == pytest.approx(1)


def test_chunked_and_subset_reads_equal_whole_reads(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    src = write_tiny(tmp_path)
    monkeypatch.setattr(ave_files, "CHUNK_BYTES", 3 * 10 * 128 * 8)  # 3 rows per read
    rows = np.array([0, 1, 2, 3, 7, 9, 10])
    part = ave_files.load_features(tmp_path / "audio_feature.h5", KEY, (10, 128), rows=rows)
    assert torch.equal(part, torch.from_numpy(src["audio"][rows].astype(np.float32)))
    whole = ave_files.load_features(tmp_path / "audio_feature.h5", KEY, (10, 128))
    assert torch.equal(whole, torch.from_numpy(src["audio"].astype(np.float32)))


def test_max_videos_keeps_a_split_proportional_prefix(tmp_path: Path) -> None:
    src = write_tiny(tmp_path, n=24)
    full = load(tmp_path)
    ds = load(tmp_path, max_videos=12)
    sizes = {k: len(v) for k, v in ds.splits.items()}
    assert sizes == {"train": 8, "val": 2, "test": 2} and len(ds) == 12
    for name in ("train", "val", "test"):
        rows = ds.source_rows[ds.splits[name]]
        assert torch.equal(rows, full.splits[name][: sizes[name]])  # full keeps every row in place
        assert torch.equal(ds.audio[ds.splits[name]], torch.from_numpy(src["audio"][rows.numpy()]).float())
        assert torch.equal(ds.batch(ds.splits[name])["segment_labels"], full.batch(rows)["segment_labels"])


def test_label_files_are_preferred_and_checked(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    write_tiny(tmp_path)
    rebuilt = load(tmp_path)
    labels = rebuilt.tensors["labels"].numpy().copy()
    labels[4, :, :] = 0
    labels[4, :, 3] = 1  # AVE issue #10: the h5 row disagrees with its annotation line
    _h5(tmp_path / "labels.h5", labels)
    _h5(tmp_path / "labels_closs.h5", rebuilt.tensors["event_mask"].numpy())
    _h5(tmp_path / "mil_labels.h5", rebuilt.tensors["video_label"].numpy())
    with caplog.at_level(logging.WARNING, logger="avloc.data.ave"):
        ds = load(tmp_path)
    assert "1 rows differ" in caplog.text
    assert torch.equal(ds.tensors["segment_labels"][4], torch.full((10,), 3))
    for key in ("event_mask", "video_label", "video_class", "prob_label"):
        assert torch.equal(ds.tensors[key], rebuilt.tensors[key]), key


# ------------------------------------------------------------------------------------------ weak setting
def test_weak_appends_noisy_videos_to_train_only(tmp_path: Path) -> None:
    src = write_tiny(tmp_path, noisy=3)
    fully = load(tmp_path)
    weak = load(tmp_path, setting="weak")
    assert len(fully) == N and len(weak) == N + 3
    assert weak.splits["train"][-3:].tolist() == [N, N + 1, N + 2]
    for name in ("val", "test"):
        assert torch.equal(weak.splits[name], fully.splits[name])
    b = weak.batch(torch.arange(N, N + 3))
    assert torch.equal(b["audio"], torch.from_numpy(src["audio_noisy"]).float())
    assert (b["segment_labels"] == BACKGROUND).all() and (b["video_class"] == BACKGROUND).all()
    assert (b["event_mask"] == 0).all() and (b["prob_label"][:, BACKGROUND] == 1).all()
    assert torch.equal(b["video_label"], b["prob_label"])
    assert weak.video_ids[N:] == ["noisy000", "noisy001", "noisy002"]
    assert len(load(tmp_path, setting="weak", use_noisy=False)) == N


def test_weak_without_noisy_files_logs_and_continues(tmp_path: Path,
                                                     caplog: pytest.LogCaptureFixture) -> None:
    write_tiny(tmp_path)
    with caplog.at_level(logging.WARNING, logger="avloc.data.ave"):
        ds = load(tmp_path, setting="weak")
    assert len(ds) == N and "no noisy background videos" in caplog.text


def test_noisy_reader_on_the_real_vggish_file(tmp_path: Path, shared_dir: Path) -> None:
    """The real 178 VGGish noisy rows + real labels_noisy.h5, with a matching tiny visual file."""
    real = shared_dir / "data" / "ave"
    write_tiny(tmp_path)
    for name in ("audio_feature_noisy.h5", "labels_noisy.h5"):
        os.symlink(real / name, tmp_path / name)
    _h5(tmp_path / "visual_feature_noisy.h5", np.ones((178, 10, GRID, GRID, VDIM)))
    ds = load(tmp_path, setting="weak")
    assert len(ds) == N + 178 and len(ds.splits["train"]) == N - 4 + 178
    with h5py.File(real / "audio_feature_noisy.h5") as f:
        expect = torch.from_numpy(f[KEY][()]).float()
    assert torch.equal(ds.audio[N:], expect) and float(expect.max()) > 4  # real, non-negative VGGish
    assert (ds.tensors["video_class"][N:] == BACKGROUND).all()
    assert len(load(tmp_path, setting="weak", max_videos=6)) == 6 + round(178 * 6 / N)


# ------------------------------------------------------------------------------------------ real labels
def test_rebuild_equals_the_real_label_files(shared_dir: Path) -> None:
    real = shared_dir / "data" / "ave"
    ann = read_annotations(real / "Annotations.txt")
    assert len(ann) == 4143 and len(set(ann.video_ids)) == 4097
    assert [AVE_CLASSES[c] for c in dict.fromkeys(ann.category.tolist())] == list(AVE_CLASSES)
    assert ann.video_ids[26] == "VWi2ENBuTbw" and ann.start[26] == ann.end[26] == 0  # the 0-length row
    with h5py.File(real / "labels_closs.h5") as f:
        closs = torch.from_numpy(f[KEY][()])
    with h5py.File(real / "mil_labels.h5") as f:
        mil = torch.from_numpy(f[KEY][()])
    assert torch.equal(event_mask(ann), closs)
    assert torch.equal(mil_labels(ann), mil)
    seg = segment_labels(ann)
    assert torch.equal(one_hot_labels(seg)[..., :BACKGROUND].amax(-1), closs)
    assert (seg[26] == BACKGROUND).all()
    prob = prob_label(torch.from_numpy(ann.category), closs)
    assert torch.allclose(prob.sum(1), torch.ones(4143)) and prob[26, BACKGROUND] == 1
    assert (seg == BACKGROUND).float().mean().item() == pytest.approx(0.171, abs=0.002)


def test_real_split_files(shared_dir: Path) -> None:
    real = shared_dir / "data" / "ave"
    orders = [ave_files.read_order(real / f"{s}_order.h5") for s in ("train", "val", "test")]
    assert [len(o) for o in orders] == [3339, 402, 402]
    assert sorted(np.concatenate(orders).tolist()) == list(range(4143))


# ------------------------------------------------------------------------------------------ bad input
def _annotation_error(tmp_path: Path, lines: list[str]) -> str:
    write_tiny(tmp_path)
    ann = tmp_path / "Annotations.txt"
    text = ann.read_text().splitlines()
    text[4:5] = lines
    ann.write_text("\n".join(text) + "\n")
    with pytest.raises(DataError) as err:
        load(tmp_path)
    return str(err.value)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("Bark&abc&good&0", "Annotations.txt:5: expected 5 '&'-separated fields"),
        ("Barking&abc&good&0&10", "Annotations.txt:5: unknown AVE class name 'Barking'"),
        ("Bark&abc&good&0&ten", "Annotations.txt:5: start/end must be integer seconds"),
        ("Bark&abc&good&6&3", "Annotations.txt:5: need 0 <= start <= end <= 10"),
        ("Bark&abc&good&0&11", "Annotations.txt:5: need 0 <= start <= end <= 10"),
        ("Bark&&good&0&10", "Annotations.txt:5: empty video id"),
    ],
)
@pytest.mark.reliability
def test_malformed_annotation_line_names_file_and_line(tmp_path: Path, line: str, message: str) -> None:
    assert message in _annotation_error(tmp_path, [line])


def test_annotation_header_and_trailing_blank_lines_are_accepted(tmp_path: Path) -> None:
    write_tiny(tmp_path)
    ann = tmp_path / "Annotations.txt"
    ann.write_text("Category&VideoID&Quality&StartTime&EndTime\n" + ann.read_text() + "\n\n")
    assert len(read_annotations(ann)) == N
    assert len(load(tmp_path)) == N


@pytest.mark.reliability
def test_blank_line_in_the_middle_is_malformed(tmp_path: Path) -> None:
    assert "Annotations.txt:5: expected 5" in _annotation_error(tmp_path, [""])


@pytest.mark.reliability
def test_extra_annotation_lines_mean_row_counts_disagree(tmp_path: Path) -> None:
    msg = _annotation_error(tmp_path, ["Bark&abc&good&0&10", "Bark&abd&good&0&10"])
    assert "audio_feature.h5" in msg and f"has {N} rows" in msg and str(N + 1) in msg


def _break(tmp_path: Path, name: str, data: np.ndarray | None = None, key: str = KEY) -> str:
    write_tiny(tmp_path)
    if data is None:
        (tmp_path / name).unlink()
    else:
        _h5(tmp_path / name, data, key)
    with pytest.raises(DataError) as err:
        load(tmp_path)
    assert name in str(err.value)
    return str(err.value)


@pytest.mark.parametrize(
    "name", ["audio_feature.h5", "visual_feature.h5", "Annotations.txt", "test_order.h5"]
)
@pytest.mark.reliability
def test_missing_file(tmp_path: Path, name: str) -> None:
    assert "not found" in _break(tmp_path, name)


@pytest.mark.reliability
def test_missing_key(tmp_path: Path) -> None:
    msg = _break(tmp_path, "audio_feature.h5", np.zeros((N, 10, 128)), key="features")
    assert "no dataset 'avadataset'" in msg and "features" in msg


@pytest.mark.reliability
def test_not_an_hdf5_file(tmp_path: Path) -> None:
    write_tiny(tmp_path)
    (tmp_path / "visual_feature.h5").write_bytes(b"not hdf5 at all")
    with pytest.raises(DataError, match="visual_feature.h5: not a readable HDF5 file"):
        load(tmp_path)


@pytest.mark.parametrize(
    ("name", "data", "message"),
    [
        ("audio_feature.h5", np.zeros((N, 9, 128)), "expected shape (N, 10, D), got (12, 9, 128)"),
        ("visual_feature.h5", np.zeros((N, 10, 512)), "expected shape (N, 10, H, W, D)"),
        ("audio_feature.h5", np.zeros((N, 10, 128), np.int32), "expected a float dataset, got dtype int32"),
        ("visual_feature.h5", np.zeros((N - 1, 10, GRID, GRID, VDIM)), f"has {N - 1} rows but"),
        ("labels.h5", np.zeros((N, 10, 28)), "expected shape (12, 10, 29)"),
        ("labels.h5", np.zeros((N, 10, 29)), "labels must be one-hot"),
        ("labels_closs.h5", np.zeros((N + 1, 10)), f"has {N + 1} rows but"),
        ("labels_closs.h5", np.full((N, 10), 0.5), "only 0 and 1"),
        ("mil_labels.h5", np.eye(29)[np.full(N, BACKGROUND)], "row 0 is a background video"),
        ("prob_label.h5", np.full((N, 29), 0.5), "sum to 1"),
        ("train_order.h5", np.array([0.0, 1.0]), "expected a int/uint dataset"),
    ],
)
@pytest.mark.reliability
def test_wrong_shape_dtype_or_content(tmp_path: Path, name: str, data: np.ndarray, message: str) -> None:
    key = "order" if name.endswith("order.h5") else KEY
    assert message in _break(tmp_path, name, data, key)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
@pytest.mark.parametrize("name", ["audio_feature.h5", "visual_feature.h5"])
@pytest.mark.reliability
def test_nan_or_inf_features_name_the_row(tmp_path: Path, name: str, bad: float) -> None:
    src = write_tiny(tmp_path)
    data = src["audio" if name.startswith("audio") else "visual"].copy()
    data[7, 3].flat[5] = bad
    _h5(tmp_path / name, data)
    with pytest.raises(DataError, match=rf"{name}\['avadataset'\]: NaN or inf in row 7"):
        load(tmp_path)


@pytest.mark.reliability
def test_float64_too_large_for_float32_is_reported(tmp_path: Path) -> None:
    src = write_tiny(tmp_path)
    src["audio"][2, 0, 0] = 1e300
    _h5(tmp_path / "audio_feature.h5", src["audio"])
    with pytest.raises(DataError, match="row 2 holds a value beyond float32's range"):
        load(tmp_path)


@pytest.mark.reliability
def test_split_index_out_of_range(tmp_path: Path) -> None:
    msg = _break(tmp_path, "val_order.h5", np.array([0, N]), "order")
    assert f"index {N} is outside the {N} annotation rows" in msg


@pytest.mark.reliability
def test_negative_split_index(tmp_path: Path) -> None:
    assert "index -1 is outside" in _break(tmp_path, "val_order.h5", np.array([-1]), "order")


@pytest.mark.reliability
def test_overlapping_splits(tmp_path: Path) -> None:
    src = write_tiny(tmp_path)
    _h5(tmp_path / "test_order.h5", np.append(src["perm"][-2:], src["perm"][0]), "order")
    with pytest.raises(DataError, match=r"train_order.h5 and .*test_order.h5: splits overlap in 1 rows"):
        load(tmp_path)


@pytest.mark.reliability
def test_duplicate_split_index(tmp_path: Path) -> None:
    src = write_tiny(tmp_path)
    _h5(tmp_path / "val_order.h5", np.array([src["perm"][-3]] * 2), "order")
    with pytest.raises(DataError, match=f"row {src['perm'][-3]} is listed twice"):
        load(tmp_path)


@pytest.mark.reliability
def test_partial_noisy_files(tmp_path: Path) -> None:
    write_tiny(tmp_path, noisy=3)
    (tmp_path / "visual_feature_noisy.h5").unlink()
    match = r"noisy files are incomplete: .*missing \['visual_feature_noisy.h5'\]"
    with pytest.raises(DataError, match=match):
        load(tmp_path, setting="weak")
    assert len(load(tmp_path)) == N  # the fully setting never reads them


@pytest.mark.reliability
def test_noisy_row_counts_disagree(tmp_path: Path) -> None:
    write_tiny(tmp_path, noisy=3)
    _h5(tmp_path / "labels_noisy.h5", np.eye(29)[[BACKGROUND] * 4].astype(np.float32))
    with pytest.raises(DataError, match="noisy files disagree on the number of videos"):
        load(tmp_path, setting="weak")


@pytest.mark.reliability
def test_noisy_feature_dims_must_match(tmp_path: Path) -> None:
    write_tiny(tmp_path, noisy=3)
    _h5(tmp_path / "visual_feature_noisy.h5", np.zeros((3, 10, 7, 7, VDIM)))
    match = r"visual_feature_noisy.h5\['avadataset'\]: shape \(3, 10, 7, 7, 16\) does not match visual_fea"
    with pytest.raises(DataError, match=match):
        load(tmp_path, setting="weak")


@pytest.mark.reliability
def test_noisy_labels_must_be_background(tmp_path: Path) -> None:
    write_tiny(tmp_path, noisy=3)
    _h5(tmp_path / "labels_noisy.h5", np.eye(29)[[BACKGROUND, 2, BACKGROUND]].astype(np.float32))
    with pytest.raises(DataError, match="labels_noisy.h5.*row 1 is not background"):
        load(tmp_path, setting="weak")


@pytest.mark.reliability
def test_missing_folder_and_bad_config(tmp_path: Path) -> None:
    with pytest.raises(DataError, match="AVE data folder not found"):
        load(tmp_path / "nope")
    with pytest.raises(ConfigError, match="setting must be 'fully' or 'weak'"):
        load(tmp_path, setting="semi")
    with pytest.raises(ConfigError, match="unknown key"):
        load(tmp_path, visual_fil="x.h5")


def test_batches_equal_batch_and_reuse_one_memory_across_calls(tmp_path: Path) -> None:
    """Training and evaluation draw batches into the same memory: same data as batch(), no new memory for a
    batch of the same or a smaller size, a larger batch takes over; under inference_mode too."""
    write_tiny(tmp_path)
    ds = load(tmp_path)
    chunks = [torch.tensor(c) for c in ([3, 1, 4, 0], [2, 0, 1, 3], [5, 2], [1, 2, 3, 4])]
    ptrs = []
    for idx, got in zip(chunks, ds.batches(chunks)):
        for k, v in ds.batch(idx).items():
            assert torch.equal(got[k], v), k
        ptrs.append(got["visual"].data_ptr())
    assert len(set(ptrs)) == 1
    larger = next(ds.batches([torch.tensor([0, 1, 2, 3, 4, 5])]))
    assert larger["visual"].shape[0] == 6
    assert next(ds.batches([torch.tensor([5])]))["visual"].data_ptr() == larger["visual"].data_ptr()  # a new call
    with torch.inference_mode():  # evaluation writes the training memory under inference_mode
        assert next(ds.batches([torch.tensor([0, 1])]))["visual"].data_ptr() == larger["visual"].data_ptr()
    fresh = load(tmp_path)
    with torch.inference_mode():
        made_in_inference = next(fresh.batches([torch.tensor([0, 1])]))
    assert made_in_inference["visual"].is_inference()
    after = next(fresh.batches([torch.tensor([2, 3])]))  # outside inference_mode: fresh, writable memory
    assert not after["visual"].is_inference()
    assert torch.equal(after["audio"], fresh.audio[2:4])
