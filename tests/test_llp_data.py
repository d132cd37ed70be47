"""The LLP reader on hand-made folders (labels, splits, every malformed-input case naming file and line),
``avloc synth llp`` (same seed, same bytes; the reader loads it) and the official annotation files."""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np
import pytest
import torch

from avloc.catalog import create_dataset
from avloc.data.base import DataError
from avloc.data.llp_files import CLASS_NAMES, read_dense_events, read_weak_list, segment_labels
from avloc.data.synth_llp import SynthLLPConfig, write_synthetic_llp

LLP = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "llp"
WEAK = {
    "AVVP_train.csv": ["aaaaaaaaaaa_0_10\tSpeech,Dog", "bbbbbbbbbbb_5_15\tCar"],
    "AVVP_val_pd.csv": ["ccccccccccc_0_10\tSpeech,Cat"],
    "AVVP_test_pd.csv": ["ddddddddddd_30_40\tBanjo"],
}
EVAL = {
    "AVVP_eval_audio.csv": ["ccccccccccc_0_10\t0\t4\tSpeech", "ccccccccccc_0_10\t9\t10\tCat",
                            "ddddddddddd_30_40\t3\t3\tBanjo", "ddddddddddd_30_40\t9\t0\tBanjo",
                            "zzzzzzzzzzz_0_10\t0\t10\tDog"],
    "AVVP_eval_visual.csv": ["ddddddddddd_30_40\t0\t10\tBanjo"],
}


def make_llp(root: Path, dims: tuple[int, int, int] = (4, 6, 3), frames: int = 8) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    for name, rows in WEAK.items():
        (root / name).write_text("filename\tevent_labels\n" + "\n".join(rows) + "\n")
    for name, rows in EVAL.items():
        (root / name).write_text("filename\tonset\toffset\tevent_labels\n" + "\n".join(rows) + "\n")
    rng = np.random.default_rng(0)
    for folder, shape in (("feats/vggish", (10, dims[0])), ("feats/res152", (10 * frames, dims[1])),
                          ("feats/r2plus1d_18", (10, dims[2]))):
        (root / folder).mkdir(parents=True, exist_ok=True)
        for rows in WEAK.values():
            for row in rows:
                np.save(root / folder / f"{row[:11]}.npy", rng.standard_normal(shape).astype(np.float32))
    return root


def test_reader_gives_splits_labels_and_features(tmp_path):
    data = create_dataset("llp", make_llp(tmp_path))
    assert {k: v.tolist() for k, v in data.splits.items()} == {"train": [0, 1], "val": [2], "test": [3]}
    assert data.model_dims() == {"audio_dim": 4, "visual_dim": 6, "st_dim": 3, "num_classes": 25}
    b = data.batch(torch.tensor([2, 3]))
    assert b["audio"].shape == (2, 10, 4) and b["visual"].shape == (2, 80, 6) and b["visual_st"].shape == (2, 10, 3)
    speech, cat, banjo = (CLASS_NAMES.index(n) for n in ("Speech", "Cat", "Banjo"))
    assert b["video_labels"][0].nonzero().flatten().tolist() == sorted([speech, cat])
    audio = b["audio_labels"]
    assert audio[0, :, speech].tolist() == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0]  # onset 0, offset 4: segments 0-3
    assert audio[0, :, cat].tolist() == [0] * 9 + [1]  # touching the clip end
    assert audio[1].sum() == 0  # onset == offset and onset > offset mark nothing (as officially)
    assert b["visual_labels"][1, :, banjo].sum() == 10
    assert data.batch(torch.tensor([0]))["audio_labels"].sum() == 0  # train clips: weak labels only


