"""Shared network pieces of the AVE methods (AVEL, PSP, VSCG, CMBS plug-ins), one small class each.

Shapes use B = batch, T = segments (10 in AVE), R = spatial regions (7x7 = 49), D = feature width.
Every module follows the official code of the method it comes from (see
``shared/reference/ave_anchors.md`` sections 1.2-1.4); deviations are named in the docstrings.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from avloc.kernels import ActivationBuffer, attend_regions, fused_attn_applies, use_fused_attn

# Numerical constants of the official code (not hyper-parameters: no paper varies them).
L1_EPS = 1e-8  # guard of every L1 row normalisation (PSP: `x / (sum + 1e-8)`)
LAYER_NORM_EPS = 1e-6  # LayerNorm eps of PSP and ESCM


def xavier_(*layers: nn.Module) -> None:
    """Xavier-uniform init of the weights of ``layers`` (biases keep PyTorch's default, as officially)."""
    for layer in layers:
        nn.init.xavier_uniform_(layer.weight)  # type: ignore[arg-type]


class AudioGuidedVisualAttention(nn.Module):
    """AGVA of AVEL (reused by PSP and VSCG): audio picks the sounding regions of each segment.

    Quirk kept from the official code: ``W_g g`` has ``regions`` entries and entry ``r`` is added to all
    ``regions`` hidden units of region ``r`` (``affine_g(a).unsqueeze(2)``), so ``regions`` must equal the
    number of spatial cells.

    ``fused_attn`` (default :func:`avloc.kernels.use_fused_attn`) runs the same equations as the blocked
    kernel of :mod:`avloc.kernels.region_attention` where it applies (CPU float32).
    """

    def __init__(
        self, audio_dim: int = 128, visual_dim: int = 512, hidden: int = 512, regions: int = 49,
        fused_attn: bool | None = None,
    ) -> None:
        super().__init__()
        self.regions = regions
        self.affine_audio = nn.Linear(audio_dim, hidden)
        self.affine_video = nn.Linear(visual_dim, hidden)
        self.affine_v = nn.Linear(hidden, regions, bias=False)
        self.affine_g = nn.Linear(hidden, regions, bias=False)
        self.affine_h = nn.Linear(regions, 1, bias=False)
        xavier_(self.affine_v, self.affine_g, self.affine_h, self.affine_audio, self.affine_video)
        self.fused_attn = use_fused_attn() if fused_attn is None else fused_attn
        self.activations = ActivationBuffer()  # the kernel's saved activations, reused across steps (not state)

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
        x = visual.reshape(b, t, regions, dv)  # (B, T, R, Dv) raw region features x_r
        g = F.relu(self.affine_audio(audio))  # (B, T, hidden)    g = ReLU(W_audio a + b)
        guide = self.affine_g(g)  # (B, T, R)                      (W_g g)_r
        if self.fused_attn and fused_attn_applies(visual):
            attended, alpha = attend_regions(
                x.reshape(b * t * regions, dv), guide.reshape(b * t, regions), self.affine_video.weight,
                self.affine_video.bias, self.affine_v.weight, self.affine_h.weight, self.activations,
            )
            return attended.view(b, t, dv), alpha.view(b, t, regions)
        h = F.relu(self.affine_video(x))  # (B, T, R, hidden)     h_r = ReLU(W_video x_r + b)
        u = torch.tanh(self.affine_v(h) + guide.unsqueeze(3))  # (B, T, R, R)   tanh(W_v h_r + (W_g g)_r)
        z = self.affine_h(u).squeeze(3)  # (B, T, R)             z_r = w_h . u_r
        alpha = torch.softmax(z, dim=-1)  # (B, T, R)             alpha = softmax_r(z)
        attended = (alpha.unsqueeze(2) @ x).squeeze(2)  # (B, T, Dv)   sum_r alpha_r x_r
        return attended, alpha


class BiLSTMPair(nn.Module):
    """One bidirectional single-layer LSTM per modality with zero initial states (AVEL/PSP/VSCG)."""

    def __init__(self, audio_dim: int = 128, visual_dim: int = 128, hidden: int = 128) -> None:
        super().__init__()
        self.lstm_audio = nn.LSTM(audio_dim, hidden, 1, batch_first=True, bidirectional=True)
        self.lstm_video = nn.LSTM(visual_dim, hidden, 1, batch_first=True, bidirectional=True)

    def forward(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """audio: (B, T, Da), visual: (B, T, Dv) -> (audio (B, T, 2*hidden), visual (B, T, 2*hidden))."""
        audio, visual = lstm_inputs(audio, visual)
        return self.lstm_audio(audio)[0], self.lstm_video(visual)[0]


def lstm_inputs(*xs: torch.Tensor) -> tuple[torch.Tensor, ...]:
    """LSTM inputs in the autocast dtype while autocast is on (else unchanged): under bf16 autocast the CPU
    LSTM (oneDNN) casts its weights but not a float32 input (raw features, as the weak models feed it) and
    fails on the mix."""
    kind = xs[0].device.type
    if not torch.is_autocast_enabled(kind):
        return xs
    dtype = torch.get_autocast_dtype(kind)
    return tuple(x.to(dtype) for x in xs)


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
        self.branch_dropout = nn.Dropout(branch_dropout)
        xavier_(self.v_L1, self.v_L2, self.a_L1, self.a_L2)
        if hidden != dim:
            raise ValueError(f"PSP adds hidden={hidden} features to dim={dim} inputs: they must match")
        self.v_fc: nn.Linear | None = None
        self.a_fc: nn.Linear | None = None
        if use_fc:
            self.v_fc = nn.Linear(dim, dim, bias=False)
            self.a_fc = nn.Linear(dim, dim, bias=False)
            self.fc_dropout = nn.Dropout(fc_dropout)
            xavier_(self.v_fc, self.a_fc)
        self.layer_norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)

    def _prune(self, beta: torch.Tensor) -> torch.Tensor:
        """Row-L1-normalise, zero entries <= threshold, optionally renormalise. beta: (B, T, T) >= 0."""
        beta = beta / (beta.sum(-1, keepdim=True) + L1_EPS)
        gamma = beta * (beta > self.threshold)
        if self.renormalize:
            gamma = gamma / (gamma.sum(-1, keepdim=True) + L1_EPS)
        return gamma

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


@dataclass
class ESCMConfig:
    """The fields of VSCG's ESCM plug-in; a model Config holds one as ``escm`` (None: no ESCM)."""

    hidden: int = 128  # CERE channels / ISCE GRU hidden size
    dropout: float = 0.1  # ESCM dropout (VSCG fully: 0.1)
    kernel: int = 5  # CERE Conv1d kernel size (padding kernel // 2)


@dataclass
class WeakESCMConfig(ESCMConfig):
    """ESCM of the weakly supervised models (cross-initialised GRUs)."""

    dropout: float = 0.5  # ESCM dropout (VSCG weak: 0.5)


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
        self.dropout = nn.Dropout(dropout)
        self.layer_norm = nn.LayerNorm(dim, eps=LAYER_NORM_EPS)

    @classmethod
    def from_config(cls, dim: int, cfg: ESCMConfig | None, mode: str, init: str = "cere",
                    cere_shared: bool = True) -> "ESCM | None":
        """The ESCM stage of a model Config's ``escm`` group on (B, T, dim) streams (None: no ESCM)."""
        if cfg is None:
            return None
        return cls(dim, cfg.hidden, mode, init, cere_shared, cfg.dropout, cfg.kernel)

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
