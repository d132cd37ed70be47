"""Shared network pieces of the AVE methods (AVEL, PSP, VSCG, CMBS plug-ins), one small class each.

Shapes use B = batch, T = segments (10 in AVE), R = spatial regions (7x7 = 49), D = feature width.
Every module follows the official code of the method it comes from (see
``shared/reference/ave_anchors.md`` sections 1.2-1.4); deviations are named in the docstrings.
"""

from __future__ import annotations

import math
import weakref

import torch
import torch.nn.functional as F
from torch import nn
from torch.utils.flop_counter import register_flop_formula

from avloc.models.dropout import Dropout

# Numerical constants of the official code (not hyper-parameters: no paper varies them).
L1_EPS = 1e-8  # guard of every L1 row normalisation (PSP: `x / (sum + 1e-8)`)
LAYER_NORM_EPS = 1e-6  # LayerNorm eps of PSP and ESCM
BACKWARD_BLOCK_ROWS = 4096  # rows per block in AGVA's backward and no-grad forward (a (4096, 512) float32 buffer)


def xavier_(*layers: nn.Module) -> None:
    """Xavier-uniform init of the weights of ``layers`` (biases keep PyTorch's default, as officially)."""
    for layer in layers:
        nn.init.xavier_uniform_(layer.weight)  # type: ignore[arg-type]


