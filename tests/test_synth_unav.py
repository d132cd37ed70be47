"""Synthetic UnAV writer: exact layout, determinism, the real-annotation mode, and the evidence it plants."""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import numpy as np
import pytest

from avloc.data.synth_unav import SynthUnavConfig, num_steps, write_synthetic_unav
from avloc.data.unav import UnAVDataset
from avloc.catalog import DATASETS

SHARED = Path(__file__).resolve().parents[2] / "shared"
UNAV_JSON = SHARED / "data" / "unav100" / "unav100_annotations.json"
SMALL = SynthUnavConfig(num_classes=12, audio_dim=32, rgb_dim=24, flow_dim=16)


def digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(p.relative_to(root).as_posix().encode())
            h.update(p.read_bytes())
    return h.hexdigest()


def test_same_seed_same_bytes_and_other_seed_differs(tmp_path):
    write_synthetic_unav(tmp_path / "a", 30, seed=3, cfg=SMALL)
    write_synthetic_unav(tmp_path / "b", 30, seed=3, cfg=SMALL)
    write_synthetic_unav(tmp_path / "c", 30, seed=4, cfg=SMALL)
    assert digest(tmp_path / "a") == digest(tmp_path / "b") != digest(tmp_path / "c")


def test_layout_loads_with_the_dataset_defaults(tmp_path):
    info = write_synthetic_unav(tmp_path, 40, seed=0, cfg=SMALL)
    assert info["videos"] == 40 and info["visual_dim"] == 40
    d = DATASETS.create({"name": "unav"}, tmp_path)  # default suffixes, I3D grid and grid check
    assert d.model_dims() == {"audio_dim": 32, "visual_dim": 40, "num_classes": 12}
    db = json.loads((tmp_path / "unav100_annotations.json").read_text())["database"]
    for i, vid in enumerate(d.video_ids):
        e = db[vid]
        assert int(d.lengths[i]) == num_steps(e["duration"], SMALL)
        assert SMALL.min_duration <= e["duration"] <= SMALL.max_duration
        assert 1 <= len(e["annotations"]) <= SMALL.max_events
        by_class: dict[int, list] = {}
        for a in e["annotations"]:
            assert 0 <= a["segment"][0] < a["segment"][1] <= e["duration"]
            by_class.setdefault(a["label_id"], []).append(a["segment"])
        for spans in by_class.values():  # same-class events never overlap (as in UnAV-100)
            spans.sort()
            assert all(s2 >= e1 + SMALL.min_gap for (_, e1), (s2, _) in zip(spans, spans[1:]))
    assert sum(len(v) for v in d.splits.values()) == 40


def test_events_in_both_modalities_distractors_in_one(tmp_path):
    cfg = SynthUnavConfig(
        num_classes=8, audio_dim=64, rgb_dim=32, flow_dim=32, p_hard=0.0, distractor_rate=2.0
    )
    write_synthetic_unav(tmp_path, 60, seed=1, cfg=cfg)
    d = UnAVDataset(UnAVDataset.Config(), tmp_path)
    proto = np.load(tmp_path / "synth_prototypes.npz")
    meta = json.loads((tmp_path / "synth_meta.json").read_text())["videos"]
    inside_a, inside_v, dis_on, dis_off, outside = [], [], [], [], []
    for i, vid in enumerate(d.video_ids):
        sl = slice(int(d.offsets[i]), int(d.offsets[i + 1]))
        pa = d.audio[sl].numpy() @ proto["audio"].T  # (T, C) evidence per class
        pv = d.visual[sl].numpy() @ proto["visual"].T
        t = d.offset_sec[i] + np.arange(pa.shape[0]) * d.step_sec[i]
        busy = np.zeros_like(pa, dtype=bool)
        for k in np.nonzero(d.gt_video == i)[0]:
            c, m = d.gt_label[k], (t > d.gt_start[k] + 0.5) & (t < d.gt_end[k] - 0.5)
            inside_a += pa[m, c].tolist()
            inside_v += pv[m, c].tolist()
            busy[(t > d.gt_start[k] - 1) & (t < d.gt_end[k] + 1), c] = True
        for x in meta[vid]["distractors"]:
            c, (s, e) = x["class"], x["segment"]
            m = (t > s + 0.5) & (t < e - 0.5)
            on, off = (pa, pv) if x["modality"] == "audio" else (pv, pa)
            dis_on += on[m, c].tolist()
            dis_off += off[m & ~busy[:, c], c].tolist()
            busy[(t > s - 1) & (t < e + 1), c] = True
        outside += pa[~busy].tolist()
    amp = cfg.event_amp
    assert np.median(inside_a) > 0.6 * amp and np.median(inside_v) > 0.6 * amp
    assert np.median(dis_on) > 0.6 * cfg.distractor_amp  # strong in its own modality ...
    assert abs(np.median(dis_off)) < 0.25 * amp  # ... absent from the other
    assert abs(np.median(outside)) < 0.25 * amp


@pytest.mark.skipif(not UNAV_JSON.is_file(), reason="shared UnAV-100 annotations not available")
def test_real_annotations_mode(tmp_path):
    info = write_synthetic_unav(tmp_path, 50, seed=0, annotations=UNAV_JSON, cfg=SMALL)
    real = json.loads(UNAV_JSON.read_text())["database"]
    db = json.loads((tmp_path / "unav100_annotations.json").read_text())["database"]
    assert len(db) == 50 and all(db[v] == real[v] for v in db)  # real splits, durations, events
    # stratified: 6489 / 2134 / 2167 of 10790 -> 30 / 10 / 10
    assert info["subsets"] == {"train": 30, "validation": 10, "test": 10}
    d = DATASETS.create({"name": "unav"}, tmp_path)
    ids = {a["label"]: a["label_id"] for e in db.values() for a in e["annotations"]}
    assert d.class_names == sorted(ids, key=ids.get)  # the classes of the sample, in real label_id order
    meta = json.loads((tmp_path / "synth_meta.json").read_text())
    assert len(meta["class_names"]) == 100 and meta["class_names"][0] == "man speaking"
    full = DATASETS.create({"name": "unav", "class_names": meta["class_names"]}, tmp_path)
    assert full.model_dims()["num_classes"] == 100  # the full list keeps class index == label_id
    assert all(full.class_names[ids[n]] == n for n in ids)


def test_speed_hundreds_of_videos(tmp_path):
    t0 = time.process_time()
    write_synthetic_unav(tmp_path, 150, seed=0)  # default dims (128 / 128 + 128), I3D grid
    assert time.process_time() - t0 < 20.0  # ~1 s on an idle core


def test_bad_arguments(tmp_path):
    with pytest.raises(ValueError, match="videos"):
        write_synthetic_unav(tmp_path, 0, seed=0)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="bad.json"):
        write_synthetic_unav(tmp_path / "o", 5, seed=0, annotations=tmp_path / "bad.json")
