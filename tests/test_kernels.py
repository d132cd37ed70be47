"""The fused, blocked audio-guided attention kernel equals AGVA's plain PyTorch path, block sizes and buffers
notwithstanding: outputs, every gradient, FLOP count, evaluation path, buffer reuse rules, the switch."""

from __future__ import annotations

import gc

import pytest
import torch

import avloc.tools.bench  # noqa: F401  (registers the fused GEMM's FLOP formula)
from avloc import kernels
from avloc.kernels import region_attention as kernel
from avloc.kernels.region_attention import ActivationBuffer, _AttendRegions, attend_regions
from avloc.models import blocks
from avloc.models.blocks import AudioGuidedVisualAttention


def _agva(fused: bool, dtype=torch.float64, seed=0):  # type: ignore[no-untyped-def]
    torch.manual_seed(seed)
    return AudioGuidedVisualAttention(audio_dim=3, visual_dim=6, hidden=7, regions=4, fused_attn=fused).to(dtype)


def _inputs(n=5, r=4, dv=6, hidden=7, dtype=torch.float64, seed=0):  # type: ignore[no-untyped-def]
    g = torch.Generator().manual_seed(seed)
    return [
        torch.randn(n * r, dv, generator=g, dtype=dtype),
        torch.randn(n, r, generator=g, dtype=dtype),
        torch.randn(hidden, dv, generator=g, dtype=dtype) * 0.5,
        torch.randn(hidden, generator=g, dtype=dtype),
        torch.randn(r, hidden, generator=g, dtype=dtype) * 0.5,
        torch.randn(1, r, generator=g, dtype=dtype),
    ]


@pytest.mark.parametrize("block_rows", [4, 8, 12, 4096])  # 1, 2, 3 segments per block (6 = 2+2+2), all
def test_kernel_outputs_and_all_gradients_equal_the_plain_path(block_rows, monkeypatch):
    """In float64 (the kernel is forced on: by default it runs only on CPU float32)."""
    monkeypatch.setattr(kernel, "BLOCK_ROWS", block_rows)
    monkeypatch.setattr(blocks, "fused_attn_applies", lambda x: True)
    g = torch.Generator().manual_seed(1)
    audio = torch.randn(2, 3, 3, generator=g, dtype=torch.float64, requires_grad=True)
    visual = torch.randn(2, 3, 2, 2, 6, generator=g, dtype=torch.float64, requires_grad=True)
    wa, walpha = torch.randn(2, 3, 6, dtype=torch.float64), torch.randn(2, 3, 4, dtype=torch.float64)
    results = []
    for fused in (False, True):
        att = _agva(fused)
        inputs = [audio, visual, *att.parameters()]
        out, alpha = att(audio, visual)
        grads = torch.autograd.grad((out * wa).sum() + (alpha * walpha).sum(), inputs)
        results.append(((out, alpha), grads))
    (plain_out, plain_g), (fused_out, fused_g) = results
    for a, b in zip(fused_out, plain_out):
        torch.testing.assert_close(a, b, rtol=1e-12, atol=1e-12)
    for a, b in zip(fused_g, plain_g):
        torch.testing.assert_close(a, b, rtol=1e-10, atol=1e-12)


def test_switch_picks_the_kernel_only_where_it_applies(monkeypatch):
    monkeypatch.setattr(kernels, "_FUSED_ATTN", True)
    assert AudioGuidedVisualAttention().fused_attn
    kernels.set_fused_attn(False)
    assert not AudioGuidedVisualAttention().fused_attn and not kernels.use_fused_attn()
    assert kernels.fused_attn_applies(torch.zeros(1)) and not kernels.fused_attn_applies(torch.zeros(1).double())
    audio, visual = torch.rand(2, 3, 3), torch.rand(2, 3, 2, 2, 6)
    plain, fused = _agva(False, torch.float32), _agva(True, torch.float32)
    for a, b in zip(fused(audio, visual), plain(audio, visual)):
        torch.testing.assert_close(a, b)
    assert fused.activations.tensors and not plain.activations.tensors  # only the kernel ran on float32


def test_gradcheck_with_several_blocks_and_an_unused_output(monkeypatch):
    monkeypatch.setattr(kernel, "BLOCK_ROWS", 8)
    args = [t.requires_grad_() for t in _inputs(n=3, r=2, dv=3, hidden=4)]
    assert torch.autograd.gradcheck(lambda *a: _AttendRegions.apply(*a, None), args)
    assert torch.autograd.gradcheck(lambda *a: _AttendRegions.apply(*a, None)[0], args)  # alpha unused


def test_backward_can_run_twice_on_a_retained_graph():
    args = _inputs()
    w1 = args[2].requires_grad_()
    att = attend_regions(*args, ActivationBuffer())[0].square().sum()
    first = torch.autograd.grad(att, w1, retain_graph=True)[0]
    assert torch.equal(first, torch.autograd.grad(att, w1)[0])


@pytest.mark.parametrize("n", [1, 3, 7])
def test_evaluation_path_saves_nothing_and_equals_the_training_path(n, monkeypatch):
    monkeypatch.setattr(kernel, "BLOCK_ROWS", 12)
    args = _inputs(n=n, dtype=torch.float32)
    w1 = args[2].requires_grad_()
    trained = attend_regions(*args)
    assert trained[0].grad_fn is not None
    with torch.no_grad():
        evaluated = attend_regions(*args)
    with torch.inference_mode():
        inferred = attend_regions(*args)
    assert evaluated[0].grad_fn is None and w1.grad is None
    for a, b, c in zip(trained, evaluated, inferred):
        torch.testing.assert_close(b, a.detach())
        torch.testing.assert_close(c, a.detach())


