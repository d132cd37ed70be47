"""HAN and its parts against hand-derived values: attentive MMIL pooling, the official smoothed loss, the
parameter count of the official layers, and the frame averaging."""

from __future__ import annotations

import math

import pytest
import torch

from avloc.catalog import create_loss, create_model
from avloc.models.avvp_blocks import attentive_mmil
from avloc.models.outputs import AVVPOutput


def test_attentive_mmil_pooling_by_hand():
    # (B=1, T=2, M=2, C=1): prob[t][m]
    prob = torch.tensor([[0.8, 0.4], [0.2, 0.6]]).view(1, 2, 2, 1)
    time_logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0]]).view(1, 2, 2, 1)  # audio 1/4, 3/4; visual 1/2, 1/2
    modality_logits = torch.tensor([[0.0, 0.0], [math.log(4.0), 0.0]]).view(1, 2, 2, 1)  # t0 1/2, 1/2; t1 4/5, 1/5
    video, audio, visual = attentive_mmil(prob, time_logits, modality_logits)
    # audio = 1/4 * 0.8 + 3/4 * 0.2 = 0.35; visual = 1/2 * 0.4 + 1/2 * 0.6 = 0.5
    # video = (1/2 * 0.2 + 1/2 * 0.2) + (4/5 * 0.15 + 1/5 * 0.3) = 0.2 + 0.18 = 0.38
    assert audio.item() == pytest.approx(0.35)
    assert visual.item() == pytest.approx(0.5)
    assert video.item() == pytest.approx(0.38)


def test_attentive_mmil_ignores_padded_steps():
    prob = torch.tensor([[0.8, 0.4], [0.2, 0.6], [1.0, 1.0]]).view(1, 3, 2, 1)
    time_logits = torch.tensor([[0.0, 0.0], [math.log(3.0), 0.0], [50.0, 50.0]]).view(1, 3, 2, 1)
    modality_logits = torch.tensor([[0.0, 0.0], [math.log(4.0), 0.0], [0.0, 0.0]]).view(1, 3, 2, 1)
    video, audio, visual = attentive_mmil(prob, time_logits, modality_logits, torch.tensor([[True, True, False]]))
    assert (video.item(), audio.item(), visual.item()) == pytest.approx((0.38, 0.35, 0.5))


def test_han_loss_is_the_official_smoothed_bce():
    y = torch.tensor([[1.0, 0.0]])
    out = AVVPOutput(segment_prob=torch.zeros(1, 10, 2, 2), video_prob=torch.tensor([[0.8, 0.1]]),
                     audio_prob=torch.tensor([[0.6, 0.2]]), visual_prob=torch.tensor([[0.9, 0.3]]))
    parts = create_loss("han")(out, {"video_labels": y})
    video = -(math.log(0.8) + math.log(0.9)) / 2
    audio = -(math.log(0.6) + math.log(0.8)) / 2  # audio targets = y (a = 1.0)
    # visual targets 0.9 * y + 0.05 = [0.95, 0.05]
    visual = -(0.95 * math.log(0.9) + 0.05 * math.log(0.1) + 0.05 * math.log(0.3) + 0.95 * math.log(0.7)) / 2
    assert parts["video"].item() == pytest.approx(video, rel=1e-6)
    assert parts["audio"].item() == pytest.approx(audio, rel=1e-6)
    assert parts["visual"].item() == pytest.approx(visual, rel=1e-6)
    assert parts["loss"].item() == pytest.approx(video + audio + visual, rel=1e-6)
    saturated = AVVPOutput(segment_prob=out.segment_prob, video_prob=torch.tensor([[0.0, 0.0]]),
                           audio_prob=out.audio_prob, visual_prob=out.visual_prob)  # p = 0 clamped to 1e-7
    assert create_loss("han")(saturated, {"video_labels": y})["video"].item() == pytest.approx(-math.log(1e-7) / 2,
                                                                                               rel=1e-5)


def lin(i: int, o: int) -> int:
    return i * o + o


def test_han_parameter_count_is_the_official_forward_path():
    attention = 4 * 512 * 512 + 4 * 512  # in-projection (q, k, v) and out-projection, with biases
    layer = 2 * attention + lin(512, 512) + lin(512, 512) + 2 * 2 * 512  # self + cross, FFN, 2 LayerNorms
    projections = lin(128, 512) + lin(2048, 512) + lin(512, 512) + lin(1024, 512)
    heads = 3 * lin(512, 25)  # class probabilities, temporal and modality attention
    assert create_model("han").num_parameters() == projections + layer + heads == 4_569_675
    assert create_model("avvp_linear").num_parameters() == lin(128, 75) + lin(2048 + 512, 75)


def test_han_averages_frames_like_projecting_each_frame():
    torch.manual_seed(0)
    model = create_model("han", visual_dim=16, audio_dim=8, st_dim=4, hidden=8, ffn=8).eval()
    frames = torch.randn(2, 80, 16)
    per_frame = model.frame_proj(frames).view(2, 10, 8, 8).mean(2)  # the official order
    from avloc.models.han import segment_visual

    assert torch.allclose(model.frame_proj(segment_visual(frames, 10)), per_frame, atol=1e-5)


def test_han_output_shapes_and_bad_inputs():
    model = create_model("han").eval()
    batch = model.example_batch(3, torch.Generator().manual_seed(0))
    out = model(batch)
    assert out.segment_prob.shape == (3, 10, 2, 25) and out.video_prob.shape == (3, 25)
    assert ((out.video_prob >= 0) & (out.video_prob <= 1)).all()
    batch["visual"] = batch["visual"][:, :75]
    with pytest.raises(ValueError, match=r"han: 'visual' must be \(B, T \* K, 2048\) frames .* got \(3, 75, 2048\)"):
        model(batch)
    batch.pop("visual_st")
    with pytest.raises(ValueError, match="han: the batch has no 'visual_st'"):
        model(batch)


def test_han_dense_cas_is_the_audio_visual_evidence_and_ignores_padding():
    torch.manual_seed(0)
    model = create_model("han_dense", audio_dim=6, visual_dim=5, num_classes=4, hidden=8, ffn=8).eval()
    g = torch.Generator().manual_seed(1)
    short = {"audio": torch.randn(1, 7, 6, generator=g), "visual": torch.randn(1, 7, 5, generator=g),
             "mask": torch.ones(1, 7, dtype=torch.bool)}
    padded = {"audio": torch.cat([short["audio"], torch.randn(1, 3, 6, generator=g)], 1),
              "visual": torch.cat([short["visual"], torch.randn(1, 3, 5, generator=g)], 1),
              "mask": torch.tensor([[True] * 7 + [False] * 3])}
    with torch.no_grad():
        a, b = model(short), model(padded)
    pa, pv = torch.sigmoid(a.audio_logits), torch.sigmoid(a.visual_logits)
    assert torch.allclose(a.cas, (pa * pv).sqrt(), atol=1e-5)
    assert torch.allclose(b.cas[:, :7], a.cas, atol=1e-5) and (b.cas[:, 7:] == 0).all()
    assert torch.allclose(b.video_logits, a.video_logits, atol=1e-4)
    loss = create_loss("han")(a, {"video_labels": torch.tensor([[1.0, 0.0, 0.0, 1.0]])})
    assert torch.isfinite(loss["loss"]) and set(loss) == {"loss", "video", "audio", "visual"}
