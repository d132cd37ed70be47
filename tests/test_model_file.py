"""The portable model file of ``avloc export``: a round trip keeps weights, config and record; a file from
another format version, an edited or corrupt file, another safetensors file and a config this release no
longer accepts each fail with one line naming the file; nothing is unpickled."""

from __future__ import annotations

import json

import pytest
import torch

from avloc.config import load_config
from avloc.formats.model_record import ModelRecord
from avloc.inference.model_file import TrainedModel, read_model_file, write_model_file
from avloc.inference.prediction import PredictError
from avloc.tools.paths import config_path

pytestmark = pytest.mark.reliability


@pytest.fixture()
def trained() -> TrainedModel:
    from avloc.catalog import MODELS

    cfg = load_config(config_path("ave/avel_fully.yaml"), ["model.audio_dim=16", "model.visual_dim=8"])
    torch.manual_seed(0)
    model = MODELS.create(cfg.model)
    names = [f"class {i}" for i in range(cfg.model.num_classes - 1)] + ["background"]
    record = ModelRecord("ave", names, 16, 8, {"config": {"format": "ave", "visual": "v", "audio": "a"}})
    return TrainedModel(cfg, record, model.state_dict(), "run", selected_epoch=3)


def _rewrite_metadata(path, **changes) -> None:
    from safetensors.torch import load_file, safe_open, save_file

    with safe_open(str(path), framework="pt") as fh:
        meta = dict(fh.metadata())
    save_file(load_file(str(path)), str(path), metadata={**meta, **changes})


def test_round_trip_keeps_weights_config_and_record(trained, tmp_path):
    path = write_model_file(trained, tmp_path / "m.avloc")
    back = read_model_file(path)
    assert back.cfg.to_dict() == trained.cfg.to_dict() and back.record == trained.record
    assert back.selected_epoch == 3 and back.source == str(path)
    assert set(back.state) == set(trained.state)
    assert all(torch.equal(back.state[k], v) for k, v in trained.state.items())
    assert not list(tmp_path.glob(".*tmp*"))  # the temp file was renamed into place


def test_another_format_version_names_both_releases(trained, tmp_path):
    path = write_model_file(trained, tmp_path / "m.avloc")
    _rewrite_metadata(path, format_version="2", avloc_version="9.0.0")
    with pytest.raises(PredictError, match=r"m\.avloc: model file format 2 from avloc 9\.0\.0; this avloc reads format 1"):
        read_model_file(path)


def test_an_edited_or_corrupt_file_is_refused(trained, tmp_path):
    path = write_model_file(trained, tmp_path / "m.avloc")
    _rewrite_metadata(path, record=json.dumps({**trained.record.to_json(), "class_names": ["x"] * 29}))
    with pytest.raises(PredictError, match="digest mismatch"):
        read_model_file(path)
    path = write_model_file(trained, tmp_path / "c.avloc")
    raw = bytearray(path.read_bytes())
    raw[-5] ^= 0xFF  # a flipped byte inside the last tensor
    path.write_bytes(bytes(raw))
    with pytest.raises(PredictError, match="c.avloc: content digest mismatch"):
        read_model_file(path)
    junk = tmp_path / "junk.avloc"
    junk.write_bytes(b"\x80\x04not a safetensors file")
    with pytest.raises(PredictError, match="junk.avloc: not an avloc model file"):
        read_model_file(junk)


def test_a_plain_safetensors_file_and_a_missing_file(tmp_path):
    from safetensors.torch import save_file

    plain = tmp_path / "weights.safetensors"
    save_file({"w": torch.zeros(2)}, str(plain))
    with pytest.raises(PredictError, match="not an avloc model file"):
        read_model_file(plain)
    with pytest.raises(PredictError, match="nope.avloc: model file not found"):
        read_model_file(tmp_path / "nope.avloc")


def test_a_config_key_this_release_does_not_know(trained, tmp_path):
    """An exported file whose config has a key this release dropped fails naming the key and the writer."""
    from avloc.engine.checkpoint import content_digest

    path = write_model_file(trained, tmp_path / "m.avloc")
    raw = trained.cfg.to_dict()
    raw["model"]["retired_switch"] = True
    config = json.dumps(raw, sort_keys=True)
    record = json.dumps(trained.record.to_json(), sort_keys=True)
    digest = content_digest({"model": dict(sorted(trained.state.items())), "config": config, "record": record})
    _rewrite_metadata(path, config=config, sha256=digest)
    with pytest.raises(PredictError, match=r"retired_switch.*written by avloc"):
        read_model_file(path)


def test_out_naming_a_folder_is_refused(trained, tmp_path):
    with pytest.raises(PredictError, match="is a folder"):
        write_model_file(trained, tmp_path)
