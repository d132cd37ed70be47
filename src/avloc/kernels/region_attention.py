"""The fused kernel of audio-guided visual attention (AGVA of AVEL, reused by PSP and VSCG): the plain
equations of :class:`avloc.models.blocks.AudioGuidedVisualAttention` as one blocked autograd function.

For region features x (N segments x R regions, Dv), the audio guide g (N, R) and weights W1 (hidden, Dv),
b1, W2 (R, hidden), w_h (R):

    h = ReLU(x W1^T + b1)                     (N*R, hidden)   <- the big GEMM: nearly all of a step's FLOPs
    t = tanh(h W2^T + g[:, :, None])          (N, R, R)       (official quirk: g's entry r is added to all
    alpha = softmax_r(t w_h)                  (N, R)           R hidden units of region r)
    attended = sum_r alpha_r x_r              (N, Dv)

Why by hand: with autograd every stage above is a separate pass over (N*R, .) memory, the (N*R, hidden)
ReLU output is allocated anew each step (page faults on CPU) and its backward allocates two more of them.
Here the forward and the backward walk the rows in blocks of whole segments (``BLOCK_ROWS`` rows), doing
every stage of a block while its x and h rows are in cache; the backward folds each block's hidden
gradient straight into the weight gradients; the ReLU output, the only big saved tensor, lives in a
reused :class:`ActivationBuffer`; the input-feature gradient is computed only when x requires one (AVE
features never do). Without a gradient (evaluation) nothing is saved and no (N*R, hidden) tensor exists.
"""

from __future__ import annotations

import weakref

import torch

BLOCK_ROWS = 4096  # rows (segments x regions) per block: a (4096, 512) float32 block is 8 MB


FUSED_LINEAR_RELU = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")

