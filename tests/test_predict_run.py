"""``avloc predict --run``: extract videos made on the fly, train a tiny AVE run, predict on a held-out video;
and every bad input gives a clear error naming the file, with nothing written."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import h5py
import numpy as np
import pytest
import yaml

from avloc.tools.cli import main
from avloc.media.weights import WeightsError
from media_clips import write_clip

pytestmark = pytest.mark.slow

# class, colour, tone: the two event kinds of the synthetic videos
KINDS = (("Bark", (220, 40, 40), 440.0), ("Violin, fiddle", (40, 40, 220), 1500.0))


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    from avloc.config import load_config
    from avloc.data.ave_labels import write_annotations
    from avloc.engine.loop import fit
    from avloc.media.extract import ExtractConfig
    from avloc.media.extract_folder import extract_videos
    from avloc.tools.paths import config_path

    root = tmp_path_factory.mktemp("run")
    videos = root / "videos"
    videos.mkdir()
    n = 8
    cats, ids = [], []
    for i in range(n):
        name, colour, tone = KINDS[i % 2]
        write_clip(videos / f"v{i}.mp4", 10.0, colour=colour, tone_hz=tone, seed=i)
        cats.append(i % 2)
        ids.append(f"v{i}")
    from avloc.data.ave_labels import AVE_CLASSES

    category = np.array([AVE_CLASSES.index(KINDS[c][0]) for c in cats])
    data = root / "data"
    data.mkdir()
    write_annotations(data / "Annotations.txt", category, ids, np.full(n, 2), np.full(n, 8))
    for split, rows in (("train", range(0, 4)), ("val", range(4, 6)), ("test", range(6, 8))):
        with h5py.File(data / f"{split}_order.h5", "w") as h5:
            h5["order"] = np.array(list(rows))
    cfg = ExtractConfig(format="ave", visual="efficientnet_lite0", audio="soundnet8", frames_per_segment=1)
    try:
        extract_videos([videos], data, cfg, annotations=data / "Annotations.txt", progress=False)
    except WeightsError as exc:
        pytest.skip(str(exc))
    run = root / "runs" / "avel"
    fit(load_config(config_path("ave/avel_fully.yaml"), ["train.epochs=2", "train.batch_size=4"]), data, run,
        log=lambda *_: None)
    held_out = write_clip(root / "held_out.mp4", 14.0, colour=KINDS[0][1], tone_hz=KINDS[0][2], seed=99)
    return {"data": data, "run": run, "video": held_out, "root": root}


def test_predict_with_a_run_writes_every_file(trained, tmp_path, capsys):
    out = tmp_path / "pred"
    ann = tmp_path / "gt.json"
    ann.write_text(json.dumps({"database": {"held_out": {"subset": "test", "duration": 14.0,
                                                         "annotations": [{"segment": [2, 12], "label": "Bark"}]}}}))
    rc = main(["predict", str(trained["video"]), "--run", str(trained["run"]), "--data", str(trained["data"]),
               "--out", str(out), "--annotations", str(ann), "--merge-gap", "1.5"])
    assert rc == 0
    folder = out / "held_out"
    names = sorted(p.name for p in folder.iterdir())
    assert names == sorted(["events.json", "events.srt", "events.vtt", "events.tsv", "labels.txt", "timeline.png",
                            "report.html", "video.mp4"])
    doc = json.loads((folder / "events.json").read_text())
    assert set(doc) == {"version", "results", "external_data", "avloc"}
    from avloc.data.ave_labels import AVE_CLASSES

    for ev in doc["results"]["held_out"]:
        assert set(ev) == {"segment", "label", "score"} and ev["label"] in AVE_CLASSES
        assert 0 <= ev["segment"][0] < ev["segment"][1] <= 14.0 and 0 <= ev["score"] <= 1
    extra = doc["avloc"]["held_out"]
    assert extra["method"] == "run:avel" and extra["duration"] == 14.0
    scores = extra["tracks"]["av"]["scores"]
    assert scores and all(len(v) == 14 for v in scores.values())  # 14 seconds from a 10-s model (2 windows)
    assert set(extra["metrics"]) == {"per_second_acc", "average_mAP"}
    for line in (folder / "events.tsv").read_text().splitlines():
        onset, offset, label, score = line.split("\t")
        assert float(onset) < float(offset) and label in AVE_CLASSES and 0 <= float(score) <= 1
    assert "GT: Bark" in (folder / "events.srt").read_text()
    assert (out / "index.html").is_file() and json.loads((out / "events.json").read_text())["results"]
    assert "held_out" in capsys.readouterr().out


def test_predict_per_second_accuracy_equals_eval(trained, tmp_path):
    """``avloc predict --run`` on the test split's videos labels every second as ``avloc eval`` does on their
    extracted features: the same label per second, hence the same per-second accuracy."""
    from avloc.data.ave_labels import classes_beside, read_annotations
    from avloc.engine.finish import evaluate_run

    path = trained["data"] / "Annotations.txt"
    ann = read_annotations(path, classes=classes_beside(path))
    test_rows = h5py.File(trained["data"] / "test_order.h5", "r")["order"][:].tolist()
    names = [*ann.classes, "background"]
    db = {ann.video_ids[r]: {"subset": "test", "duration": 10.0, "annotations": [
        {"segment": [int(ann.start[r]), int(ann.end[r])], "label": names[ann.category[r]]}]}
        for r in test_rows}
    gt = tmp_path / "gt.json"
    gt.write_text(json.dumps({"database": db}))
    videos = [str(trained["root"] / "videos" / f"{ann.video_ids[r]}.mp4") for r in test_rows]
    out = tmp_path / "pred"
    rc = main(["predict", *videos, "--run", str(trained["run"]), "--out", str(out), "--annotations", str(gt)])
    assert rc == 0
    scored = evaluate_run(trained["run"], trained["data"], "test")
    eval_pred = json.loads((trained["run"] / "predictions_test.json").read_text())["videos"]
    seconds_right = 0
    for r in test_rows:
        vid = ann.video_ids[r]
        doc = json.loads((out / vid / "events.json").read_text())
        labels = ["background"] * 10
        for ev in doc["results"][vid]:
            for s in range(int(round(ev["segment"][0])), int(round(ev["segment"][1]))):
                labels[s] = ev["label"]
        assert labels == [names[c] for c in eval_pred[f"{vid}#{r}"]["pred"]]
        seconds_right += round(doc["avloc"][vid]["metrics"]["per_second_acc"] * 10)
    assert seconds_right / (10 * len(test_rows)) == pytest.approx(scored["acc"])


def test_ave_windows_cover_any_length():
    from avloc.inference.windows import ave_windows

    starts, where = ave_windows(23)
    assert starts.tolist() == [0, 10, 13]  # two full windows, then one ending at 23 s
    assert where[:10, 0].tolist() == [0] * 10 and where[10:20, 0].tolist() == [1] * 10
    assert where[20:].tolist() == [[2, 7], [2, 8], [2, 9]]  # the tail from the end-aligned window
    starts, where = ave_windows(4)
    assert starts.tolist() == [0] and where[:, 1].tolist() == [0, 1, 2, 3]


def run_cli(args: list[str], out: Path, capsys) -> tuple[int, str]:
    rc = main(["predict", *args, "--out", str(out)])
    err = capsys.readouterr().err
    return rc, err


def test_missing_and_unreadable_videos_are_named(trained, tmp_path, capsys):
    out = tmp_path / "out"
    bad = tmp_path / "broken.mp4"
    bad.write_text("not a video")
    base = ["--run", str(trained["run"]), "--data", str(trained["data"])]
    rc, err = run_cli([str(tmp_path / "nope.mp4"), *base], out, capsys)
    assert rc == 1 and "nope.mp4: video file not found" in err
    rc, err = run_cli([str(bad), *base], out, capsys)
    assert rc == 1 and "broken.mp4: unreadable video" in err
    assert not out.exists()


def test_run_without_checkpoint_or_with_other_backbones(trained, tmp_path, capsys):
    out = tmp_path / "out"
    video = str(trained["video"])
    no_ckpt = tmp_path / "run_no_ckpt"
    shutil.copytree(trained["run"], no_ckpt)
    (no_ckpt / "best.pt").unlink()
    rc, err = run_cli([video, "--run", str(no_ckpt), "--data", str(trained["data"])], out, capsys)
    assert rc == 2 and "best.pt" in err and "run_no_ckpt" in err
    other = tmp_path / "other_data"  # the same videos "extracted" with a 512-d audio backbone
    shutil.copytree(trained["data"], other)
    meta = json.loads((other / "features.json").read_text())
    meta["config"]["audio"], meta["audio_dim"] = "aisfx", 512
    (other / "features.json").write_text(json.dumps(meta))
    rc, err = run_cli([video, "--run", str(trained["run"]), "--data", str(other)], out, capsys)
    assert rc == 2 and "runs/avel" in err and "soundnet8 256-d" in err and "aisfx 512-d" in err
    assert not out.exists()


def test_annotations_for_another_video(trained, tmp_path, capsys):
    out = tmp_path / "out"
    ann = tmp_path / "other.json"
    ann.write_text(json.dumps({"database": {"someone_else": {"subset": "test", "annotations": []}}}))
    rc, err = run_cli([str(trained["video"]), "--run", str(trained["run"]), "--data", str(trained["data"]),
                       "--annotations", str(ann)], out, capsys)
    assert rc == 2 and "other.json" in err and "held_out" in err
    assert not out.exists()


def test_dense_run_predicts_proposals_in_seconds(tmp_path):
    """A dense (MIL) run: one real extraction (the grid and backbones), the other training videos' features
    drawn at random with the same shapes (the test is about the plumbing, not accuracy)."""
    from avloc.media.extract import ExtractConfig, read_feature_meta
    from avloc.media.extract_folder import extract_videos

    data = tmp_path / "data"
    video = write_clip(tmp_path / "held.mp4", 4.0)
    cfg = ExtractConfig(format="unav", visual="efficientnet_lite0", audio="soundnet8", fps=6.25)
    try:
        extract_videos([video], data, cfg, progress=False)
    except WeightsError as exc:
        pytest.skip(str(exc))
    meta = read_feature_meta(data)
    steps = np.load(data / "av_features" / "held_soundnet8.npy").shape[0]
    rng = np.random.default_rng(0)
    db = {"held": {"subset": "test", "duration": 4.0, "annotations": [{"segment": [1.0, 3.0], "label": "dog"}]}}
    for i, subset in enumerate(["train", "train", "train", "validation"]):
        for suffix, dim in (("efficientnet_lite0", meta.visual_dim), ("soundnet8", meta.audio_dim)):
            np.save(data / "av_features" / f"s{i}_{suffix}.npy", rng.standard_normal((steps, dim)).astype(np.float32))
        db[f"s{i}"] = {"subset": subset, "duration": 4.0,
                       "annotations": [{"segment": [0.5, 2.5], "label": ["dog", "violin"][i % 2]}]}
    (data / "ann.json").write_text(json.dumps({"database": db}))
    run = tmp_path / "run"  # no data keys given: avloc train reads the grid, suffixes and dims from features.json
    assert main(["train", "unav/mil.yaml", "--data", str(data), "--out", str(run), "data.annotations=ann.json",
                 "train.epochs=2", "train.batch_size=2"]) == 0
    saved = yaml.safe_load((run / "config.yaml").read_text())["data"]
    assert {k: saved[k] for k in meta.data_config()} == meta.data_config()
    out = tmp_path / "pred"
    assert main(["predict", str(video), "--run", str(run), "--data", str(data), "--out", str(out),
                 "--min-score", "0.0"]) == 0
    doc = json.loads((out / "held" / "events.json").read_text())
    for ev in doc["results"]["held"]:
        assert ev["label"] in ("dog", "violin") and 0 <= ev["segment"][0] <= ev["segment"][1] <= 4.0
    scores = doc["avloc"]["held"]["tracks"]["av"]
    assert scores["step_s"] == pytest.approx(0.32) and all(len(v) == steps for v in scores["scores"].values())


def test_a_run_predicts_with_its_training_data_deleted(trained, tmp_path):
    """Everything inference needs is in the run folder (model.json): a run trained on a copy of the data
    predicts the same events once that copy is gone, and so does its exported model file."""
    from avloc.config import load_config
    from avloc.engine.loop import fit
    from avloc.tools.paths import config_path

    data = tmp_path / "data"
    shutil.copytree(trained["data"], data)
    run = tmp_path / "run"
    fit(load_config(config_path("ave/avel_fully.yaml"), ["train.epochs=1", "train.batch_size=4"]), data, run,
        log=lambda *_: None)
    record = json.loads((run / "model.json").read_text())
    assert record["class_names"][-1] == "background" and record["features"]["config"]["audio"] == "soundnet8"
    common = ["predict", str(trained["video"])]
    assert main([*common, "--run", str(run), "--out", str(tmp_path / "with_data")]) == 0
    shutil.rmtree(data)
    assert main([*common, "--run", str(run), "--out", str(tmp_path / "without")]) == 0
    assert main(["export", str(run), "--out", str(tmp_path / "m.avloc")]) == 0
    shutil.rmtree(run)
    assert main([*common, "--model", str(tmp_path / "m.avloc"), "--out", str(tmp_path / "file")]) == 0
    docs = [json.loads((tmp_path / d / "held_out" / "events.json").read_text()) for d in ("with_data", "without", "file")]
    assert docs[0]["results"] == docs[1]["results"] == docs[2]["results"]
    assert docs[0]["avloc"]["held_out"]["tracks"] == docs[2]["avloc"]["held_out"]["tracks"]


def test_features_made_elsewhere_need_the_backbones_named(trained, tmp_path, capsys):
    """A run trained on features not made by avloc extract (no recipe in its record): --visual/--audio name
    the backbones; a wrong one is refused by its dims."""
    run = tmp_path / "run"
    shutil.copytree(trained["run"], run)
    record = json.loads((run / "model.json").read_text())
    record["features"] = None
    (run / "model.json").write_text(json.dumps(record))
    base = ["predict", str(trained["video"]), "--run", str(run)]
    assert main([*base, "--out", str(tmp_path / "none")]) == 2
    assert "--visual NAME --audio NAME" in capsys.readouterr().err and not (tmp_path / "none").exists()
    assert main([*base, "--visual", "efficientnet_lite0", "--audio", "aisfx", "--out", str(tmp_path / "bad")]) == 2
    assert "audio_dim 256" in capsys.readouterr().err and not (tmp_path / "bad").exists()
    out = tmp_path / "named"
    assert main([*base, "--visual", "efficientnet_lite0", "--audio", "soundnet8", "--out", str(out)]) == 0
    doc = json.loads((out / "held_out" / "events.json").read_text())
    assert set(doc["results"]) == {"held_out"}


def test_a_run_from_before_model_json_reads_its_recorded_data_folder(trained, tmp_path):
    """Runs trained before the model record existed still predict: the class names come from the folder
    data.json records (or --data)."""
    run = tmp_path / "old_run"
    shutil.copytree(trained["run"], run)
    (run / "model.json").unlink()
    common = ["predict", str(trained["video"]), "--run"]
    assert main([*common, str(run), "--out", str(tmp_path / "old")]) == 0
    assert main([*common, str(trained["run"]), "--out", str(tmp_path / "new")]) == 0
    a, b = (json.loads((tmp_path / d / "held_out" / "events.json").read_text())["results"] for d in ("old", "new"))
    assert a == b


def test_the_readme_inference_example_runs_as_written(tmp_path, monkeypatch, capsys):
    """The README's Python block for video in, events out, executed as written on a made-up clip."""
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = readme.split("## Python API", 1)[1].split("```python\n")[2].split("```", 1)[0]
    assert "Predictor" in code and len(code.strip().splitlines()) == 5
    write_clip(tmp_path / "clip.mp4", 4.0)
    monkeypatch.chdir(tmp_path)
    scope: dict = {}
    try:
        exec(compile(code, "README.md", "exec"), scope)
    except WeightsError as exc:
        pytest.skip(str(exc))
    from avloc.inference.prediction import VideoPrediction

    assert isinstance(scope["pred"], VideoPrediction) and scope["pred"].method == "zero-shot"
    assert len(capsys.readouterr().out.splitlines()) == len(scope["pred"].events)
