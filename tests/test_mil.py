"""MIL baseline, its building blocks (masked top-k pooling, masked conv) and the mil_bce loss."""

from __future__ import annotations

import math

import pytest
import torch
from torch.nn import functional as F

from avloc.models.dense_blocks import masked_topk_mean, topk_counts
from avloc.models.mil import dense_example_batch
from avloc.catalog import LOSSES, MODELS
from avloc.models.outputs import DenseOutput

DIMS = {"audio_dim": 6, "visual_dim": 10, "num_classes": 4, "hidden": 16}


def video_only(logits: torch.Tensor) -> DenseOutput:
    """A dense output whose per-step fields are empty: the MIL loss reads only the video logits."""
    empty = logits.new_zeros(logits.shape[0], 0, logits.shape[1])  # (B, 0, C)
    return DenseOutput(cas=empty, cas_logits=empty, video_logits=logits)


def make(**kw):
    torch.manual_seed(0)
    return MODELS.create({"name": "mil", **DIMS, **kw}).eval()


def test_topk_counts_ceil_per_video():
    mask = torch.zeros(3, 20, dtype=torch.bool)
    mask[0, :20] = True
    mask[1, :9] = True
    mask[2, :1] = True
    assert topk_counts(mask, 8.0).tolist() == [3, 2, 1]


def test_masked_topk_mean_matches_loop_reference():
    g = torch.Generator().manual_seed(1)
    scores = torch.randn(4, 13, 3, generator=g)
    lengths = [13, 7, 1, 9]
    mask = torch.arange(13)[None] < torch.tensor(lengths)[:, None]
    scores[~mask] = 100.0  # padded steps must never be pooled, however large
    got = masked_topk_mean(scores, mask, ratio=4.0)
    for b, n in enumerate(lengths):
        k = math.ceil(n / 4.0)
        ref = scores[b, :n].sort(dim=0, descending=True).values[:k].mean(0)
        torch.testing.assert_close(got[b], ref)


def test_mil_outputs_and_probabilities():
    model = make()
    batch = model.example_batch(3, torch.Generator().manual_seed(0))
    with torch.no_grad():
        out = model(batch)
    assert out.cas.shape == (3, 12, 4) and out.video_logits.shape == (3, 4)
    assert float(out.cas.min()) >= 0.0 and float(out.cas.max()) <= 1.0
    assert torch.all(out.cas[~batch["mask"]] == 0)


@pytest.mark.parametrize("fusion", ["concat", "sum", "mean"])
def test_mil_padding_does_not_change_valid_outputs(fusion):
    """The same video alone and padded with garbage gives the same CAS on its steps and the same video score."""
    model = make(fusion=fusion, encoder_layers=2, fused_layers=2)
    g = torch.Generator().manual_seed(3)
    audio, visual = torch.randn(1, 7, 6, generator=g), torch.randn(1, 7, 10, generator=g)
    alone = model({"audio": audio, "visual": visual, "mask": torch.ones(1, 7, dtype=torch.bool)})
    pad_a = torch.cat([audio, 50 * torch.randn(1, 5, 6, generator=g)], 1)
    pad_v = torch.cat([visual, 50 * torch.randn(1, 5, 10, generator=g)], 1)
    mask = torch.arange(12)[None] < 7
    padded = model({"audio": pad_a, "visual": pad_v, "mask": mask})
    torch.testing.assert_close(padded.cas[:, :7], alone.cas)
    torch.testing.assert_close(padded.video_logits, alone.video_logits)


@pytest.mark.parametrize("fusion", ["concat", "sum"])
def test_mil_every_parameter_gets_gradient(fusion):
    model = make(fusion=fusion).train()
    batch = model.example_batch(4, torch.Generator().manual_seed(0))
    loss = LOSSES.create({"name": "mil_bce"})(model(batch), batch)["loss"]
    loss.backward()
    missing = [n for n, p in model.named_parameters() if p.grad is None or not torch.any(p.grad != 0)]
    assert missing == []
    if fusion == "sum":
        assert not any(n.startswith("fuse.") for n, _ in model.named_parameters())


