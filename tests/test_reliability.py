"""Fault cases around a run: run folders, resume, kills, corrupt files, and errors that are one clear line.

Every test carrying the ``reliability`` marker is part of the suite (``pytest -m reliability``, also run by
``make test``): this module, plus the earlier fault cases where they live -- ``test_checkpoint.py`` (atomic
writes, refused pickle payloads, truncated files) and the malformed-input tests of ``test_data_ave.py`` and
``test_data_unav.py`` (every bad AVE and UnAV input class names its file). Data here is synthetic.
"""

from __future__ import annotations

import errno
import json
import logging
import os
import pickle
import shutil
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch
import yaml

from avloc.tools.cli import main
from avloc.config import load_config
from avloc.data.ave_labels import read_annotations
from avloc.engine.checkpoint import CheckpointError, load_safe, save_atomic
from avloc.engine.loop import fit
from avloc.engine.run_folder import RunFolderError, RunLock
from avloc.evaluation.detection import DetectionError, detect_eval
from avloc.tools.paths import config_path
from avloc.registry import ConfigError

pytestmark = pytest.mark.reliability

SMALL = ["train.batch_size=8", "train.eval_batch_size=16", "train.threads=1", "train.progress=false"]
QUIET = {"log": lambda *_: None}


def _cfg(*extra: str):
    return load_config(config_path("ave/psp_fully.yaml"), [*SMALL, *extra])


def _train_args(data: Path, out: Path, *extra: str) -> list[str]:
    return ["train", "ave/psp_fully.yaml", "--data", str(data), "--out", str(out), *SMALL, *extra]


def _one_line_error(capsys: pytest.CaptureFixture, rc: int, *words: str) -> str:
    """The CLI failed with status 2 and one stderr line naming ``words``; no traceback."""
    err = capsys.readouterr().err.strip()
    assert rc == 2, err
    assert err.startswith("avloc: error: ") and "\n" not in err and "Traceback" not in err, err
    for word in words:
        assert word in err, (word, err)
    return err


def _copy(src: Path, dst: Path) -> Path:
    shutil.copytree(src, dst)
    return dst


def _rewrite_h5(path: Path, data: np.ndarray, key: str = "avadataset") -> None:
    with h5py.File(path, "w") as fh:
        fh.create_dataset(key, data=data)


def _losses(run: Path) -> list[float]:
    return [json.loads(x)["train_loss"] for x in (run / "metrics.jsonl").read_text().splitlines()]


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = load_safe(a)["model"], load_safe(b)["model"]
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


