"""``avloc extract --format llp`` writes the folders the ``llp`` dataset reads; a run trained on them predicts
audio, visual and audio-visual tracks on a new video of any length."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from avloc.media.weights import WeightsError
from avloc.tools.cli import main
from media_clips import write_clip

pytestmark = pytest.mark.slow

IDS = ("aaaaaaaaaaa_0_10", "bbbbbbbbbbb_30_40", "ccccccccccc_5_15")  # LLP names: <11-char id>_<start>_<end>


def write_avvp_csvs(folder: Path) -> None:
    """The five AVVP label files for the three clips: one train, one val, one test clip."""
    weak = "filename\tevent_labels\n"
    for name, clip, labels in (("AVVP_train.csv", IDS[0], "Dog"), ("AVVP_val_pd.csv", IDS[1], "Dog,Speech"),
                               ("AVVP_test_pd.csv", IDS[2], "Speech")):
        (folder / name).write_text(f"{weak}{clip}\t{labels}\n")
    dense = "filename\tonset\toffset\tevent_labels\n"
    (folder / "AVVP_eval_audio.csv").write_text(f"{dense}{IDS[1]}\t0\t4\tDog\n{IDS[2]}\t2\t10\tSpeech\n")
    (folder / "AVVP_eval_visual.csv").write_text(f"{dense}{IDS[1]}\t3\t10\tDog\n")


@pytest.fixture(scope="module")
def llp_folder(tmp_path_factory):
    root = tmp_path_factory.mktemp("llp")
    videos = root / "videos"
    videos.mkdir()
    for i, vid in enumerate(IDS):  # the last clip is 7 s: LLP reads 10 s, frames past the end repeat
        write_clip(videos / f"{vid}.mp4", 7.0 if i == 2 else 10.0, tone_hz=440.0 * (i + 1), seed=i)
    data = root / "data"
    try:
        rc = main(["extract", str(videos), "--out", str(data), "--format", "llp", "--visual", "efficientnet_lite0",
                   "--audio", "soundnet8", "--frames-per-segment", "2", "--no-progress"])
    except WeightsError as exc:
        pytest.skip(str(exc))
    assert rc == 0
    write_avvp_csvs(data)
    return data


def test_extracted_llp_folder_is_read_by_the_llp_dataset(llp_folder, capsys):
    from avloc.data.llp import LLPDataset
    from avloc.media.extract import read_feature_meta

    meta = read_feature_meta(llp_folder)
    assert meta.config.format == "llp" and meta.config.frames_per_segment == 2
    section = meta.data_config()
    assert section["name"] == "llp"
    data = LLPDataset(LLPDataset.Config(**{k: v for k, v in section.items() if k != "name"}), llp_folder)
    t = data.tensors
    assert t["audio"].shape == (3, 10, meta.audio_dim)
    assert t["visual"].shape == (3, 20, meta.visual_dim)  # 2 frames per second
    assert t["visual_st"].shape == (3, 10, meta.visual_dim)
    assert np.allclose(t["visual_st"].numpy(), t["visual"].view(3, 10, 2, -1).mean(2).numpy(), atol=1e-6)
    assert data.video_ids == list(IDS) and {s: v.tolist() for s, v in data.splits.items()} == \
        {"train": [0], "val": [1], "test": [2]}


def test_llp_ids_must_name_distinct_feature_files(tmp_path, capsys):
    clip = write_clip(tmp_path / "short.mp4", 1.0)
    rc = main(["extract", str(clip), "--out", str(tmp_path / "out"), "--format", "llp", "--no-progress"])
    assert rc == 2 and "'short' is shorter than 11 characters" in capsys.readouterr().err


def test_an_llp_run_predicts_audio_visual_and_av_tracks(llp_folder, tmp_path):
    run = tmp_path / "run"  # no data keys given: the folder's features.json names the dataset and its folders
    assert main(["train", "llp/linear.yaml", "--data", str(llp_folder), "--out", str(run),
                 "train.epochs=1", "train.batch_size=1", "train.threads=1"]) == 0
    assert json.loads((run / "model.json").read_text())["task"] == "avvp"
    video = write_clip(tmp_path / "held.mp4", 14.0, seed=7)  # two windows: 0-10 s and the end-aligned 4-14 s
    out = tmp_path / "pred"
    assert main(["predict", str(video), "--run", str(run), "--out", str(out)]) == 0
    doc = json.loads((out / "held" / "events.json").read_text())
    tracks = doc["avloc"]["held"]["tracks"]
    assert set(tracks) == {"audio", "visual", "av"}
    for name, track in tracks.items():
        assert track["step_s"] == 1.0 and all(len(v) == 14 for v in track["scores"].values()), name
    from avloc.inference.predictor import Predictor

    pred = Predictor.from_run(run).predict(video)  # every class of every track, not only the listed top ones
    a, v = pred.track("audio").scores, pred.track("visual").scores  # (14, 25) each
    np.testing.assert_allclose(pred.track("av").scores, np.minimum(a, v), atol=1e-6)  # heard AND seen
    for name, track in tracks.items():  # each track lists its top classes, scores rounded to 1e-4
        full = pred.track(name)
        for c, row in track["scores"].items():
            np.testing.assert_allclose(row, full.scores[:, full.labels.index(c)], atol=1e-4, err_msg=f"{name} {c}")
    others = doc["avloc"]["held"]["other_events"]
    for ev in doc["results"]["held"] + others:  # every second of an event passed the official 0.5
        assert 0 <= ev["segment"][0] < ev["segment"][1] <= 14.0 and ev["score"] >= 0.5
    for ev in doc["results"]["held"]:  # an audio-visual event is heard and seen
        for track in ("audio", "visual"):
            assert any(o["track"] == track and o["label"] == ev["label"] and o["segment"][0] <= ev["segment"][0]
                       and ev["segment"][1] <= o["segment"][1] for o in others), (track, ev)
    model = tmp_path / "model.avloc"  # the exported file predicts the same tracks without the run folder
    assert main(["export", str(run), "--out", str(model)]) == 0
    assert main(["predict", str(video), "--model", str(model), "--out", str(tmp_path / "pred2")]) == 0
    again = json.loads((tmp_path / "pred2" / "held" / "events.json").read_text())
    assert again["avloc"]["held"]["tracks"] == tracks and again["results"] == doc["results"]


def test_features_made_elsewhere_must_fit_the_third_stream(llp_folder, tmp_path, capsys):
    """A run on LLP features not made by avloc extract (here a 512-d third stream, as R(2+1)D-18's) names the
    backbones; the third stream they make (the visual backbone's mean) does not fit, and the error says so."""
    import shutil

    data = tmp_path / "data"
    shutil.copytree(llp_folder, data)
    (data / "features.json").unlink()
    for f in (data / "feats" / "r2plus1d_18").iterdir():
        np.save(f, np.random.default_rng(0).standard_normal((10, 512)).astype(np.float32))
    run = tmp_path / "run"
    assert main(["train", "llp/linear.yaml", "--data", str(data), "--out", str(run), "train.epochs=1",
                 "train.batch_size=1", "train.threads=1"]) == 0
    video = write_clip(tmp_path / "held.mp4", 3.0)
    capsys.readouterr()
    rc = main(["predict", str(video), "--run", str(run), "--visual", "efficientnet_lite0", "--audio", "soundnet8",
               "--out", str(tmp_path / "pred")])
    err = capsys.readouterr().err
    assert rc == 2 and "512-d third visual stream" in err and "1280-d one" in err, err
