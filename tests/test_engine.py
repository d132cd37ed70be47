"""The training engine end to end: CLI run folder, resume equivalence, determinism, schedules, sharding."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import torch

from avloc.config import load_config
from avloc.engine.checkpoint import load_safe
from avloc.engine.distributed import DistInfo
from avloc.engine.loop import epoch_batches, fit, lr_at_epoch
from avloc.registry import ConfigError
from avloc.tools.cli import main
from avloc.tools.paths import config_path

SMALL = ["train.batch_size=8", "train.eval_batch_size=16", "train.threads=1"]


@pytest.fixture(scope="module")
def ave_dir(tmp_path_factory) -> Path:
    from avloc.data.synth_ave import write_synthetic_ave

    out = tmp_path_factory.mktemp("ave")
    write_synthetic_ave(out, videos=40, seed=0, dtype="float32")
    return out


def _cfg(*extra: str):
    return load_config(config_path("ave/psp_fully.yaml"), [*SMALL, *extra])


def test_train_and_eval_through_cli(ave_dir, tmp_path, capsys):
    run = tmp_path / "run"
    rc = main(["train", "ave/psp_fully.yaml", "--data", str(ave_dir), "--out", str(run),
               "train.epochs=2", *SMALL])
    assert rc == 0
    for name in ("config.yaml", "metrics.jsonl", "best.pt", "last.pt", "report.json", "predictions_test.json"):
        assert (run / name).is_file(), name
    report = json.loads((run / "report.json").read_text())
    for key in ("val_acc", "test_acc", "best_test_acc", "epochs", "params", "seconds_per_epoch", "peak_rss_mb"):
        assert key in report, key
    assert report["epochs"] == 2 and 0.0 <= report["test_acc"] <= 1.0
    assert report["best_test_acc"] >= report["test_acc"] - 1e-9
    rows = [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]
    assert [r["epoch"] for r in rows] == [1, 2] and all("val_acc" in r and "train_loss" in r for r in rows)
    capsys.readouterr()
    assert main(["eval", str(run), "--data", str(ave_dir), "--split", "test"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["acc"] == pytest.approx(report["test_acc"])
    # unknown override keys are an error with a clear message, not a traceback
    assert main(["train", "ave/psp_fully.yaml", "--data", str(ave_dir), "--out", str(tmp_path / "x"),
                 "train.epochz=2"]) == 2
    assert "epochz" in capsys.readouterr().err


def test_resume_equals_uninterrupted(ave_dir, tmp_path):
    full = fit(_cfg("train.epochs=3"), ave_dir, tmp_path / "full", log=lambda *_: None)
    part = fit(_cfg("train.epochs=3"), ave_dir, tmp_path / "part", stop_after=1, log=lambda *_: None)
    assert part == {"finished": False, "epoch": 1}
    with pytest.raises(ConfigError, match="already holds a run"):
        fit(_cfg("train.epochs=3"), ave_dir, tmp_path / "part", log=lambda *_: None)
    with pytest.raises(ConfigError, match="train.lr"):
        fit(_cfg("train.epochs=3", "train.lr=0.5"), ave_dir, tmp_path / "part", resume=True, log=lambda *_: None)
    resumed = fit(_cfg("train.epochs=3"), ave_dir, tmp_path / "part", resume=True, log=lambda *_: None)
    for key in ("val_acc", "test_acc", "best_test_acc", "selected_epoch"):
        assert resumed[key] == full[key], key
    a = load_safe(tmp_path / "full" / "last.pt")["model"]
    b = load_safe(tmp_path / "part" / "last.pt")["model"]
    assert all(torch.equal(a[k], b[k]) for k in a)
    losses = lambda p: [json.loads(x)["train_loss"] for x in (p / "metrics.jsonl").read_text().splitlines()]
    assert losses(tmp_path / "full") == losses(tmp_path / "part")


def test_a_model_and_loss_that_cannot_work_together_fail_when_the_run_is_built(ave_dir, tmp_path):
    named = r"model 'psp' and loss 'vscg' do not work together: vscg loss: needs model output 'event_logits'"
    with pytest.raises(ConfigError, match=named):
        fit(_cfg("loss.name=vscg"), ave_dir, tmp_path / "run", log=lambda *_: None)
    assert not (tmp_path / "run" / "last.pt").exists()


def test_same_seed_same_numbers(ave_dir, tmp_path):
    r1 = fit(_cfg("train.epochs=1", "train.seed=5"), ave_dir, tmp_path / "a", log=lambda *_: None)
    r2 = fit(_cfg("train.epochs=1", "train.seed=5"), ave_dir, tmp_path / "b", log=lambda *_: None)
    assert r1["test_acc"] == r2["test_acc"] and r1["val_acc"] == r2["val_acc"]
    la = (tmp_path / "a" / "metrics.jsonl").read_text().split('"seconds"')[0]
    lb = (tmp_path / "b" / "metrics.jsonl").read_text().split('"seconds"')[0]
    assert la == lb


def test_init_seed_sets_the_weights_alone(ave_dir, tmp_path):
    """``train.init_seed`` gives the weights of that seed; the order and dropout stay on ``train.seed``."""
    from avloc.engine.build import build_run, open_run

    def built(*extra: str):
        run = open_run(_cfg(*extra), tmp_path / "x", resume=False)
        build_run(run, ave_dir)
        return run.model.state_dict(), torch.rand(3)  # the weights, the next draw of the dropout stream

    w5, _ = built("train.seed=5")
    w1_5, draw_a = built("train.seed=1", "train.init_seed=5")
    w2_5, draw_b = built("train.seed=2", "train.init_seed=5")
    assert all(torch.equal(w5[k], w1_5[k]) and torch.equal(w5[k], w2_5[k]) for k in w5)
    assert not torch.equal(draw_a, draw_b)  # dropout streams of seeds 1 and 2


def test_avps_warmup_follows_the_global_step_and_resumes_exactly(ave_dir, tmp_path):
    """The loop sets the loss's global step: a warm-up spanning more than one epoch gives the same numbers
    resumed after epoch 1 as uninterrupted, and other numbers than no warm-up."""
    warm = ("train.epochs=2", "loss.avps_warmup_steps=5")  # 40 videos // 8 = 3 steps per epoch
    full = fit(_cfg(*warm), ave_dir, tmp_path / "full", log=lambda *_: None)
    fit(_cfg(*warm), ave_dir, tmp_path / "part", stop_after=1, log=lambda *_: None)
    resumed = fit(_cfg(*warm), ave_dir, tmp_path / "part", resume=True, log=lambda *_: None)
    fit(_cfg("train.epochs=2", "loss.avps_warmup_steps=0"), ave_dir, tmp_path / "plain", log=lambda *_: None)
    losses = lambda p: [json.loads(x)["train_loss"] for x in (p / "metrics.jsonl").read_text().splitlines()]
    assert losses(tmp_path / "full") == losses(tmp_path / "part")
    assert resumed["test_acc"] == full["test_acc"]
    assert losses(tmp_path / "plain") != losses(tmp_path / "full")


def test_lr_schedule_matches_official_rule():
    cfg = load_config(None, ["train.lr=1.0", "train.lr_gamma=0.8", "train.lr_decay_epochs=[60, 120]"])
    # official PSP: lr *= 0.8 when (epoch+1) % 60 == 0 and epoch < 170, i.e. after 1-indexed epochs 60 and 120
    assert lr_at_epoch(cfg, 59) == 1.0
    assert lr_at_epoch(cfg, 60) == pytest.approx(0.8)
    assert lr_at_epoch(cfg, 119) == pytest.approx(0.8)
    assert lr_at_epoch(cfg, 120) == pytest.approx(0.64)


def test_epoch_batches_cover_every_sample_and_reshuffle():
    cfg = load_config(None, ["train.batch_size=8", "train.drop_last=false"])
    single = DistInfo()
    e0 = torch.cat(list(epoch_batches(21, cfg, 0, single)))
    e1 = torch.cat(list(epoch_batches(21, cfg, 1, single)))
    assert sorted(e0.tolist()) == list(range(21)) and sorted(e1.tolist()) == list(range(21))
    assert not torch.equal(e0, e1)
    # every batch is shuffled, not only the first (the official weak loader's bug)
    batches = list(epoch_batches(64, cfg, 0, single))
    assert all(not torch.equal(b, torch.arange(b[0], b[0] + len(b))) for b in batches)
    # two ranks split each global batch into disjoint halves that together equal the single-process batch
    r0 = list(epoch_batches(21, cfg, 0, DistInfo(0, 2, 0)))
    r1 = list(epoch_batches(21, cfg, 0, DistInfo(1, 2, 1)))
    for whole, a, b in zip(epoch_batches(21, cfg, 0, single), r0, r1):
        assert sorted(torch.cat([a, b]).tolist()) == sorted(whole.tolist())
    cfg_drop = load_config(None, ["train.batch_size=8", "train.drop_last=true"])
    assert len(list(epoch_batches(21, cfg_drop, 0, single))) == 2


def test_batches_of_the_engine_data_equal_fresh_batches(ave_dir):
    from avloc.engine.build import load_data

    data = load_data(_cfg(), ave_dir)
    chunks = [torch.tensor([0, 1, 2]), torch.tensor([3, 4, 5]), torch.tensor([6, 7])]
    for idx, got in zip(chunks, data.batches(chunks)):
        fresh = data.batch(idx)
        assert all(torch.equal(got[k], fresh[k]) for k in fresh)
