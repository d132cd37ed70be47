"""HAN end to end through the CLI: on synthetic LLP-format data (AVVP F-scores, event predictions) and on the
dense UnAV layout (mAP table), each a couple of epochs of a narrow model."""

from __future__ import annotations

import json
from pathlib import Path

from avloc.data.synth_llp import SynthLLPConfig, write_synthetic_llp
from avloc.data.synth_unav import write_synthetic_unav
from avloc.tools.cli import main

from test_llp_data import make_llp

CONFIGS = Path(__file__).resolve().parents[1] / "configs"
NARROW = ["model.hidden=16", "model.ffn=16", "train.batch_size=4", "train.threads=1"]


def test_han_trains_on_llp_and_writes_f_scores_and_events(tmp_path: Path, capsys):
    ann = make_llp(tmp_path / "ann")
    cfg = SynthLLPConfig(audio_dim=8, visual_dim=16, st_dim=4, split_fractions=(0.5, 0.25, 0.25))
    write_synthetic_llp(tmp_path / "llp", ann, videos=4, seed=0, cfg=cfg)
    out = tmp_path / "run"
    assert main(["train", str(CONFIGS / "llp" / "han.yaml"), "--data", str(tmp_path / "llp"), "--out", str(out),
                 "train.epochs=3", *NARROW]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == "han" and report["data"] == "llp" and "test_seg_type" in report
    assert set(report["test"]) == {f"{lv}_{k}" for lv in ("seg", "evt") for k in ("audio", "visual", "av", "type", "event")}
    rows = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert [r["lr"] for r in rows] == [3e-4] * 3 and rows[-1]["train_loss"] < rows[0]["train_loss"]
    events = json.loads((out / "predictions_test.json").read_text())
    assert set(events["clips"]) == {"ddddddddddd_30_40"} and len(events["classes"]) == 25
    assert "seg_type" in capsys.readouterr().out


def test_han_dense_trains_on_the_unav_layout(tmp_path: Path):
    write_synthetic_unav(tmp_path / "unav", videos=30, seed=0)
    out = tmp_path / "run"
    assert main(["train", str(CONFIGS / "unav" / "han.yaml"), "--data", str(tmp_path / "unav"), "--out", str(out),
                 "train.epochs=2", *NARROW]) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["model"] == "han_dense" and set(report["test"]) >= {"mAP@0.5", "mAP_avg"}
    assert (out / "predictions_test.json").is_file()