@pytest.mark.parametrize("file, line, text, message", [
    ("AVVP_train.csv", 1, "name\tlabels", r"AVVP_train.csv: line 1 must be the header"),
    ("AVVP_train.csv", 3, "bbbbbbbbbbb_5_15", r"AVVP_train.csv: line 3: expected 2 tab-separated fields"),
    ("AVVP_train.csv", 2, "aaaaaaaaaaa_0_10\tSpeech,Unicorn", r"AVVP_train.csv: line 2: unknown event label 'Unicorn'"),
    ("AVVP_train.csv", 2, "aaaaaaaaaaa_0_10\tSpeech,,Dog", r"AVVP_train.csv: line 2: event_labels"),
    ("AVVP_train.csv", 3, "aaaaaaaaaaa_0_10\tDog", r"AVVP_train.csv: line 3: clip .* repeats the YouTube id of line 2"),
    ("AVVP_val_pd.csv", 2, "short\tDog", r"AVVP_val_pd.csv: line 2: filename 'short' must start with an 11-char"),
    ("AVVP_eval_audio.csv", 3, "ccccccccccc_0_10\tone\t4\tSpeech", r"AVVP_eval_audio.csv: line 3: onset 'one'"),
    ("AVVP_eval_audio.csv", 2, "ccccccccccc_0_10\t0\t11\tSpeech", r"AVVP_eval_audio.csv: line 2: onset 0 and offset 11"),
    ("AVVP_eval_visual.csv", 2, "ddddddddddd_30_40\t0\t10\tBanjos", r"AVVP_eval_visual.csv: line 2: unknown event"),
])
def test_malformed_csv_lines_name_file_and_line(tmp_path, file, line, text, message):
    root = make_llp(tmp_path)
    lines = (root / file).read_text().splitlines()
    lines[line - 1] = text
    (root / file).write_text("\n".join(lines) + "\n")
    with pytest.raises(DataError, match=message) as err:
        create_dataset("llp", root)
    assert "\n" not in str(err.value)


def test_a_clip_in_two_splits_is_refused(tmp_path):
    root = make_llp(tmp_path)
    (root / "AVVP_test_pd.csv").write_text("filename\tevent_labels\nccccccccccc_0_10\tDog\n")
    with pytest.raises(DataError, match="'ccccccccccc_0_10' of the test list is also in the val list"):
        create_dataset("llp", root)


@pytest.mark.parametrize("folder, array, message", [
    ("feats/vggish", None, r"vggish/bbbbbbbbbbb.npy: feature file not found"),
    ("feats/vggish", np.zeros((9, 4), np.float32), r"vggish/bbbbbbbbbbb.npy: shape \(9, 4\) must be \(10, D\)"),
    ("feats/res152", np.zeros((75, 6), np.float32), r"res152/bbbbbbbbbbb.npy: shape \(75, 6\) must be \(S, D\) with S a multiple of 10"),
    ("feats/res152", np.zeros((80, 7), np.float32), r"res152/bbbbbbbbbbb.npy: shape \(80, 7\) differs from the other clips' \(80, 6\)"),
    ("feats/r2plus1d_18", np.full((10, 3), np.nan, np.float32), r"r2plus1d_18/bbbbbbbbbbb.npy: holds NaN or inf"),
    ("feats/r2plus1d_18", np.zeros((10, 3), np.int64), r"r2plus1d_18/bbbbbbbbbbb.npy: dtype int64 is not floating point"),
    ("feats/vggish", "garbage", r"vggish/bbbbbbbbbbb.npy: not a readable .npy array"),
])
def test_malformed_arrays_name_the_file(tmp_path, folder, array, message):
    root = make_llp(tmp_path)
    path = root / folder / "bbbbbbbbbbb.npy"
    if array is None:
        path.unlink()
    elif isinstance(array, str):
        path.write_bytes(b"not an npy file")
    else:
        np.save(path, array)
    with pytest.raises(DataError, match=message):
        create_dataset("llp", root)


def _digest(root: Path) -> str:
    h = hashlib.sha256()
    for p in sorted(root.rglob("*")):
        if p.is_file():
            h.update(str(p.relative_to(root)).encode() + p.read_bytes())
    return h.hexdigest()