def _linear_relu(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``relu(x w^T + b)``. On CPU float32 it runs as oneDNN's fused linear + bias + ReLU when this torch
    build has it: ``addmm`` first copies the bias into all output rows and ReLU is another pass over them."""
    if FUSED_LINEAR_RELU and x.device.type == "cpu" and x.dtype == w.dtype == torch.float32:
        return torch.ops.mkldnn._linear_pointwise(x, w, b, "relu", [], "")
    return torch.addmm(b.to(x.dtype), x, w.t().to(x.dtype)).relu_()


def _linear(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``x w^T`` for the thin (hidden -> regions) map: oneDNN's linear beats MKL's ``mm`` on CPU float32
    for this (M, 512) x (512, 49) shape."""
    if FUSED_LINEAR_RELU and x.device.type == "cpu" and x.dtype == w.dtype == torch.float32:
        return torch.ops.mkldnn._linear_pointwise(x, w, None, "none", [], "")
    return x @ w.t().to(x.dtype)


def _tanh(u: torch.Tensor, out: torch.Tensor) -> torch.Tensor:
    """``tanh(u)`` into ``out`` (which may be ``u``); on CPU as ``2 sigmoid(2u) - 1``, faster than
    ``torch.tanh`` there, with absolute error < 2e-7. ``u`` is overwritten."""
    if u.device.type != "cpu":
        return torch.tanh(u, out=out)
    return torch.sigmoid(u.mul_(2), out=out).mul_(2).sub_(1)


class ActivationBuffer:
    """A reusable home for the tensors the backward needs: the (N*R, hidden) ReLU output and the (N, R, R)
    tanh output.

    A fresh 128 MB tensor every training step costs page faults on CPU (the allocator maps new memory for
    anything that large); reusing the memory removes them
    without raising the peak, since the tensors exist during every step anyway. A forward takes the buffer
    only when no pending graph holds it (otherwise it allocates fresh tensors, e.g. for gradient
    accumulation over several forwards); the backward hands it back, and a graph dropped without backward
    frees it when collected. Were it ever
    overwritten under a graph that still needs it (``retain_graph`` across a new forward), autograd's
    version check raises instead of returning wrong gradients.
    """

    def __init__(self) -> None:
        self.tensors: list[torch.Tensor] = []
        self._holder: weakref.ref | None = None  # the pending graph's backward context

    def take(
        self, shapes: list[tuple[int, ...]], like: torch.Tensor, holder: object
    ) -> tuple[list[torch.Tensor], bool]:
        """Uninitialised tensors of ``shapes`` with ``like``'s dtype and device, and whether they are the
        shared ones (False: a pending graph holds those, these are fresh)."""
        if self._holder is not None and self._holder() is not None:
            return [like.new_empty(shape) for shape in shapes], False
        fits = len(self.tensors) == len(shapes) and all(
            t.shape == shape and t.dtype == like.dtype and t.device == like.device
            for t, shape in zip(self.tensors, shapes)
        )
        if not fits:
            self.tensors = []  # drop the old ones before allocating their replacements
            self.tensors = [like.new_empty(shape) for shape in shapes]
        self._holder = weakref.ref(holder)
        return self.tensors, True

    def release(self) -> None:
        self._holder = None

    def clear(self) -> None:
        """Free the memory (evaluation needs none)."""
        self.tensors, self._holder = [], None


def _segment_blocks(n: int, regions: int) -> list[tuple[int, int]]:
    """(first, end) segment ranges of about ``BLOCK_ROWS`` rows each."""
    step = max(1, BLOCK_ROWS // regions)
    return [(s, min(n, s + step)) for s in range(0, n, step)]


class _AttendRegions(torch.autograd.Function):
    """x (N*R, Dv), guide (N, R), w1 (hidden, Dv), b1 (hidden), w2 (R, hidden), wh (1, R), buffer
    -> attended (N, Dv), alpha (N, R). See the module docstring."""

    @staticmethod
    def forward(ctx, x, guide, w1, b1, w2, wh, buffer):  # type: ignore[no-untyped-def, override]
        n, regions = guide.shape
        keep = ctx is not None  # None: called directly for evaluation, nothing to save
        attended = alpha = t_all = h = None
        shared = False
        for s, e in _segment_blocks(n, regions):
            rs, re_ = s * regions, e * regions
            x_blk = x[rs:re_]
            h_blk = _linear_relu(x_blk, w1, b1)  # the big GEMM, one block
            dt = h_blk.dtype  # bf16 under autocast
            if attended is None:  # dtypes are known now
                attended = x.new_empty(n, x.shape[1], dtype=dt)
                alpha = x.new_empty(n, regions, dtype=dt)
                if keep:  # the saved tensors: ReLU output and tanh output
                    shapes = [(x.shape[0], h_blk.shape[1]), (n, regions, w2.shape[0])]
                    if buffer is not None:
                        (h, t_all), shared = buffer.take(shapes, h_blk, ctx)
                    else:
                        h, t_all = (h_blk.new_empty(shape) for shape in shapes)
            pre = _linear(h_blk, w2).view(e - s, regions, -1)
            if h is not None:
                h[rs:re_] = h_blk
                t_blk = t_all[s:e]
            else:  # nothing to save: tanh in place
                t_blk = pre
            _tanh(pre.add_(guide[s:e].to(dt).unsqueeze(2)), out=t_blk)
            z = torch.mm(t_blk.view(-1, t_blk.shape[2]), wh.to(dt).t()).view(e - s, regions)
            a_blk = alpha[s:e]
            a_blk.copy_(torch.softmax(z, dim=-1))
            torch.bmm(a_blk.unsqueeze(1), x_blk.view(e - s, regions, -1).to(dt),
                      out=attended[s:e].unsqueeze(1))
        if keep:
            ctx.save_for_backward(x, w1, w2, wh, h, t_all, alpha)
            ctx.buffer = buffer if shared else None
            ctx.set_materialize_grads(False)  # an unused output's gradient arrives as None
        return attended, alpha

    @staticmethod
    def backward(ctx, g_att, g_alpha):  # type: ignore[no-untyped-def, override]
        x, w1, w2, wh, h, t_all, alpha = ctx.saved_tensors
        need_x, need_guide, need_w1, need_b1, need_w2, need_wh = ctx.needs_input_grad[:6]
        n, regions = alpha.shape
        dt = h.dtype
        w1c, w2c, whc = w1.to(dt), w2.to(dt), wh.to(dt).view(-1)
        g_att = torch.zeros_like(alpha[:, :1]).expand(n, x.shape[1]) if g_att is None else g_att.to(dt)
        g_x = h.new_empty(x.shape) if need_x else None
        g_guide = h.new_empty(n, regions) if need_guide else None
        g_w1 = h.new_zeros(w1.shape) if need_w1 else None
        g_b1 = h.new_zeros(w1.shape[0]) if need_b1 else None
        g_w2 = h.new_zeros(w2.shape)
        g_wh = h.new_zeros(1, regions)
        buf = h.new_empty(min(x.shape[0], BLOCK_ROWS), h.shape[1])
        for s, e in _segment_blocks(n, regions):
            rs, re_ = s * regions, e * regions
            x_blk = x[rs:re_].to(dt)  # (a no-op in float32)
            x3 = x_blk.view(e - s, regions, -1)
            a_blk, t_blk, h_blk = alpha[s:e], t_all[s:e], h[rs:re_]
            # (S, R): d loss / d alpha. As (1, Dv) x (Dv, R) products: MKL runs the batched
            # matrix-vector form (R, Dv) x (Dv, 1) ~3x slower
            ga = torch.bmm(g_att[s:e].unsqueeze(1), x3.transpose(1, 2)).squeeze(1)
            if g_alpha is not None:
                ga = ga + g_alpha[s:e].to(dt)
            gz = a_blk * (ga - (a_blk * ga).sum(-1, keepdim=True))  # softmax backward
            t2 = t_blk.view(-1, t_blk.shape[2])
            torch.addmm(g_wh, gz.view(1, -1), t2, out=g_wh)
            g_pre = (1 - t_blk * t_blk).mul_(gz.unsqueeze(2) * whc)  # (S, R, R) at tanh's input
            if g_guide is not None:
                torch.sum(g_pre, dim=2, out=g_guide[s:e])
            g_map = g_pre.view(-1, g_pre.shape[2])  # (S*R, R) gradient of h W2^T
            torch.addmm(g_w2, g_map.t(), h_blk, out=g_w2)  # (out=, not addmm_: FLOP counters skip addmm_)
            d = torch.mm(g_map, w2c, out=buf[: re_ - rs])  # hidden gradient of this block
            torch.ops.aten.threshold_backward.grad_input(d, h_blk, 0.0, grad_input=d)  # ReLU backward
            if g_w1 is not None:
                torch.addmm(g_w1, d.t(), x_blk, out=g_w1)
            if g_b1 is not None:
                g_b1.add_(d.sum(0))
            if g_x is not None:
                gx = torch.mm(d, w1c).view(e - s, regions, -1)
                gx.add_(a_blk.unsqueeze(2) * g_att[s:e].unsqueeze(1))
                g_x[rs:re_] = gx.view(re_ - rs, -1)
        if ctx.buffer is not None:
            ctx.buffer.release()

        def cast(g: torch.Tensor | None, like: torch.Tensor, need: bool) -> torch.Tensor | None:
            return g.to(like.dtype) if need and g is not None else None

        return (cast(g_x, x, need_x), g_guide, cast(g_w1, w1, need_w1), cast(g_b1, w1, need_b1),
                cast(g_w2, w2, need_w2), cast(g_wh, wh, need_wh), None)


def attend_regions(
    x: torch.Tensor,
    guide: torch.Tensor,
    w1: torch.Tensor,
    b1: torch.Tensor,
    w2: torch.Tensor,
    wh: torch.Tensor,
    buffer: ActivationBuffer | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Attended features (N, Dv) and attention weights (N, R) for region features x (N*R, Dv) and the audio
    guide (N, R); see the module docstring. ``buffer`` (optional) keeps the saved activation across steps."""
    n, regions = guide.shape
    if x.dim() != 2 or x.shape[0] != n * regions:
        raise ValueError(f"attend_regions: x must be ({n * regions}, Dv) for guide {tuple(guide.shape)}, "
                         f"got {tuple(x.shape)}")
    tensors = (x, guide, w1, b1, w2, wh)
    if torch.is_grad_enabled() and any(t.requires_grad for t in tensors):
        return _AttendRegions.apply(*tensors, buffer)
    with torch.no_grad():
        return _AttendRegions.forward(None, *tensors, None)
