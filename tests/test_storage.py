"""``data.storage: float16``: features held in RAM at half the size, batches still float32, the numbers of a
short run unchanged within float16 rounding, for AVE and the dense datasets."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from avloc.config import load_config
from avloc.engine.loop import fit
from avloc.tools.paths import config_path
from avloc.catalog import DATASETS

from test_data_unav import DB, make

QUICK = ["train.epochs=2", "train.batch_size=8", "train.lr_decay_epochs=[]", "train.threads=1",
         "train.progress=false"]


def test_ave_float16_storage_halves_the_features_and_batches_stay_float32(tiny_ave_dir: Path):
    full = DATASETS.create({"name": "ave", "setting": "weak"}, tiny_ave_dir)
    half = DATASETS.create({"name": "ave", "setting": "weak", "storage": "float16"}, tiny_ave_dir)
    assert half.visual.dtype == half.audio.dtype == torch.float16
    assert half.visual.nbytes * 2 == full.visual.nbytes
    idx = torch.tensor([3, 0, len(full) - 1])  # the last row is a noisy video
    a, b = full.batch(idx), half.batch(idx)
    assert b["visual"].dtype == b["audio"].dtype == torch.float32
    assert torch.equal(b["visual"], a["visual"].half().float()) and torch.equal(b["audio"], a["audio"].half().float())
    assert all(torch.equal(a[k], b[k]) for k in a if k not in ("audio", "visual"))


def test_ave_float16_storage_rejects_values_beyond_its_range(tmp_path: Path, tiny_ave_dir: Path):
    import h5py

    from avloc.data.base import DataError

    for f in tiny_ave_dir.iterdir():
        if f.name != "audio_feature.h5":
            (tmp_path / f.name).symlink_to(f)
    with h5py.File(tiny_ave_dir / "audio_feature.h5", "r") as src:
        audio = src["avadataset"][()]
    audio[5, 2, 7] = 1e5
    with h5py.File(tmp_path / "audio_feature.h5", "w") as dst:
        dst["avadataset"] = audio
    with pytest.raises(DataError, match=r"audio_feature.h5\['avadataset'\]: row 5 .* float16's range"):
        DATASETS.create({"name": "ave", "storage": "float16"}, tmp_path)
    assert DATASETS.create({"name": "ave"}, tmp_path).audio[5, 2, 7] == 1e5  # float32 storage holds it


def test_ave_run_with_float16_storage_matches_float32(tmp_path: Path, tiny_ave_dir: Path):
    reports = {s: fit(load_config(config_path("ave/psp_fully.yaml"), [*QUICK, f"data.storage={s}"]), tiny_ave_dir,
                      tmp_path / s, log=lambda *_: None) for s in ("float32", "float16")}
    assert reports["float16"]["test_acc"] == pytest.approx(reports["float32"]["test_acc"], abs=0.05)


def test_unav_float16_storage_halves_the_features_and_batches_stay_float32(tmp_path: Path):
    root = make(tmp_path, DB)
    full = DATASETS.create({"name": "unav"}, root)
    half = DATASETS.create({"name": "unav", "storage": "float16"}, root)
    assert half.visual.dtype == half.audio.dtype == torch.float16
    assert half.visual.nbytes * 2 == full.visual.nbytes and half.lengths.tolist() == full.lengths.tolist()
    idx = torch.tensor([1, 0])
    a, b = full.batch(idx), half.batch(idx)
    assert b["visual"].dtype == b["audio"].dtype == torch.float32
    assert torch.equal(b["visual"], a["visual"].half().float()) and torch.equal(b["mask"], a["mask"])


def test_unav_storage_is_validated(tmp_path: Path):
    with pytest.raises(ValueError, match="storage"):
        DATASETS.create({"name": "unav", "storage": "int8"}, make(tmp_path, DB))