def test_synth_llp_is_deterministic_and_loads(tmp_path):
    ann = make_llp(tmp_path / "ann")
    cfg = SynthLLPConfig(audio_dim=8, visual_dim=16, st_dim=4, split_fractions=(0.5, 0.25, 0.25))
    first = write_synthetic_llp(tmp_path / "a", ann, videos=4, seed=3, cfg=cfg)
    write_synthetic_llp(tmp_path / "b", ann, videos=4, seed=3, cfg=cfg)
    write_synthetic_llp(tmp_path / "c", ann, videos=4, seed=4, cfg=cfg)
    assert _digest(tmp_path / "a") == _digest(tmp_path / "b") != _digest(tmp_path / "c")
    assert first["clips"] == {"train": 2, "val": 1, "test": 1}
    data = create_dataset("llp", tmp_path / "a")
    assert data.model_dims() == {"audio_dim": 8, "visual_dim": 16, "st_dim": 4, "num_classes": 25}
    assert data.tensors["visual"].shape == (4, 80, 16)
    # the val/test clips keep their real events; features carry them (class direction lit where labelled)
    assert data.tensors["visual_labels"][3].sum() == 10 and data.tensors["audio_labels"][2].sum() == 5


def test_synth_cli_writes_the_official_widths(tmp_path):
    from avloc.tools.cli import main

    ann = make_llp(tmp_path / "ann")
    assert main(["synth", "llp", "--out", str(tmp_path / "s"), "--annotations", str(ann), "--videos", "3"]) == 0
    shapes = {d: {np.load(p).shape for p in (tmp_path / "s" / "feats" / d).glob("*.npy")}
              for d in ("vggish", "res152", "r2plus1d_18")}
    assert shapes == {"vggish": {(10, 128)}, "res152": {(80, 2048)}, "r2plus1d_18": {(10, 512)}}
    assert main(["synth", "llp", "--out", str(tmp_path / "t"), "--videos", "3"]) == 2  # no annotations


def test_the_official_annotation_files():
    if not (LLP / "AVVP_train.csv").is_file():
        pytest.skip("../shared/data/llp not present")
    sizes = [len(read_weak_list(LLP / f).filenames) for f in ("AVVP_train.csv", "AVVP_val_pd.csv", "AVVP_test_pd.csv")]
    assert sizes == [10000, 649, 1200]
    held = read_weak_list(LLP / "AVVP_val_pd.csv").filenames + read_weak_list(LLP / "AVVP_test_pd.csv").filenames
    audio, unmatched = segment_labels(read_dense_events(LLP / "AVVP_eval_audio.csv"), held)
    assert audio.shape == (1849, 10, 25) and unmatched == 14  # typo'd filenames count nowhere, as officially


class Oracle(torch.nn.Module):
    """Predicts the truth of the batch: the evaluator must then score 1.0 everywhere."""

    def forward(self, batch):
        from avloc.models.outputs import AVVPOutput

        seg = torch.stack([batch["audio_labels"], batch["visual_labels"]], dim=2)  # (B, T, 2, C)
        video = seg.amax(dim=(1, 2))
        return AVVPOutput(segment_prob=seg, video_prob=video, audio_prob=video, visual_prob=video)


def test_avvp_evaluator_scores_the_truth_as_perfect_and_writes_events(tmp_path):
    import json

    from avloc.catalog import create_evaluator

    data = create_dataset("llp", make_llp(tmp_path / "d"))
    evaluator = create_evaluator("avvp")
    scores = evaluator(Oracle(), data, "test", torch.device("cpu"), 2)
    assert evaluator.primary == "seg_type" and scores == {k: 1.0 for k in scores} and len(scores) == 10
    evaluator.finalize(Oracle(), data, tmp_path, torch.device("cpu"), 2)
    written = json.loads((tmp_path / "predictions_test.json").read_text())
    assert written["clips"] == {"ddddddddddd_30_40": {"audio": [], "visual": [["Banjo", 0, 10]]}}


def test_max_videos_keeps_the_first_rows_of_each_split(tmp_path):
    data = create_dataset("llp", make_llp(tmp_path), max_videos=2)  # 2 of 4: train 1, val and test >= 1
    assert data.video_ids == ["aaaaaaaaaaa_0_10", "ccccccccccc_0_10", "ddddddddddd_30_40"]
    assert {k: len(v) for k, v in data.splits.items()} == {"train": 1, "val": 1, "test": 1}
