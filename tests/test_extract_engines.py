"""Features made by different inference engines are interchangeable: a model trained on one engine's features
predicts the same on another's (real clips; skipped without ../shared)."""

from __future__ import annotations

from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

from avloc.media.engines import ENGINES, installed
from avloc.media.engines.support import has_precision
from avloc.media.extract import ExtractConfig, read_feature_meta
from avloc.media.extract_folder import extract_videos

CLIPS = ["llp_BjCEufrlXm4_speech_dog.mp4", "anet_GGSY1Qvo990.mp4", "anet_ZNVhz7ctTq0.mp4"]
OTHERS = [(e, p) for e in ENGINES for p in ("fp32", "bf16")
          if (e, p) != ("torch", "fp32") and installed(e) and has_precision(e, p, torch.device("cpu"))]


def _extract(shared: Path, out: Path, engine: str, precision: str):  # noqa: ANN202
    from avloc.data.ave import AVEDataset

    out.mkdir()
    (out / "Annotations.txt").write_text("".join(f"Bark&{Path(c).stem}&good&{i}&{i + 5}\n" for i, c in enumerate(CLIPS)))
    for split, rows in (("train", [0]), ("val", [1]), ("test", [2])):
        with h5py.File(out / f"{split}_order.h5", "w") as h5:
            h5["order"] = np.array(rows)
    cfg = ExtractConfig(format="ave", frames_per_segment=1, engine=engine, precision=precision)
    summary = extract_videos([shared / "media" / c for c in CLIPS], out, cfg, annotations=out / "Annotations.txt",
                             progress=False)
    assert summary.exit_status == 0
    return AVEDataset(AVEDataset.Config(), out), read_feature_meta(out)


@pytest.fixture(scope="module")
def reference(shared_dir, tmp_path_factory):  # noqa: ANN201
    return _extract(shared_dir, tmp_path_factory.mktemp("feats") / "torch", "torch", "fp32")


@pytest.mark.skipif(not OTHERS, reason="no other engine or precision installed")
@pytest.mark.parametrize("engine,precision", OTHERS)
def test_features_of_any_engine_train_and_predict_interchangeably(shared_dir, tmp_path, reference, engine,
                                                                   precision):
    from avloc.catalog import create_model

    ref, ref_meta = reference
    other, meta = _extract(shared_dir, tmp_path / engine, engine, precision)
    assert meta.engines == {"visual": f"{engine} {precision}", "audio": f"{engine} {precision}"}
    assert ref_meta.engines == {"visual": "torch fp32", "audio": "torch fp32"}
    assert meta.data_config() == ref_meta.data_config()  # avloc train reads both folders alike
    again = extract_videos([shared_dir / "media" / CLIPS[0]], tmp_path / engine, ExtractConfig(
        format="ave", frames_per_segment=1, engine=engine, precision=precision), progress=False)
    assert again.skipped and read_feature_meta(tmp_path / engine).engines == meta.engines  # a re-run keeps it
    tol = 1e-4 if precision == "fp32" else 0.1
    for key in ("audio", "visual"):
        a, b = other.visual if key == "visual" else other.audio, ref.visual if key == "visual" else ref.audio
        assert a.shape == b.shape and float((a - b).norm() / b.norm()) < tol, key

    torch.manual_seed(0)
    model = create_model("psp", audio_dim=512, visual_dim=1280)
    opt = torch.optim.Adam(model.parameters(), 1e-3)
    idx = torch.arange(len(CLIPS))
    batch = ref.batch(idx)
    for _ in range(5):  # a few steps on the torch features: the model must now separate the clips' segments
        loss = torch.nn.functional.cross_entropy(model(batch).class_logits.flatten(0, 1),
                                                 batch["segment_labels"].flatten())
        opt.zero_grad()
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        out_ref, out_other = model(batch), model(other.batch(idx))
    agree = (model.segment_predictions(out_ref) == model.segment_predictions(out_other)).float().mean()
    assert agree == 1.0 if precision == "fp32" else agree >= 0.9
    atol = 1e-3 if precision == "fp32" else 0.2
    torch.testing.assert_close(out_other.class_logits, out_ref.class_logits, rtol=0, atol=atol)
