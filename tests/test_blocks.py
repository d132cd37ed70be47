"""Shared AVE blocks: hand-computed values on tiny tensors, plug-in behaviour of ESCM, shape errors."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from avloc.models.blocks import (
    CERE,
    ESCM,
    ESCM_INITS,
    AudioGuidedVisualAttention,
    PositiveSamplePropagation,
    cosine_pairs,
    pooled_summary,
)


def set_identity(*layers: nn.Linear) -> None:
    with torch.no_grad():
        for layer in layers:
            layer.weight.copy_(torch.eye(layer.weight.shape[0], layer.weight.shape[1]))


def test_agva_with_flat_scores_averages_the_raw_regions():
    att = AudioGuidedVisualAttention(audio_dim=3, visual_dim=4, hidden=5, regions=4)
    with torch.no_grad():
        att.affine_h.weight.zero_()  # z = 0 for every region -> alpha = 1/4
    visual = torch.arange(2 * 1 * 2 * 2 * 4, dtype=torch.float32).view(2, 1, 2, 2, 4)
    out, alpha = att(torch.randn(2, 1, 3), visual)
    assert torch.allclose(alpha, torch.full((2, 1, 4), 0.25))
    # video 0: regions are rows [0..3], [4..7], [8..11], [12..15] -> mean [6, 7, 8, 9]
    assert torch.allclose(out[0, 0], torch.tensor([6.0, 7.0, 8.0, 9.0]))
    assert torch.allclose(out[1, 0], torch.tensor([22.0, 23.0, 24.0, 25.0]))


def test_agva_matches_the_reference_formula_including_the_per_region_audio_offset():
    torch.manual_seed(0)
    att = AudioGuidedVisualAttention(audio_dim=3, visual_dim=6, hidden=5, regions=4).double()
    audio, visual = torch.rand(2, 3, 3, dtype=torch.double), torch.rand(2, 3, 2, 2, 6, dtype=torch.double)
    out, alpha = att(audio, visual)
    w = {n: p.detach() for n, p in att.named_parameters()}
    x = visual.reshape(2, 3, 4, 6)
    h = torch.relu(x @ w["affine_video.weight"].T + w["affine_video.bias"])  # (B, T, R, hidden)
    g = torch.relu(audio @ w["affine_audio.weight"].T + w["affine_audio.bias"])
    g = g @ w["affine_g.weight"].T  # (B, T, R): one offset per region
    for b in range(2):
        for t in range(3):
            z = torch.stack([
                (w["affine_h.weight"][0] * torch.tanh(h[b, t, r] @ w["affine_v.weight"].T + g[b, t, r])).sum()
                for r in range(4)
            ])
            a = torch.softmax(z, 0)
            assert torch.allclose(alpha[b, t], a)
            assert torch.allclose(out[b, t], (a[:, None] * x[b, t]).sum(0))


def test_agva_weight_gradient_passes_gradcheck():
    torch.manual_seed(1)
    att = AudioGuidedVisualAttention(audio_dim=3, visual_dim=6, hidden=5, regions=4).double()
    audio, visual = torch.rand(2, 2, 3, dtype=torch.double), torch.rand(2, 2, 2, 2, 6, dtype=torch.double)

    def attended(w: torch.Tensor) -> torch.Tensor:
        return torch.func.functional_call(att, {"affine_video.weight": w}, (audio, visual))[0]

    assert torch.autograd.gradcheck(attended, (att.affine_video.weight.detach().clone().requires_grad_(),))


def test_agva_rejects_a_region_count_it_was_not_built_for():
    att = AudioGuidedVisualAttention(regions=49)
    with pytest.raises(ValueError, match="49 regions.*36 regions"):
        att(torch.rand(1, 10, 128), torch.rand(1, 10, 6, 6, 512))


def test_psp_prune_row_normalises_thresholds_and_optionally_renormalises():
    beta = torch.tensor([[[3.0, 1.0, 0.0, 0.0], [0.0, 0.0, 0.0, 0.0], [1.0, 1.0, 1.0, 1.0]]])
    renorm = PositiveSamplePropagation(dim=4, hidden=4, threshold=0.3)._prune(beta)
    plain = PositiveSamplePropagation(dim=4, hidden=4, threshold=0.3, renormalize=False)._prune(beta)
    # row 0: [.75, .25, 0, 0] -> .25 <= .3 pruned -> [.75, 0, 0, 0] -> renormalised [1, 0, 0, 0]
    # row 1: all zero stays zero (1e-8 guard); row 2: [.25] * 4, all pruned
    assert torch.allclose(renorm[0], torch.tensor([[1.0, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]), atol=1e-7)
    assert torch.allclose(plain[0], torch.tensor([[0.75, 0, 0, 0], [0, 0, 0, 0], [0, 0, 0, 0]]), atol=1e-7)


@pytest.mark.parametrize("use_fc", [False, True])
def test_psp_forward_on_a_hand_computed_two_segment_example(use_fc):
    psp = PositiveSamplePropagation(dim=2, hidden=2, threshold=0.099, use_fc=use_fc).eval()
    set_identity(psp.v_L1, psp.v_L2, psp.a_L1, psp.a_L2)
    if use_fc:
        set_identity(psp.v_fc, psp.a_fc)
    audio = torch.tensor([[[1.0, 0.0], [0.0, 1.0]]])
    visual = torch.tensor([[[1.0, 0.0], [1.0, 0.0]]])
    a, v = psp(audio, visual)
    # beta_va = v a^T / sqrt 2 = [[1,0],[1,0]]/sqrt2 -> rows [1,0],[1,0]; beta_av rows [.5,.5],[0,0]
    # v' = v + gamma_va a = [[2,0],[2,0]]; a' = a + gamma_av v = [[2,0],[0,1]]; LayerNorm(eps 1e-6)
    s = 1.0 / math.sqrt(1.0 + 1e-6)
    assert torch.allclose(v[0], torch.tensor([[s, -s], [s, -s]]), atol=1e-6)
    assert torch.allclose(a[0], torch.tensor([[s, -s], [-s, s]]), atol=1e-6)


def test_cere_pools_ten_segments_into_two_gru_slots_and_shares_weights():
    cere = CERE(dim=8, hidden=4)
    a, v = cere(torch.rand(3, 10, 8), torch.rand(3, 10, 8))
    assert a.shape == v.shape == (2, 3, 4)
    assert cere.audio_convs is cere.visual_convs
    unshared = CERE(dim=8, hidden=4, shared=False)
    assert unshared.visual_convs is not unshared.audio_convs
    x = torch.rand(3, 10, 8)
    a, v = cere(x, x)
    assert torch.equal(a, v)  # shared convs: identical inputs give identical summaries
    with pytest.raises(ValueError, match="T=20"):
        cere(torch.rand(1, 20, 8), torch.rand(1, 20, 8))


def test_pooled_summary_splits_the_time_pooled_vector_into_the_two_direction_slots():
    x = torch.tensor([[[1.0, 2.0, 3.0, 4.0], [3.0, 0.0, 5.0, 0.0]]])  # (B=1, T=2, 4)
    assert pooled_summary(x, "avg").tolist() == [[[2.0, 1.0]], [[4.0, 2.0]]]
    assert pooled_summary(x, "max").tolist() == [[[3.0, 2.0]], [[5.0, 4.0]]]


@pytest.mark.parametrize("mode", ["fully", "weak"])
@pytest.mark.parametrize("init", ESCM_INITS)
def test_escm_plugs_in_after_any_encoder_and_the_prior_couples_the_modalities(mode, init):
    torch.manual_seed(0)
    escm = ESCM(dim=16, hidden=8, mode=mode, init=init).eval()
    audio, visual = torch.rand(2, 10, 16), torch.rand(2, 10, 16)
    a, v = escm(audio, visual)
    assert a.shape == v.shape == (2, 10, 16)
    a2, _ = escm(audio, visual + 1.0)
    coupled = not torch.allclose(a, a2)
    # The audio GRU only sees the visual stream through its initial state (fused or cross summary).
    assert coupled == (init != "zero")


def test_escm_weak_is_cross_initialised():
    escm = ESCM(dim=16, hidden=8, mode="weak", init="cere")
    audio, visual = torch.rand(2, 10, 16), torch.rand(2, 10, 16)
    h_a, h_v = escm.initial_states(audio, visual)
    s_a, s_v = escm.cere(audio, visual)
    assert torch.allclose(h_a, s_v @ escm.L2.weight.T) and torch.allclose(h_v, s_a @ escm.L1.weight.T)


def test_escm_rejects_unknown_options():
    with pytest.raises(ValueError, match="mode"):
        ESCM(mode="semi")
    with pytest.raises(ValueError, match="init"):
        ESCM(init="mean")
    with pytest.raises(ValueError, match="dim == 2\\*hidden"):
        ESCM(dim=256, hidden=64, mode="weak")


def test_cosine_pairs_hand_values():
    a = torch.tensor([[[1.0, 0.0], [1.0, 1.0]]])
    v = torch.tensor([[[0.0, 2.0], [2.0, 2.0]]])
    assert torch.allclose(cosine_pairs(a, v), torch.tensor([[0.0, 1.0]]))


def test_agva_trains_under_bf16_autocast_with_float32_gradients():
    att = AudioGuidedVisualAttention(audio_dim=3, visual_dim=8, hidden=8, regions=4)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        out, _ = att(torch.rand(2, 3, 3), torch.rand(2, 3, 2, 2, 8))
    out.float().sum().backward()
    for name, p in att.named_parameters():
        assert p.grad is not None and p.grad.dtype == torch.float32 and torch.isfinite(p.grad).all(), name