def _linear_relu(x: torch.Tensor, w: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
    """``relu(x w^T + b)``. On CPU float32 it runs as oneDNN's fused linear + bias + ReLU when this torch
    build has it: ``addmm`` first copies the bias into all M output rows and ReLU is another pass over them."""
    if FUSED_LINEAR_RELU and x.device.type == "cpu" and x.dtype == w.dtype == torch.float32:
        return torch.ops.mkldnn._linear_pointwise(x, w, b, "relu", [], "")
    return torch.addmm(b.to(x.dtype), x, w.t().to(x.dtype)).relu_()


def _linear(x: torch.Tensor, w: torch.Tensor) -> torch.Tensor:
    """``x w^T`` for AGVA's thin (hidden -> regions) maps: oneDNN's linear is ~1.5x faster than MKL's
    ``mm`` on CPU float32 for the (M, 512) x (512, 49) shape (measured 6.6 ms vs 10.2 ms at M = 15,680)."""
    if FUSED_LINEAR_RELU and x.device.type == "cpu" and x.dtype == w.dtype == torch.float32:
        return torch.ops.mkldnn._linear_pointwise(x, w, None, "none", [], "")
    return x @ w.t().to(x.dtype)


FUSED_LINEAR_RELU = torch.backends.mkldnn.is_available() and hasattr(torch.ops.mkldnn, "_linear_pointwise")

if FUSED_LINEAR_RELU:  # so that torch.utils.flop_counter (and `avloc bench`) counts the fused GEMM

    @register_flop_formula(torch.ops.mkldnn._linear_pointwise)
    def _linear_pointwise_flops(x_shape, w_shape, *args, **kwargs) -> int:  # type: ignore[no-untyped-def]
        return 2 * math.prod(x_shape[:-1]) * x_shape[-1] * w_shape[0]


class ActivationBuffer:
    """A reusable home for AGVA's (M, hidden) ReLU output, which the backward needs.

    A fresh 128 MB tensor every training step costs page faults on CPU (the allocator maps new memory for
    anything that large); reusing one tensor removes them without raising the peak, since the activation
    exists during every step anyway. A forward takes the buffer only when no pending graph holds it
    (otherwise it allocates a fresh tensor, e.g. for gradient accumulation over several forwards); the
    backward hands it back, and a graph dropped without backward frees it when collected. Were it ever
    overwritten under a graph that still needs it (``retain_graph`` across a new forward), autograd's
    version check raises instead of returning wrong gradients.
    """

    def __init__(self) -> None:
        self.tensor: torch.Tensor | None = None
        self._holder: weakref.ref | None = None  # the pending graph's backward context

    def take(self, rows: int, like: torch.Tensor, holder: object) -> tuple[torch.Tensor, bool]:
        """An uninitialised (rows, like.shape[1]) tensor of ``like``'s dtype and device, and whether it is
        the shared one (False: a graph still holds that, this one is fresh)."""
        shape = (rows, like.shape[1])
        if self._holder is not None and self._holder() is not None:
            return like.new_empty(shape), False
        t = self.tensor
        if t is None or t.shape != shape or t.dtype != like.dtype or t.device != like.device:
            self.tensor = None  # drop the old one before allocating its replacement
            self.tensor = t = like.new_empty(shape)
        self._holder = weakref.ref(holder)
        return t, True

    def release(self) -> None:
        self._holder = None

    def clear(self) -> None:
        """Free the memory (e.g. before evaluation in a memory-tight process)."""
        self.tensor, self._holder = None, None


class _ProjectReluMap(torch.autograd.Function):
    """``relu(x W1^T + b1) W2^T`` for x (M, Din), W1 (hidden, Din), W2 (Dout, hidden), Dout small.

    Written by hand so that AGVA's only big (M, hidden) tensor is the saved ReLU output: the forward runs
    in row blocks of ``BACKWARD_BLOCK_ROWS`` (each block's ReLU output is mapped to Dout while in cache and
    stored in ``buffer``, an :class:`ActivationBuffer`, when given); the backward walks the same blocks,
    computing each block's hidden gradient into one reused buffer, masking it in place and folding it
    straight into the weight gradients while it is still in cache (autograd would allocate two more
    (M, hidden) tensors). The input gradient is only computed when ``x`` requires one (AVE features never do).
    """

    @staticmethod
    def forward(ctx, x, w1, b1, w2, buffer=None):  # type: ignore[no-untyped-def, override]
        rows = x.shape[0]
        out = h = None
        shared = False
        for s in range(0, rows, BACKWARD_BLOCK_ROWS):
            e = min(rows, s + BACKWARD_BLOCK_ROWS)
            h_blk = _linear_relu(x[s:e], w1, b1)  # the big GEMM, one block
            map_blk = _linear(h_blk, w2)
            if h is None:  # dtypes are known now (bf16 under autocast)
                if buffer is not None:
                    h, shared = buffer.take(rows, h_blk, ctx)
                else:
                    h = h_blk.new_empty(rows, h_blk.shape[1])
                out = map_blk.new_empty(rows, map_blk.shape[1])
            h[s:e] = h_blk
            out[s:e] = map_blk
        ctx.save_for_backward(x, w1, w2, h)
        ctx.buffer = buffer if shared else None
        return out

    @staticmethod
    def backward(ctx, grad):  # type: ignore[no-untyped-def, override]
        x, w1, w2, h = ctx.saved_tensors
        need_x, need_w1, need_b1, need_w2 = ctx.needs_input_grad[:4]
        dt = h.dtype  # under autocast (bf16) the forward ran in h's dtype; parameters stay float32
        grad, w1c, w2c = grad.to(dt), w1.to(dt), w2.to(dt)
        g_w2 = h.new_zeros(w2.shape) if need_w2 else None
        g_w1 = h.new_zeros(w1.shape) if need_w1 else None
        g_b1 = h.new_zeros(h.shape[1]) if need_b1 else None
        g_x = h.new_empty(x.shape) if need_x else None
        need_h = need_x or need_w1 or need_b1
        rows = h.shape[0]
        buf = h.new_empty(min(rows, BACKWARD_BLOCK_ROWS), h.shape[1]) if need_h else None
        for s in range(0, rows, BACKWARD_BLOCK_ROWS):
            e = min(rows, s + BACKWARD_BLOCK_ROWS)
            g_blk, h_blk = grad[s:e], h[s:e]
            if g_w2 is not None:
                # g_blk.t() is a transposed view, which BLAS reads as is: a contiguous copy of grad^T
                # first costs more than it saves. (addmm with out=, not addmm_: FLOP counters skip addmm_.)
                torch.addmm(g_w2, g_blk.t(), h_blk, out=g_w2)
            if buf is None:
                continue
            d = torch.mm(g_blk, w2c, out=buf[: e - s])  # hidden gradient of this block
            torch.ops.aten.threshold_backward.grad_input(d, h_blk, 0.0, grad_input=d)  # ReLU backward
            if g_w1 is not None:
                torch.addmm(g_w1, d.t(), x[s:e].to(dt), out=g_w1)
            if g_b1 is not None:
                g_b1.add_(d.sum(0))
            if g_x is not None:
                torch.mm(d, w1c, out=g_x[s:e])

        def cast(g: torch.Tensor | None, like: torch.Tensor) -> torch.Tensor | None:
            return None if g is None else g.to(like.dtype)

        if ctx.buffer is not None:
            ctx.buffer.release()
        return cast(g_x, x), cast(g_w1, w1), cast(g_b1, w1), cast(g_w2, w2), None


def project_relu_map(
    x: torch.Tensor, w1: torch.Tensor, b1: torch.Tensor, w2: torch.Tensor, buffer: ActivationBuffer | None = None
) -> torch.Tensor:
    """``relu(x W1^T + b1) W2^T``: :class:`_ProjectReluMap` when a gradient is needed; otherwise (evaluation)
    block by block, so the (M, hidden) activation never exists whole: each block's ReLU output is mapped
    to ``Dout`` while still in cache and its memory is reused by the next block (a fresh (M, hidden) tensor
    per batch costs page faults, and bounds the evaluation batch size)."""
    if torch.is_grad_enabled() and (x.requires_grad or w1.requires_grad or b1.requires_grad or w2.requires_grad):
        return _ProjectReluMap.apply(x, w1, b1, w2, buffer)
    rows = x.shape[0]
    if rows <= BACKWARD_BLOCK_ROWS:
        return _linear(_linear_relu(x, w1, b1), w2)
    out = x.new_empty(rows, w2.shape[0])
    for s in range(0, rows, BACKWARD_BLOCK_ROWS):
        out[s : s + BACKWARD_BLOCK_ROWS] = _linear(_linear_relu(x[s : s + BACKWARD_BLOCK_ROWS], w1, b1), w2)
    return out


class AudioGuidedVisualAttention(nn.Module):
    """AGVA of AVEL (reused by PSP and VSCG): audio picks the sounding regions of each segment.

    ``h_r = ReLU(W_video x_r + b)`` for every region feature ``x_r`` (the one big matmul: (B*T*R, Dv) x
    (Dv, hidden)); ``g = ReLU(W_audio a + b)``; ``z_r = w_h . tanh(W_v h_r + (W_g g)_r)``;
    ``alpha = softmax_r(z)``; output ``sum_r alpha_r x_r`` over the RAW region features.

    Quirk kept from the official code: ``W_g g`` has ``regions`` entries and entry ``r`` is added to all
    ``regions`` hidden units of region ``r`` (``affine_g(a).unsqueeze(2)``), so ``regions`` must equal the
    number of spatial cells.

    Cost: only ``affine_video`` is big. ``affine_v(ReLU(affine_video(x)))`` runs as one fused autograd
    function (:class:`_ProjectReluMap`) on a 2-D (B*T*R, Dv) view: one GEMM with the bias folded in, an
    in-place ReLU, and a blocked backward without any other (B*T*R, hidden) tensor and without the
    input-feature gradient, so a training step costs the forward and weight-gradient GEMMs plus the thin
    (hidden -> R) ones.
    """

    def __init__(
        self, audio_dim: int = 128, visual_dim: int = 512, hidden: int = 512, regions: int = 49
    ) -> None:
        super().__init__()
        self.regions = regions
        self.affine_audio = nn.Linear(audio_dim, hidden)
        self.affine_video = nn.Linear(visual_dim, hidden)
        self.affine_v = nn.Linear(hidden, regions, bias=False)
        self.affine_g = nn.Linear(hidden, regions, bias=False)
        self.affine_h = nn.Linear(regions, 1, bias=False)
        xavier_(self.affine_v, self.affine_g, self.affine_h, self.affine_audio, self.affine_video)
        self.activations = ActivationBuffer()  # reused across training steps (not state: never saved)

    def train(self, mode: bool = True) -> "AudioGuidedVisualAttention":
        if not mode:  # evaluation needs no saved activation: give its memory back
            self.activations.clear()
        return super().train(mode)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """audio: (B, T, Da); visual: (B, T, H, W, Dv) with H*W == regions.

        Returns (attended visual (B, T, Dv), attention weights (B, T, R)).
        """
        b, t = visual.shape[:2]
        dv = visual.shape[-1]
        regions = math.prod(visual.shape[2:-1])
        if regions != self.regions:
            raise ValueError(
                f"AGVA built for {self.regions} regions, got visual of shape {tuple(visual.shape)} "
                f"({regions} regions)"
            )
        raw = visual.reshape(b * t, regions, dv)  # (N, R, Dv), a view of contiguous features
        content = project_relu_map(
            raw.reshape(-1, dv), self.affine_video.weight, self.affine_video.bias, self.affine_v.weight,
            self.activations,
        ).view(b * t, regions, self.regions)  # (N, R, R) = affine_v(ReLU(affine_video(x)))
        guide = self.affine_g(F.relu(self.affine_audio(audio.reshape(b * t, -1))))  # (N, R)
        # in place: ``content`` is this step's own (N, R, R) tensor, and tanh_ keeps only its output for
        # backward, so no further (N, R, R) buffers are allocated
        z = self.affine_h(content.add_(guide.unsqueeze(2)).tanh_()).squeeze(2)  # (N, R)
        alpha = torch.softmax(z, dim=-1)
        attended = torch.bmm(alpha.unsqueeze(1), raw).view(b, t, dv)
        return attended, alpha.view(b, t, regions)


class BiLSTMPair(nn.Module):
    """One bidirectional single-layer LSTM per modality with zero initial states (AVEL/PSP/VSCG)."""

    def __init__(self, audio_dim: int = 128, visual_dim: int = 128, hidden: int = 128) -> None:
        super().__init__()
        self.lstm_audio = nn.LSTM(audio_dim, hidden, 1, batch_first=True, bidirectional=True)
        self.lstm_video = nn.LSTM(visual_dim, hidden, 1, batch_first=True, bidirectional=True)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """audio: (B, T, Da), visual: (B, T, Dv) -> (audio (B, T, 2*hidden), visual (B, T, 2*hidden))."""
        return self.lstm_audio(audio)[0], self.lstm_video(visual)[0]


class PositiveSamplePropagation(nn.Module):
    """PSP (Zhou et al., CVPR 2021): each segment of one modality gathers the *positive* (similar enough)
    segments of the other modality.

    Branches ``{v,a}_L{1,2} = Dropout(ReLU(Linear(x)))``; ``beta = ReLU(v2 a1^T / sqrt(hidden))``
    (visual rows, audio columns) and its transpose for the other direction; each row is L1-normalised,
    entries ``<= threshold`` are zeroed, and (``renormalize``) rows are L1-normalised again.
    ``v' = v + gamma_va a2`` and ``a' = a + gamma_av v1``; then (``use_fc``) ``Dropout(ReLU(Linear(.)))``
    with ``fc_dropout``; finally one LayerNorm shared by both modalities.

    Variants used by the papers:
      * PSP fully: branch_dropout 0.1, renormalize, use_fc, fc_dropout 0.1.
      * VSCG fully: branch_dropout 0.2, renormalize, use_fc, fc_dropout 0.2.
      * PSP weak: branch_dropout 0.1, no renormalise, no fc (LayerNorm straight after propagation).
      * VSCG weak: branch_dropout 0.1, no renormalise, use_fc, fc_dropout 0.2.
    """

    def __init__(
        self,
        dim: int = 256,
        hidden: int = 256,
        threshold: float = 0.099,
        branch_dropout: float = 0.1,
        renormalize: bool = True,
        use_fc: bool = True,
        fc_dropout: float = 0.1,
    ) -> None:
        super().__init__()
        self.threshold = threshold
        self.renormalize = renormalize
        self.scale = 1.0 / math.sqrt(hidden)
        self.v_L1 = nn.Linear(dim, hidden, bias=False)
        self.v_L2 = nn.Linear(dim, hidden, bias=False)
        self.a_L1 = nn.Linear(dim, hidden, bias=False)
        self.a_L2 = nn.Linear(dim, hidden, bias=False)
        self.branch_dropout = Dropout(branch_dropout)
        xavier_(self.v_L1, self.v_L2, self.a_L1, self.a_L2)
        if hidden != dim:
            raise ValueError(f"PSP adds hidden={hidden} features to dim={dim} inputs: they must match")
        self.v_fc: nn.Linear | None = None
        self.a_fc: nn.Linear | None = None
        if use_fc:
            self.v_fc = nn.Linear(dim, dim, bias=False)
            self.a_fc = nn.Linear(dim, dim, bias=False)
            self.fc_dropout = Dropout(fc_dropout)
            xavier_(self.v_fc, self.a_fc)
        self.layer_norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)

    def _prune(self, beta: torch.Tensor) -> torch.Tensor:
        """Row-L1-normalise, zero entries <= threshold, optionally renormalise. beta: (B, T, T) >= 0."""
        beta = beta / (beta.sum(-1, keepdim=True) + L1_EPS)
        gamma = beta * (beta > self.threshold)
        if self.renormalize:
            gamma = gamma / (gamma.sum(-1, keepdim=True) + L1_EPS)
        return gamma

    def similarity(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """Return pruned visual->audio weights gamma_va (B, T, T) (eval-mode branches; for inspection)."""
        v2 = F.relu(self.v_L2(visual))
        a1 = F.relu(self.a_L1(audio))
        return self._prune(F.relu(torch.bmm(v2, a1.transpose(1, 2)) * self.scale))

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """audio, visual: (B, T, dim) -> (audio', visual') each (B, T, dim), LayerNorm-ed."""
        drop = self.branch_dropout
        v1 = drop(F.relu(self.v_L1(visual)))
        v2 = drop(F.relu(self.v_L2(visual)))
        a1 = drop(F.relu(self.a_L1(audio)))
        a2 = drop(F.relu(self.a_L2(audio)))
        beta_va = F.relu(torch.bmm(v2, a1.transpose(1, 2)) * self.scale)  # (B, T_v, T_a)
        gamma_va = self._prune(beta_va)
        gamma_av = self._prune(beta_va.transpose(1, 2))
        visual = visual + torch.bmm(gamma_va, a2)
        audio = audio + torch.bmm(gamma_av, v1)
        if self.v_fc is not None and self.a_fc is not None:
            visual = self.fc_dropout(F.relu(self.v_fc(visual)))
            audio = self.fc_dropout(F.relu(self.a_fc(audio)))
        return self.layer_norm(audio), self.layer_norm(visual)


class CERE(nn.Module):
    """Cross-modal Event Representation Extractor of VSCG: a video-level summary of each modality.

    Two blocks ``Conv1d(k, padding k//2) + ReLU + MaxPool1d(2, 2)`` over time: (B, T, dim) -> (2, B, hidden)
    for T in 8..11 (10 -> 5 -> 2). The 2 pooled steps fill the (num_layers * num_directions = 2) slots of
    a bidirectional GRU's initial state. With ``shared`` (official) audio and visual use the same convs.
    """

    def __init__(self, dim: int = 256, hidden: int = 128, kernel_size: int = 5, shared: bool = True) -> None:
        super().__init__()
        self.audio_convs = self._convs(dim, hidden, kernel_size)
        self.visual_convs = self.audio_convs if shared else self._convs(dim, hidden, kernel_size)

    @staticmethod
    def _convs(dim: int, hidden: int, k: int) -> nn.Sequential:
        return nn.Sequential(
            nn.Conv1d(dim, hidden, k, 1, k // 2),
            nn.ReLU(),
            nn.MaxPool1d(2, 2),
            nn.Conv1d(hidden, hidden, k, 1, k // 2),
            nn.ReLU(),
            nn.MaxPool1d(2, 2),
        )

    @staticmethod
    def _run(convs: nn.Sequential, x: torch.Tensor) -> torch.Tensor:
        out = convs(x.transpose(1, 2))  # (B, hidden, T // 4)
        if out.shape[-1] != 2:
            raise ValueError(
                f"CERE needs T in 8..11 segments to pool to the 2 GRU state slots, got T={x.shape[1]}"
            )
        return out.permute(2, 0, 1)  # (2, B, hidden)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """audio, visual: (B, T, dim) -> (audio summary, visual summary) each (2, B, hidden)."""
        if self.visual_convs is self.audio_convs:  # shared: one pass over both modalities (half the calls)
            return self._run(self.audio_convs, torch.cat([audio, visual])).chunk(2, dim=1)
        return self._run(self.audio_convs, audio), self._run(self.visual_convs, visual)


def pooled_summary(x: torch.Tensor, how: str) -> torch.Tensor:
    """Time-pooled summary used by the ISCE ablations instead of CERE: (B, T, 2*h) -> (2, B, h).

    The pooled 2*h vector is split into its two halves, one per GRU direction slot.
    """
    pooled = x.mean(1) if how == "avg" else x.amax(1)
    b, d = pooled.shape
    return pooled.view(b, 2, d // 2).transpose(0, 1)


ESCM_MODES = ("fully", "weak")
ESCM_INITS = ("cere", "avg", "max", "zero")


class ESCM(nn.Module):
    """Event Semantic Consistency Modeling (VSCG) = CERE + ISCE; a plug-in after any encoder that yields
    audio and visual features (B, T, dim) with T = 10 (CERE pools 10 -> 2).

    ISCE: one bidirectional GRU per modality (input dim, hidden ``hidden``, output 2*hidden) whose initial
    state comes from a video-level summary of the features:

      * ``init="cere"`` (official): summaries from :class:`CERE` (shared convs unless ``cere_shared=False``);
      * ``init="avg"`` / ``"max"``: time-average / time-max of the features instead (ablation; needs
        dim == 2*hidden; no CERE parameters are built);
      * ``init="zero"``: zero initial states (ISCE without the video-level prior; nothing else built).

    ``mode="fully"``: both GRUs start from ``0.5 (s_audio + s_visual)``; the GRU outputs go through
    ``Dropout(ReLU(Linear(2*hidden, dim, bias=False)))`` per modality and one shared LayerNorm.
    ``mode="weak"``: ``s_audio <- L1 s_audio`` and ``s_visual <- L2 s_visual`` (Linear(hidden, hidden,
    no bias)), the audio GRU starts from the visual summary and vice versa (cross initialisation); the GRU
    outputs go through Dropout and the shared LayerNorm (needs dim == 2*hidden).
    Official dropouts: 0.1 (fully), 0.5 (weak).

    ``forward(audio, visual) -> (audio', visual')``, each (B, T, dim); fuse them as you like (VSCG: mean).
    """

    def __init__(
        self,
        dim: int = 256,
        hidden: int = 128,
        mode: str = "fully",
        init: str = "cere",
        cere_shared: bool = True,
        dropout: float = 0.1,
        kernel_size: int = 5,
    ) -> None:
        super().__init__()
        if mode not in ESCM_MODES:
            raise ValueError(f"ESCM mode must be one of {ESCM_MODES}, got {mode!r}")
        if init not in ESCM_INITS:
            raise ValueError(f"ESCM init must be one of {ESCM_INITS}, got {init!r}")
        if (mode == "weak" or init in ("avg", "max")) and dim != 2 * hidden:
            raise ValueError(f"ESCM mode={mode!r} init={init!r} needs dim == 2*hidden, got {dim}, {hidden}")
        self.mode, self.init = mode, init
        self.cere = CERE(dim, hidden, kernel_size, cere_shared) if init == "cere" else None
        self.L1: nn.Linear | None = None
        self.L2: nn.Linear | None = None
        if mode == "weak" and init != "zero":
            self.L1 = nn.Linear(hidden, hidden, bias=False)
            self.L2 = nn.Linear(hidden, hidden, bias=False)
            xavier_(self.L1, self.L2)
        self.a_gru = nn.GRU(dim, hidden, 1, batch_first=True, bidirectional=True)
        self.v_gru = nn.GRU(dim, hidden, 1, batch_first=True, bidirectional=True)
        self.a_fc: nn.Linear | None = None
        self.v_fc: nn.Linear | None = None
        if mode == "fully":
            self.a_fc = nn.Linear(2 * hidden, dim, bias=False)
            self.v_fc = nn.Linear(2 * hidden, dim, bias=False)
            xavier_(self.a_fc, self.v_fc)
        self.dropout = Dropout(dropout)
        self.layer_norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)

    def initial_states(
        self, audio: torch.Tensor, visual: torch.Tensor
    ) -> tuple[torch.Tensor | None, torch.Tensor | None]:
        """GRU h0 for the audio and visual GRUs, each (2, B, hidden), or None for zeros."""
        if self.init == "zero":
            return None, None
        if self.cere is not None:
            s_a, s_v = self.cere(audio, visual)
        else:
            s_a, s_v = pooled_summary(audio, self.init), pooled_summary(visual, self.init)
        if self.mode == "fully":
            h = (0.5 * (s_a + s_v)).contiguous()
            return h, h
        assert self.L1 is not None and self.L2 is not None
        return self.L2(s_v).contiguous(), self.L1(s_a).contiguous()  # cross: audio GRU <- visual summary

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """audio, visual: (B, T, dim) -> (audio', visual') each (B, T, dim)."""
        h_a, h_v = self.initial_states(audio, visual)
        out_a = self.a_gru(audio, h_a)[0]  # (B, T, 2*hidden)
        out_v = self.v_gru(visual, h_v)[0]
        if self.a_fc is not None and self.v_fc is not None:
            out_a, out_v = F.relu(self.a_fc(out_a)), F.relu(self.v_fc(out_v))
        return self.layer_norm(self.dropout(out_a)), self.layer_norm(self.dropout(out_v))


def cosine_pairs(audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
    """Per-segment audio-visual cosine similarity: (B, T, D) x (B, T, D) -> (B, T)."""
    return (F.normalize(audio, dim=-1) * F.normalize(visual, dim=-1)).sum(-1)
