"""Fault cases on the video path: failed videos in a feature folder, run folders that never trained, truncated
files, and command-line errors that are one line with the documented exit status. Media are made with PyAV."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import h5py
import numpy as np
import pytest

from avloc.data.base import DataError
from avloc.media.extract import ExtractConfig, Extractor, read_feature_meta
from avloc.media.extract_folder import extract_videos

from test_extract import make_video

pytestmark = pytest.mark.reliability

AVE_CFG = ExtractConfig(format="ave", frames_per_segment=1)


@pytest.fixture(scope="module")
def quick_extractor() -> Extractor:
    """The default backbones with random weights: the tests check rows, records and flags, not feature values."""
    return Extractor(AVE_CFG, random_weights=True)


def _splits(folder: Path, rows: dict[str, list[int]]) -> None:
    for split, r in rows.items():
        with h5py.File(folder / f"{split}_order.h5", "w") as h5:
            h5["order"] = np.array(r, dtype=np.int64)


# ------------------------------------------------------------------ a failed video is never a silent zero row
def test_failed_video_is_recorded_and_the_ave_reader_leaves_it_out(tmp_path, quick_extractor, caplog):
    from avloc.data.ave import AVEDataset

    src = tmp_path / "in"
    src.mkdir()
    for name in ("a", "c", "d"):
        make_video(src / f"{name}.mp4", seconds=1.0, fps=5)
    (src / "b.mp4").write_bytes(b"\x00not a video" * 50)
    out = tmp_path / "feats"
    out.mkdir()
    (out / "Annotations.txt").write_text("".join(f"Bark&{v}&good&0&10\n" for v in "abcd"))
    _splits(out, {"train": [0, 1], "val": [2], "test": [3]})
    summary = extract_videos([src], out, AVE_CFG, annotations=out / "Annotations.txt", progress=False,
                             extractor=quick_extractor)
    assert summary.exit_status == 1 and list(summary.failed) == [str(src / "b.mp4")]
    meta = read_feature_meta(out)
    assert [(f["row"], f["id"], f["path"]) for f in meta.failed] == [(1, "b", str(src / "b.mp4"))]
    assert "not a readable media file" in meta.failed[0]["reason"]
    assert {v: r["row"] for v, r in meta.videos.items()} == {"a": 0, "c": 2, "d": 3}
    with h5py.File(out / "visual_feature.h5") as h5:
        assert not np.abs(h5["avadataset"][1]).any()  # the zero row exists ...
    with caplog.at_level(logging.WARNING):
        data = AVEDataset(AVEDataset.Config(), out)
    assert data.video_ids == ["a", "c", "d"] and data.failed_rows == [1]  # ... but nothing trains on it
    assert "leaving out 1 videos without features" in caplog.text and "row 1 b (" in caplog.text
    assert sorted(data.splits["train"].tolist()) == [0]
    with pytest.raises(DataError, match=r"features\.json: 1 videos have no features .*row 1 b"):
        AVEDataset(AVEDataset.Config(failed_videos="error"), out)
    # the broken file repaired, a re-run extracts it and the record goes
    make_video(src / "b.mp4", seconds=1.0, fps=5)
    again = extract_videos([src], out, AVE_CFG, annotations=out / "Annotations.txt", progress=False,
                           extractor=quick_extractor)
    assert again.extracted == ["b"] and again.exit_status == 0
    assert read_feature_meta(out).failed == [] and len(AVEDataset(AVEDataset.Config(), out)) == 4


def test_failed_record_that_names_another_row_is_an_error(tmp_path, quick_extractor):
    from avloc.data.ave import AVEDataset

    make_video(tmp_path / "a.mp4", seconds=1.0, fps=5)
    out = tmp_path / "feats"
    out.mkdir()
    (out / "Annotations.txt").write_text("Bark&a&good&0&10\nBark&z&good&0&10\nBark&y&good&0&10\n")
    _splits(out, {"train": [0], "val": [1], "test": [2]})
    extract_videos([tmp_path / "a.mp4"], out, AVE_CFG, annotations=out / "Annotations.txt", progress=False,
                   extractor=quick_extractor)
    side = json.loads((out / "features.json").read_text())
    assert [(f["row"], f["id"]) for f in side["failed"]] == [(1, "z"), (2, "y")]
    with pytest.raises(DataError, match="every video of the val split failed"):
        AVEDataset(AVEDataset.Config(), out)
    (out / "Annotations.txt").write_text("Bark&a&good&0&10\nBark&y&good&0&10\nBark&z&good&0&10\n")
    with pytest.raises(DataError, match=r"failed video 'z' is recorded at row 1"):
        AVEDataset(AVEDataset.Config(), out)


# ------------------------------------------------------------------ a run folder that never trained
def test_corrected_command_reuses_a_run_folder_that_never_trained(tiny_ave_dir, tmp_path, capsys):
    from avloc.tools.cli import main

    run = tmp_path / "run"
    args = ["train", "ave/psp_fully.yaml", "--data", str(tiny_ave_dir), "--out", str(run), "train.epochs=1",
            "train.threads=1", "train.progress=false", "train.eval_batch_size=16", "train.drop_last=true"]
    assert main([*args, "train.batch_size=4000"]) == 2
    assert "train.batch_size=4000 is larger than the training split" in capsys.readouterr().err
    left = {p.name for p in run.iterdir()}
    assert {"config.yaml", "data.json"} <= left <= {"config.yaml", "data.json", "model.json"}  # before epoch 1
    assert main([*args, "train.batch_size=8"]) == 0  # the corrected command: no --overwrite needed
    assert json.loads((run / "report.json").read_text())["epochs"] == 1
    assert "batch_size: 8" in (run / "config.yaml").read_text()
    rc = main([*args, "train.batch_size=8"])  # a run that trained is another run: refused as before
    assert rc == 2 and "already holds a run" in capsys.readouterr().err


# ------------------------------------------------------------------ a truncated file: what decodes, flagged
@pytest.fixture(scope="module")
def truncated_mkv(tmp_path_factory) -> Path:
    """A 14-s Matroska file cut at a quarter of its bytes: its header keeps 14 s, about 3.3 s decode."""
    folder = tmp_path_factory.mktemp("trunc")
    full = make_video(folder / "full.mkv", seconds=14.0, fps=5).read_bytes()
    path = folder / "cut.mkv"
    path.write_bytes(full[: len(full) // 4])
    return path


def test_truncated_video_uses_what_decodes_and_is_flagged(truncated_mkv, tmp_path, quick_extractor):
    from avloc.media.decode import decode, probe
    from avloc.media.extract import unav_steps

    info = probe(truncated_mkv)  # the container still claims 14 s; its packets end near 3.3-4 s
    assert info.truncated and 3.0 < info.duration <= 4.0
    whole = probe(truncated_mkv.with_name("full.mkv"))
    assert not whole.truncated and abs(whole.duration - 14.0) < 0.1
    media = decode(truncated_mkv, None, 16000)
    assert "video_truncated" in media.flags and 3.0 < media.duration <= 4.0
    _, _, seconds, flags = quick_extractor.video(truncated_mkv)
    assert 3.0 < seconds <= 4.0 and "video_truncated" in flags and "shorter_than_10s" in flags
    assert "longer_than_10s_first_10s_used" not in flags
    summary = extract_videos([truncated_mkv], tmp_path / "ave", AVE_CFG, progress=False, extractor=quick_extractor)
    rec = read_feature_meta(tmp_path / "ave").videos["cut"]
    assert 3.0 < rec["seconds"] <= 4.0 and "video_truncated" in rec["flags"]
    assert summary.seconds == rec["seconds"]  # the speed figure counts what was used
    unav = ExtractConfig(format="unav", fps=3.125)
    summary = extract_videos([truncated_mkv], tmp_path / "unav", unav, progress=False,
                             extractor=Extractor(unav, random_weights=True))
    rec = read_feature_meta(tmp_path / "unav").videos["cut"]
    assert rec["steps"] == unav_steps(rec["seconds"], 0.32, 0.96) < unav_steps(14.0, 0.32, 0.96)
    assert np.load(tmp_path / "unav" / "av_features" / "cut_aisfx.npy").shape[0] == rec["steps"]


def test_ave_speed_figure_counts_ten_seconds_of_a_longer_clip(tmp_path, quick_extractor):
    clip = make_video(tmp_path / "long.mp4", seconds=12.0, fps=2)
    summary = extract_videos([clip], tmp_path / "out", AVE_CFG, progress=False, extractor=quick_extractor)
    assert summary.flagged["long"] == ["longer_than_10s_first_10s_used"] and summary.seconds == 10.0


# ------------------------------------------------------------------ errors: one line, once, one exit-status rule
def _cli(capsys, *argv: str) -> tuple[int, str]:
    from avloc.tools.cli import main

    rc = main(list(argv))
    got = capsys.readouterr()
    return rc, got.out + got.err


def test_out_that_is_a_file_is_one_line_for_train_extract_and_predict(tmp_path, tiny_ave_dir, capsys):
    afile = tmp_path / "afile"
    afile.write_text("x")
    clip = make_video(tmp_path / "c.mp4", seconds=1.0, fps=5)
    for argv, path in ((["extract", str(clip), "--out", str(afile), "--no-progress"], afile),
                       (["predict", str(clip), "--zero-shot", "--out", str(afile / "sub")], afile / "sub"),
                       (["train", "ave/psp_fully.yaml", "--data", str(tiny_ave_dir), "--out", str(afile)], afile)):
        rc, text = _cli(capsys, *argv)
        assert rc == 2 and len(text.strip().splitlines()) == 1, text
        assert f"--out {path} must be a folder" in text and "Errno" not in text, text
    assert afile.read_text() == "x"


def test_every_input_bad_exits_1_for_extract_and_predict_and_names_each_once(tmp_path, capsys):
    bad, absent = tmp_path / "bad.mp4", tmp_path / "absent.mp4"
    bad.write_bytes(b"\x00junk" * 100)
    for argv in (["extract", str(bad), str(absent), "--out", str(tmp_path / "f"), "--no-progress",
                  "--frames-per-segment", "1"],
                 ["predict", str(bad), str(absent), "--zero-shot", "--out", str(tmp_path / "p")]):
        rc, text = _cli(capsys, *argv)
        assert rc == 1, text
        assert text.count(str(bad)) == 1 and text.count(str(absent)) == 1, text
        assert "Errno" not in text and "Traceback" not in text, text


def test_override_typo_is_reported_as_an_override(tiny_ave_dir, tmp_path, capsys):
    rc, text = _cli(capsys, "train", "ave/psp_fully.yaml", "--data", str(tiny_ave_dir), "--out",
                    str(tmp_path / "r"), "train.epochz=3")
    assert rc == 2 and "the command-line override(s) train.epochz=3" in text and "did you mean 'epochs'" in text
    assert "psp_fully.yaml" not in text
    rc, text = _cli(capsys, "train", "ave/psp_fully.yaml", "--data", str(tiny_ave_dir), "--out",
                    str(tmp_path / "r"), "model.escm.thrx=1")
    assert rc == 2 and text.startswith("avloc: error: the command-line override(s) model.escm.thrx=1: ")