@pytest.fixture(scope="module")
def full_run(tiny_ave_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """An uninterrupted 3-epoch run: what every interrupted-then-resumed run must equal."""
    run = tmp_path_factory.mktemp("full") / "run"
    fit(_cfg("train.epochs=3"), tiny_ave_dir, run, **QUIET)
    return run


# ------------------------------------------------------------------------------ 1. a folder belongs to one run
def test_fresh_run_refuses_another_runs_files_unless_overwrite(tiny_ave_dir, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    for name in ("best.pt", "report.json", "metrics.jsonl"):  # another run's results, but no last.pt
        (run / name).write_text("old")
    rc = main(_train_args(tiny_ave_dir, run, "train.epochs=1"))
    _one_line_error(capsys, rc, str(run), "best.pt, metrics.jsonl, report.json", "--overwrite")
    assert (run / "report.json").read_text() == "old"
    assert main(_train_args(tiny_ave_dir, run, "train.epochs=1", "--overwrite")) == 0
    assert json.loads((run / "report.json").read_text())["epochs"] == 1
    assert len(_losses(run)) == 1


def test_resume_refuses_other_data_and_says_what_changed(tiny_ave_dir, tmp_path):
    run = tmp_path / "run"
    fit(_cfg("train.epochs=2"), tiny_ave_dir, run, **QUIET)
    report = (run / "report.json").read_text()
    other = _copy(tiny_ave_dir, tmp_path / "other")
    with h5py.File(other / "test_order.h5", "r") as fh:
        order = fh["order"][()]
    _rewrite_h5(other / "test_order.h5", order[::-1].copy(), key="order")  # same size, other content
    with pytest.raises(RunFolderError, match=r"test_order\.h5: content changed"):
        fit(_cfg("train.epochs=2"), other, run, resume=True, **QUIET)
    with h5py.File(other / "audio_feature.h5", "r") as fh:
        audio = fh["avadataset"][()]
    _rewrite_h5(other / "audio_feature.h5", audio[..., :64])
    with pytest.raises(RunFolderError, match=r"audio_feature\.h5: shape .*128.* -> .*64"):
        fit(_cfg("train.epochs=2"), other, run, resume=True, **QUIET)
    assert (run / "report.json").read_text() == report  # the finished run's results are untouched
    again = fit(_cfg("train.epochs=2"), _copy(tiny_ave_dir, tmp_path / "moved"), run, resume=True, **QUIET)
    assert again["test_acc"] == json.loads(report)["test_acc"]  # the same data in another folder resumes


def test_one_writer_per_folder_and_a_killed_holder_does_not_block(tiny_ave_dir, tmp_path):
    run = tmp_path / "run"
    holder = subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(f"""
            import time
            from avloc.engine.run_folder import RunLock
            with RunLock({str(run)!r}):
                print("locked", flush=True)
                time.sleep(600)
        """)], stdout=subprocess.PIPE, text=True)
    try:
        assert holder.stdout.readline().strip() == "locked"
        with pytest.raises(RunFolderError, match=rf"in use by another avloc run \(pid {holder.pid} "):
            fit(_cfg("train.epochs=1"), tiny_ave_dir, run, **QUIET)
    finally:
        holder.send_signal(signal.SIGKILL)
        holder.wait()
    assert (run / ".lock").exists()  # the killed holder's lock file stays; its lock died with it
    assert fit(_cfg("train.epochs=1"), tiny_ave_dir, run, **QUIET)["epochs"] == 1
    assert not (run / ".lock").exists()


def test_lock_in_one_process_blocks_a_second_writer(tmp_path):
    with RunLock(tmp_path / "r"):
        with pytest.raises(RunFolderError, match="in use"):
            with RunLock(tmp_path / "r"):
                pass
    with RunLock(tmp_path / "r"):  # released: free again
        pass