def test_mil_bce_is_the_mean_binary_cross_entropy():
    logits = torch.tensor([[2.0, -1.0, 0.5]])
    labels = torch.tensor([[1.0, 0.0, 1.0]])
    got = LOSSES.create({"name": "mil_bce", "weight": 2.0})(video_only(logits), {"video_labels": labels})
    ref = F.binary_cross_entropy_with_logits(logits, labels)
    torch.testing.assert_close(got["loss"], 2.0 * ref)
    torch.testing.assert_close(got["bce"], ref)
    with pytest.raises(ValueError, match="video_labels"):
        LOSSES.create({"name": "mil_bce"})(video_only(logits), {"video_labels": labels[:, :2]})


def test_mil_rejects_bad_inputs():
    model = make()
    good = dense_example_batch(2, torch.Generator().manual_seed(0), 6, 10, 4, steps=5)
    with pytest.raises(ValueError, match="mask"):
        model({**good, "mask": good["mask"].float()})
    with pytest.raises(ValueError, match="share"):
        model({**good, "visual": good["visual"][:, :4]})
    empty = good["mask"].clone()
    empty[1] = False
    with pytest.raises(ValueError, match="at least one valid"):
        model({**good, "mask": empty})
    with pytest.raises(ValueError, match="fusion"):
        make(fusion="product")


def test_linear_mil_is_one_linear_map_of_the_concatenated_features():
    torch.manual_seed(0)
    model = MODELS.create({"name": "linear_mil", "audio_dim": 6, "visual_dim": 10, "num_classes": 4})
    assert model.num_parameters() == (6 + 10 + 1) * 4  # no encoder, no hidden layer
    batch = model.example_batch(3, torch.Generator().manual_seed(1))
    out = model(batch)
    x = torch.cat([batch["audio"], batch["visual"]], dim=-1)
    expect = x @ model.head.weight.T + model.head.bias
    assert torch.allclose(out.cas_logits, expect, atol=1e-6)
    assert torch.allclose(out.cas, torch.sigmoid(expect) * batch["mask"].unsqueeze(-1), atol=1e-6)
    assert torch.allclose(out.video_logits, masked_topk_mean(expect, batch["mask"], 8.0), atol=1e-6)


def test_linear_skip_adds_linear_mil_read_out():
    torch.manual_seed(0)
    model = MODELS.create({"name": "mil", **DIMS, "linear_skip": True}).eval()
    plain = MODELS.create({"name": "mil", **DIMS}).eval()
    assert model.num_parameters() - plain.num_parameters() == (6 + 10) * 4  # no bias: the head has one
    plain.load_state_dict({k: v for k, v in model.state_dict().items() if not k.startswith("skip.")})
    batch = model.example_batch(2, torch.Generator().manual_seed(0))
    with torch.no_grad():
        out, ref = model(batch), plain(batch)
    skip = model.skip(torch.cat([batch["audio"], batch["visual"]], dim=-1))
    assert torch.allclose(out.cas_logits, ref.cas_logits + skip, atol=1e-5)


def test_shipped_mil_pools_the_top_half_of_each_video():
    """configs/unav/mil.yaml pools the top ceil(T_valid / 2) steps per class (with T/8 its nonlinear path
    learnt to raise only a few peaks and localised worse than linear_mil; docs/dense.md): checked against a
    per-video sort on a batch of two lengths."""
    from avloc.config import load_config
    from avloc.tools.paths import config_path

    cfg = load_config(config_path("unav/mil.yaml"), ["model.audio_dim=6", "model.visual_dim=10",
                                                     "model.num_classes=4"])
    assert cfg.model.topk_ratio == 2.0 and cfg.model.linear_skip
    torch.manual_seed(0)
    model = MODELS.create({"name": "mil", **{k: v for k, v in vars(cfg.model).items()}}).eval()
    batch = model.example_batch(2, torch.Generator().manual_seed(3))
    batch["mask"][1, 5:] = False  # lengths 12 and 5 -> k = 6 and 3
    with torch.no_grad():
        out = model(batch)
    for b, k in ((0, 6), (1, 3)):
        valid = out.cas_logits[b, batch["mask"][b]]  # (T_valid, C)
        expect = valid.sort(dim=0, descending=True).values[:k].mean(dim=0)
        assert torch.allclose(out.video_logits[b], expect, atol=1e-6)