def test_flop_counter_sees_every_matmul(monkeypatch):
    """``avloc bench`` divides counted FLOPs by the matmul rate, so the blocked passes must all be counted."""
    from torch.utils.flop_counter import FlopCounterMode

    monkeypatch.setattr(kernel, "BLOCK_ROWS", 8)
    n, r, dv, hid = 5, 4, 6, 7
    args = _inputs(n, r, dv, hid, dtype=torch.float32)
    for t in args[2:]:
        t.requires_grad_()
    counter = FlopCounterMode(display=False)
    with counter:
        attend_regions(*args)[0].sum().backward()
    m = n * r
    forward = m * dv * hid + m * hid * r + m * r + n * r * dv  # projection, thin map, scores, attended
    backward = n * r * dv + m * r + m * r * hid + m * r * hid + m * hid * dv  # d alpha, w_h, W2, hidden, W1
    assert counter.get_total_flops() == 2 * (forward + backward)


def test_fused_linear_relu_matches_addmm(monkeypatch):
    """The oneDNN fused projection (when the build has it) gives the addmm path's outputs and gradients."""
    if not kernel.FUSED_LINEAR_RELU:
        pytest.skip("this torch build has no fused oneDNN linear")
    torch.manual_seed(0)
    att = AudioGuidedVisualAttention(fused_attn=True)
    audio, visual = torch.rand(2, 10, 128), torch.rand(2, 10, 7, 7, 512)
    results = []
    for fused in (True, False):
        monkeypatch.setattr(kernel, "FUSED_LINEAR_RELU", fused)
        att.zero_grad()
        out, alpha = att(audio, visual)
        (out.square().sum() + alpha.sum()).backward()
        results.append((out.detach(), [p.grad.clone() for p in att.parameters()]))
    (o1, g1), (o2, g2) = results
    assert torch.allclose(o1, o2, atol=1e-5)
    # Gradients agree up to float32 rounding; a handful of ReLU units within ~1e-6 of zero may switch
    # side between the two GEMM implementations, so compare relative norms rather than elementwise.
    assert all(((a - b).norm() / b.norm()) < 5e-3 for a, b in zip(g1, g2))


def test_rejects_features_that_do_not_match_the_guide():
    x, guide, *w = _inputs(n=3, r=4)
    with pytest.raises(ValueError, match=r"x must be \(12, Dv\)"):
        attend_regions(x[:-1], guide, *w)


def _agva_grads(att, batches):  # type: ignore[no-untyped-def]
    att.zero_grad()
    loss = sum(att(a, v)[0].square().sum() for a, v in batches)
    loss.backward()
    return [p.grad.clone() for p in att.parameters()]


def test_activation_buffer_is_reused_and_never_shared_by_two_pending_graphs():
    """Two forwards before one backward (gradient accumulation) must not share the saved activation."""
    torch.manual_seed(6)
    att = AudioGuidedVisualAttention(audio_dim=3, visual_dim=8, hidden=8, regions=4, fused_attn=True)
    batches = [(torch.rand(2, 3, 3), torch.rand(2, 3, 2, 2, 8)) for _ in range(2)]
    accumulated = _agva_grads(att, batches)
    att.activations.clear()
    one_by_one = [_agva_grads(att, [b]) for b in batches]
    for acc, g0, g1 in zip(accumulated, *one_by_one):
        assert torch.allclose(acc, g0 + g1, atol=1e-6)
    first = [t.data_ptr() for t in att.activations.tensors]
    assert len(first) == 2  # ReLU output and tanh output
    _agva_grads(att, batches[:1])
    assert [t.data_ptr() for t in att.activations.tensors] == first  # same memory, step after step


def test_activation_buffer_overwritten_under_a_retained_graph_is_caught_by_autograd():
    torch.manual_seed(7)
    att = AudioGuidedVisualAttention(audio_dim=3, visual_dim=8, hidden=8, regions=4, fused_attn=True)
    a, v = torch.rand(2, 3, 3), torch.rand(2, 3, 2, 2, 8)
    loss = att(a, v)[0].sum()
    loss.backward(retain_graph=True)
    att(a * 2, v * 2)[0].sum().backward()  # takes the buffer the retained graph still points at
    with pytest.raises(RuntimeError, match="modified by an inplace operation"):
        loss.backward()


def test_activation_buffer_is_freed_by_a_graph_dropped_without_backward():
    torch.manual_seed(8)
    att = AudioGuidedVisualAttention(audio_dim=3, visual_dim=8, hidden=8, regions=4, fused_attn=True)
    a, v = torch.rand(2, 3, 3), torch.rand(2, 3, 2, 2, 8)
    out = att(a, v)[0]
    held = att.activations.tensors
    del out
    gc.collect()
    att(a, v)[0].sum().backward()
    assert att.activations.tensors is held


def test_eval_mode_frees_the_activation_buffer():
    att = AudioGuidedVisualAttention(audio_dim=3, visual_dim=8, hidden=8, regions=4, fused_attn=True)
    att(torch.rand(2, 3, 3), torch.rand(2, 3, 2, 2, 8))[0].sum().backward()
    assert att.activations.tensors
    att.eval()
    assert att.activations.tensors == []