def test_reproduce_keeps_cells_of_two_datasets_apart(tiny_ave_dir, tmp_path, capsys):
    """The same table on other data under the same --out trains its own cells, not the first data's."""
    other = _copy(tiny_ave_dir, tmp_path / "other")
    with h5py.File(other / "train_order.h5", "r") as fh:
        order = fh["order"][()]
    _rewrite_h5(other / "train_order.h5", order[: len(order) // 2], key="order")
    common = ["--seeds", "1", "--out", str(tmp_path / "rep"), "--quick", "--rows", "CE + negative pair filter",
              "train.epochs=1", "train.threads=1"]
    assert main(["reproduce", "losses", "--data", str(tiny_ave_dir), *common]) == 0
    capsys.readouterr()
    assert main(["reproduce", "losses", "--data", str(other), *common]) == 0
    assert "training" in capsys.readouterr().out
    assert len(list((tmp_path / "rep" / "cells").rglob("report.json"))) == 2


def test_partial_last_metrics_line_is_dropped_with_a_warning(tiny_ave_dir, tmp_path, full_run, caplog):
    run = tmp_path / "run"
    fit(_cfg("train.epochs=3"), tiny_ave_dir, run, stop_after=1, **QUIET)
    with open(run / "metrics.jsonl", "a") as fh:
        fh.write('{"epoch": 2, "lr": 0.00')  # a kill or a full disk mid-row
    with caplog.at_level(logging.WARNING):
        fit(_cfg("train.epochs=3"), tiny_ave_dir, run, resume=True, **QUIET)
    assert f"{run / 'metrics.jsonl'}: dropped a partial last line" in caplog.text
    assert _losses(run) == _losses(full_run)


def test_corrupt_line_inside_metrics_names_file_and_line(tiny_ave_dir, tmp_path):
    run = tmp_path / "run"
    fit(_cfg("train.epochs=3"), tiny_ave_dir, run, stop_after=2, **QUIET)
    lines = (run / "metrics.jsonl").read_text().splitlines()
    (run / "metrics.jsonl").write_text("garbage\n" + lines[1] + "\n")
    with pytest.raises(RunFolderError, match=r"metrics\.jsonl:1: not a JSON row"):
        fit(_cfg("train.epochs=3"), tiny_ave_dir, run, resume=True, **QUIET)


def test_stale_temp_files_are_removed_on_start(tiny_ave_dir, tmp_path, caplog):
    run = tmp_path / "run"
    fit(_cfg("train.epochs=2"), tiny_ave_dir, run, stop_after=1, **QUIET)
    stale = run / ".last.pt.k3j9x_2a"  # what a kill during save_atomic leaves
    stale.write_bytes(b"\0" * 4096)
    with caplog.at_level(logging.WARNING):
        fit(_cfg("train.epochs=2"), tiny_ave_dir, run, resume=True, **QUIET)
    assert not stale.exists() and f"removed {stale}" in caplog.text
    assert sorted(p.name for p in run.iterdir()) == [
        "best.pt", "config.yaml", "data.json", "last.pt", "metrics.jsonl", "model.json", "predictions_test.json",
        "report.json"]


def _tensor_record_offset(path: Path) -> int:
    """Byte offset of the first tensor's data inside a torch zip checkpoint."""
    import zipfile

    with zipfile.ZipFile(path) as zf:
        info = next(i for i in zf.infolist() if "/data/" in i.filename and not i.filename.endswith("/"))
        with open(path, "rb") as fh:  # local header: 30 bytes + name + extra field, then the data
            fh.seek(info.header_offset + 26)
            name_len, extra_len = np.frombuffer(fh.read(4), dtype="<u2")
        return info.header_offset + 30 + int(name_len) + int(extra_len)


def test_flipped_byte_in_a_checkpoint_is_caught(tmp_path, tiny_ave_dir, capsys):
    path = tmp_path / "c.pt"
    save_atomic({"model": {"w": torch.arange(64.0)}}, path)
    raw = bytearray(path.read_bytes())
    raw[_tensor_record_offset(path) + 5] ^= 0x01
    path.write_bytes(bytes(raw))
    assert torch.load(path, weights_only=True)["model"]["w"][1] != 1.0  # torch itself loads it silently
    with pytest.raises(CheckpointError, match=r"c\.pt: bad zip checksum"):
        load_safe(path)
    # a digest that does not match the content (a file rewritten by hand, or CRC-consistent damage)
    torch.save({"model": {"w": torch.arange(64.0)}, "sha256": "0" * 64}, path)
    with pytest.raises(CheckpointError, match=r"c\.pt: content digest mismatch"):
        load_safe(path)
    # through the CLI: resuming a run whose last.pt is corrupt is one line naming it
    run = tmp_path / "run"
    fit(_cfg("train.epochs=2"), tiny_ave_dir, run, stop_after=1, **QUIET)
    raw = bytearray((run / "last.pt").read_bytes())
    raw[_tensor_record_offset(run / "last.pt") + 3] ^= 0x10
    (run / "last.pt").write_bytes(bytes(raw))
    rc = main(_train_args(tiny_ave_dir, run, "train.epochs=2", "--resume"))
    _one_line_error(capsys, rc, str(run / "last.pt"), "bad zip checksum")


def test_resume_may_raise_epochs_of_a_finished_run(tiny_ave_dir, tmp_path, full_run):
    run = tmp_path / "run"
    fit(_cfg("train.epochs=2"), tiny_ave_dir, run, **QUIET)
    assert json.loads((run / "report.json").read_text())["epochs"] == 2
    with pytest.raises(ConfigError, match="train.epochs=1 is below the 2 epochs"):
        fit(_cfg("train.epochs=1"), tiny_ave_dir, run, resume=True, **QUIET)
    with pytest.raises(ConfigError, match="train.lr: 0.001 -> 0.5"):
        fit(_cfg("train.epochs=3", "train.lr=0.5"), tiny_ave_dir, run, resume=True, **QUIET)
    longer = fit(_cfg("train.epochs=3"), tiny_ave_dir, run, resume=True, **QUIET)
    full = json.loads((full_run / "report.json").read_text())
    assert longer["epochs"] == 3
    for key in ("val_acc", "test_acc", "best_test_acc", "selected_epoch"):
        assert longer[key] == full[key], key
    assert _losses(run) == _losses(full_run) and _same_weights(run / "last.pt", full_run / "last.pt")


def test_resume_a_run_written_before_a_config_key_existed(tiny_ave_dir, tmp_path, full_run):
    """A release that adds a key gives it the default that keeps the old behaviour: a run folder whose saved
    config lacks the key resumes when the key is at its default, and is refused when it is not."""
    run = tmp_path / "run"
    fit(_cfg("train.epochs=2", "loss.avps_warmup_steps=0"), tiny_ave_dir, run, stop_after=1, **QUIET)
    saved = yaml.safe_load((run / "config.yaml").read_text())
    del saved["loss"]["avps_warmup_steps"]  # as a release before the key wrote it
    (run / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    with pytest.raises(ConfigError, match=r"loss.avps_warmup_steps: 0 -> 26"):
        fit(_cfg("train.epochs=2", "loss.avps_warmup_steps=26"), tiny_ave_dir, run, resume=True, **QUIET)
    resumed = fit(_cfg("train.epochs=2", "loss.avps_warmup_steps=0"), tiny_ave_dir, run, resume=True, **QUIET)
    assert resumed["epochs"] == 2
    saved["loss"]["retired_key"] = 1  # a key this release does not know is named with the file
    (run / "config.yaml").write_text(yaml.safe_dump(saved, sort_keys=False))
    with pytest.raises(ConfigError, match=r"config\.yaml.*retired_key"):
        fit(_cfg("train.epochs=3", "loss.avps_warmup_steps=0"), tiny_ave_dir, run, resume=True, **QUIET)


# ------------------------------------------------------------------------------ kill -9, then resume
CHILD = textwrap.dedent("""
    import io, os, signal, sys
    import torch
    import avloc.engine.loop as loop
    from avloc.tools.cli import main

    mode, n = sys.argv[1], int(sys.argv[2])
    calls = [0]
    if mode == "checkpoint":  # die half way through writing the n-th checkpoint (the temp file stays)
        real_save = torch.save
        def save(obj, fh, *a, **k):
            calls[0] += 1
            if calls[0] == n:
                buf = io.BytesIO()
                real_save(obj, buf, *a, **k)
                fh.write(buf.getvalue()[: len(buf.getvalue()) // 2])
                fh.flush()
                os.kill(os.getpid(), signal.SIGKILL)
            return real_save(obj, fh, *a, **k)
        torch.save = save
    if mode == "metrics":  # die half way through writing the n-th metrics row
        real_append = loop.append_metrics
        def append(path, row):
            calls[0] += 1
            if calls[0] == n:
                with open(path, "a") as fh:
                    fh.write('{"epoch": ' + str(row["epoch"]) + ', "lr"')
                os.kill(os.getpid(), signal.SIGKILL)
            real_append(path, row)
        loop.append_metrics = append
    sys.exit(main(sys.argv[3:]))
""")


def _child(mode: str, n: int, args: list[str]) -> subprocess.Popen:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.Popen([sys.executable, "-c", CHILD, mode, str(n), *args], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


@pytest.mark.slow
def test_kill_9_anywhere_then_resume_equals_uninterrupted(tiny_ave_dir, tmp_path, full_run):
    """Three kills of one 3-epoch run: during a checkpoint write, during a metrics row, and from outside
    during training; each time ``--resume`` continues, and the end result is bit-identical."""
    run = tmp_path / "run"
    args = _train_args(tiny_ave_dir, run, "train.epochs=3")
    kills = [("checkpoint", 2), ("metrics", 2)]  # epoch 1's last.pt (after best.pt), epoch 2's row
    for mode, n in kills:
        child = _child(mode, n, args if mode == "checkpoint" else [*args, "--resume"])
        assert child.wait(timeout=300) == -signal.SIGKILL, child.stderr.read()
    assert (run / ".lock").exists()
    child = _child("none", 0, [*args, "--resume"])  # killed from outside once epoch 2's row is written
    deadline = time.time() + 300
    while child.poll() is None and time.time() < deadline:
        if (run / "metrics.jsonl").exists() and (run / "metrics.jsonl").read_text().count("\n") >= 2:
            break
        time.sleep(0.05)
    child.kill()
    child.wait()
    assert main([*args, "--resume"]) == 0
    assert _losses(run) == _losses(full_run)
    assert _same_weights(run / "last.pt", full_run / "last.pt")
    assert _same_weights(run / "best.pt", full_run / "best.pt")
    for key in ("test_acc", "val_acc", "best_test_acc", "selected_epoch"):
        assert json.loads((run / "report.json").read_text())[key] == json.loads(
            (full_run / "report.json").read_text())[key]
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]  # no temp file, no lock left


# ------------------------------------------------------------------------------ 2. errors, not tracebacks
def test_empty_split_is_one_line_and_leaves_nothing(tiny_ave_dir, tmp_path, capsys):
    data = _copy(tiny_ave_dir, tmp_path / "data")
    _rewrite_h5(data / "test_order.h5", np.zeros(0, dtype=np.int64), key="order")
    run = tmp_path / "run"
    rc = main(_train_args(data, run, "train.epochs=1"))
    _one_line_error(capsys, rc, str(data / "test_order.h5"), "test split is empty")
    assert not run.exists()  # no config.yaml left behind, no empty folder


def test_nan_loss_is_one_line(tiny_ave_dir, tmp_path, capsys):
    rc = main(_train_args(tiny_ave_dir, tmp_path / "run", "train.epochs=1", "train.lr=1e30"))
    _one_line_error(capsys, rc, str(tmp_path / "run"), "loss became nan at epoch 1, step 2", "train.lr")


def test_refused_pickle_checkpoint_is_one_line(tiny_ave_dir, tmp_path, capsys):
    class Payload:
        def __reduce__(self):
            return (os.system, ("echo pwned",))

    run = tmp_path / "run"
    fit(_cfg("train.epochs=1"), tiny_ave_dir, run, **QUIET)
    torch.save({"model": {}, "x": Payload()}, run / "best.pt", pickle_module=pickle)
    rc = main(["eval", str(run), "--data", str(tiny_ave_dir)])
    _one_line_error(capsys, rc, str(run / "best.pt"), "refused: it holds pickled code", "system")


def test_disk_full_is_one_line_and_keeps_the_last_checkpoint(tiny_ave_dir, tmp_path, capsys, monkeypatch):
    run = tmp_path / "run"
    fit(_cfg("train.epochs=2"), tiny_ave_dir, run, stop_after=1, **QUIET)
    before = (run / "last.pt").read_bytes()

    def full_disk(obj, fh, *a, **k):  # what torch.save raises when the disk fills up mid-file
        fh.write(b"PK\3\4 half a checkpoint")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", full_disk)
    rc = main(_train_args(tiny_ave_dir, run, "train.epochs=2", "--resume"))
    _one_line_error(capsys, rc, "No space left on device", str(run))
    monkeypatch.undo()
    assert (run / "last.pt").read_bytes() == before
    assert not [p.name for p in run.iterdir() if p.name.startswith(".")]


def test_read_only_out_is_one_line(tiny_ave_dir, tmp_path, capsys):
    if os.geteuid() == 0:  # root ignores file modes; sysfs refuses new folders even to root
        out = Path("/sys/avloc-run")
    else:
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o555)
        out = ro / "run"
    rc = main(_train_args(tiny_ave_dir, out, "train.epochs=1"))
    _one_line_error(capsys, rc, f"cannot use run folder {out}")


@pytest.mark.parametrize(("device", "words"), [("gpu", "is not a device"), ("cuda:99", "CUDA")])
def test_bad_device_is_one_line(tiny_ave_dir, tmp_path, capsys, device, words):
    rc = main(_train_args(tiny_ave_dir, tmp_path / "run", "train.epochs=1", f"train.device={device}"))
    _one_line_error(capsys, rc, f"train.device={device!r}", words)
    assert not (tmp_path / "run").exists()


def test_empty_yaml_config_is_an_error(tiny_ave_dir, tmp_path, capsys):
    (tmp_path / "empty.yaml").write_text("# nothing yet\n")
    rc = main(["train", str(tmp_path / "empty.yaml"), "--data", str(tiny_ave_dir), "--out", str(tmp_path / "r")])
    _one_line_error(capsys, rc, str(tmp_path / "empty.yaml"), "empty")


def test_data_dims_overriding_the_config_are_reported(tiny_ave_dir, tmp_path, caplog):
    data = _copy(tiny_ave_dir, tmp_path / "data")
    with h5py.File(data / "audio_feature.h5", "r") as fh:
        audio = fh["avadataset"][()]
    _rewrite_h5(data / "audio_feature.h5", audio[..., :64])
    with caplog.at_level(logging.WARNING):
        fit(_cfg("train.epochs=1", "model.audio_dim=128"), data, tmp_path / "run", **QUIET)
    assert f"model.audio_dim=128 in the config, but the data in {data} has 64: using 64" in caplog.text


def test_utf8_bom_in_annotations_is_accepted(tiny_ave_dir, tmp_path):
    text = (tiny_ave_dir / "Annotations.txt").read_bytes()
    (tmp_path / "Annotations.txt").write_bytes(b"\xef\xbb\xbf" + text)
    plain, bom = read_annotations(tiny_ave_dir / "Annotations.txt"), read_annotations(tmp_path / "Annotations.txt")
    assert bom.video_ids == plain.video_ids and np.array_equal(bom.category, plain.category)


@pytest.mark.parametrize(("gt_id", "pred_id", "hint"), [
    ("v_abc", "abc", "ground-truth ids carry a 'v_' prefix"),
    ("abc", "v_abc", "predicted ids carry a 'v_' prefix"),
    ("abc", "xyz", "the mAP would be 0"),
])
def test_detect_eval_with_no_known_video_says_why(tmp_path, capsys, gt_id, pred_id, hint):
    gt = {"database": {gt_id: {"duration": 30, "subset": "test",
                               "annotations": [{"segment": [0, 10], "label": "a"}]}}}
    (tmp_path / "gt.json").write_text(json.dumps(gt))
    pred = {"results": {pred_id: [{"segment": [0, 10], "label": "a", "score": 0.9}]}}
    (tmp_path / "p.json").write_text(json.dumps(pred))
    with pytest.raises(DetectionError, match=hint):
        detect_eval(tmp_path / "gt.json", "test", tmp_path / "p.json")
    rc = main(["detect-eval", "--annotations", str(tmp_path / "gt.json"), "--predictions", str(tmp_path / "p.json")])
    _one_line_error(capsys, rc, str(tmp_path / "p.json"), "none of its 1 video ids")
