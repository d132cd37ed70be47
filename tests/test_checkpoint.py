"""Checkpoints: atomic writes, safe loads that refuse pickled objects, clear errors."""

from __future__ import annotations

import pickle

import pytest
import torch

from avloc.engine.checkpoint import CheckpointError, load_safe, save_atomic

pytestmark = pytest.mark.reliability  # part of the fault-case suite (see test_reliability.py)


class _Evil:
    def __reduce__(self):
        return (print, ("pwned",))


def test_round_trip_and_no_temp_files(tmp_path):
    path = tmp_path / "ck" / "last.pt"
    save_atomic({"model": {"w": torch.ones(2)}, "epoch": 3, "state": {"best": 0.5}}, path)
    obj = load_safe(path)
    assert obj["epoch"] == 3 and torch.equal(obj["model"]["w"], torch.ones(2))
    assert [p.name for p in path.parent.iterdir()] == ["last.pt"]


def test_refuses_arbitrary_pickles(tmp_path):
    path = tmp_path / "evil.pt"
    torch.save({"model": {}, "x": _Evil()}, path, pickle_module=pickle)
    with pytest.raises(CheckpointError, match="not a loadable"):
        load_safe(path)


def test_missing_truncated_and_wrong_content(tmp_path):
    with pytest.raises(CheckpointError, match="not found"):
        load_safe(tmp_path / "nope.pt")
    path = tmp_path / "t.pt"
    save_atomic({"model": {"w": torch.ones(100)}}, path)
    path.write_bytes(path.read_bytes()[:50])
    with pytest.raises(CheckpointError):
        load_safe(path)
    torch.save({"weights": 1}, path)
    with pytest.raises(CheckpointError, match="'model'"):
        load_safe(path)


def test_failed_write_keeps_old_file(tmp_path, monkeypatch):
    path = tmp_path / "last.pt"
    save_atomic({"model": {"w": torch.zeros(1)}}, path)

    def boom(*a, **k):
        raise OSError("disk full")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError):
        save_atomic({"model": {"w": torch.ones(1)}}, path)
    monkeypatch.undo()
    assert torch.equal(load_safe(path)["model"]["w"], torch.zeros(1))
    assert [p.name for p in tmp_path.iterdir()] == ["last.pt"]
