"""CMBS: Cross-Modal Background Suppression (Xia & Zhao, CVPR 2022), supervised and weakly supervised.

Follows ``marmot-xy/CMBS:model/main_model.py`` (``supv_main_model``, ``weak_main_model``), batch-first,
float32 (the reference calls ``model.double()``), and with only the layers its forward path uses.

Parameter counts (defaults, 29 classes):
  * ``cmbs``: 9,200,473 = the reference's forward path (~9.2 M). The reference registers 13,544,537
    (~13.5 M); the 4,344,064 difference is its unused template encoder/decoder layers (kept next to their
    clones), the decoders' never-called self-attentions, the attention's ``ave_bottleneck`` and two spare
    LayerNorms.
  * ``cmbs_weak``: 9,395,518 (the reference registers 14,789,439, ~14.8 M: the same kinds of unused
    templates with FFN 2048, plus an unused ``classifier``).
  * ``escm: {}`` adds VSCG's ESCM (``avloc.models.blocks.ESCM``) on the two (B, T, d_model) streams
    right before the heads: +970,496 (fully mode, ``cmbs``) / +872,192 (weak mode, ``cmbs_weak``).

**The weak-evaluation gate bug (fixed here).** The reference evaluates the weak model with
``compute_accuracy_supervised(av_gate, raw_logits, labels)``, which applies ``sigmoid`` to ``av_gate``,
but ``av_gate`` is already the mean of two sigmoids in (0, 1). So ``sigmoid(av_gate) > 0.5`` is always
true, background is never predicted, and every segment gets the video-level argmax (at most ~82.2 % on
the AVE test split, where 17.8 % of segments are background). We threshold the gate *probability* once:
``av_gate > gate_threshold`` -> class, else background. ``official_gate_bug: true`` reproduces the old
behaviour (sigmoid applied a second time) for comparison with published numbers.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from avloc.models.ave_base import AVEModel, Tensors
from avloc.models.blocks import ESCM, ESCMConfig, WeakESCMConfig, lstm_inputs
from avloc.models.cmbs_blocks import (
    AudioVideoInter,
    CrossModalGatedAttention,
    CrossModalRelationDecoder,
    TemporalRelationEncoder,
    topk_temporal_mean,
)
from avloc.models.outputs import AVEOutput
from avloc.registry import MODELS


class _CMBSFrontEnd(nn.Module):
    """What both CMBS settings share: visual adapter + cross-modal gated attention, the two
    (temporal encoder, cross-modal decoder) pairs, the two gate layers and the two interaction blocks.
    The settings differ in how they wire these (see the model classes)."""

    def __init__(self, cfg: CMBS.Config | CMBSWeak.Config, audio_in: int, visual_in: int) -> None:
        super().__init__()
        d = cfg.d_model
        self.v_fc = nn.Linear(cfg.visual_dim, cfg.visual_dim)
        self.v_fc_dropout = nn.Dropout(cfg.visual_fc_dropout)
        self.attention = CrossModalGatedAttention(
            cfg.audio_dim, cfg.visual_dim, cfg.att_hidden, cfg.att_qk_dim, cfg.beta, cfg.att_dropout
        )
        enc = dict(d_model=d, num_heads=cfg.num_heads, dropout=cfg.dropout)
        self.video_encoder = TemporalRelationEncoder(visual_in, num_layers=cfg.encoder_layers,
                                                     ffn_dim=cfg.encoder_ffn, **enc)
        self.audio_encoder = TemporalRelationEncoder(audio_in, num_layers=cfg.encoder_layers,
                                                     ffn_dim=cfg.encoder_ffn, **enc)
        self.video_decoder = CrossModalRelationDecoder(visual_in, num_layers=cfg.decoder_layers,
                                                       ffn_dim=cfg.decoder_ffn, **enc)
        self.audio_decoder = CrossModalRelationDecoder(audio_in, num_layers=cfg.decoder_layers,
                                                       ffn_dim=cfg.decoder_ffn, **enc)
        self.audio_gate = nn.Linear(d, 1)
        self.video_gate = nn.Linear(d, 1)
        self.av_inter = AudioVideoInter(d, cfg.inter_heads, cfg.inter_attn_dropout, cfg.inter_dropout)
        self.va_inter = AudioVideoInter(d, cfg.inter_heads, cfg.inter_attn_dropout, cfg.inter_dropout)

    def attend(self, audio: torch.Tensor, visual: torch.Tensor) -> torch.Tensor:
        """audio (B, T, Da), visual (B, T, H, W, Dv) -> audio-attended visual (B, T, Dv)."""
        visual = self.v_fc_dropout(F.relu(self.v_fc(visual)))
        return self.attention(visual, audio)

    def relate(
        self, audio: torch.Tensor, visual: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """Each modality's self-encoding (key/value) and its query decoded against the other's encoding.

        Returns (audio_kv, visual_kv, audio_query, visual_query), each (B, T, d_model)."""
        visual_kv = self.video_encoder(visual)
        audio_kv = self.audio_encoder(audio)
        return audio_kv, visual_kv, self.audio_decoder(audio, visual_kv), self.video_decoder(visual, audio_kv)

    def interact(self, audio_q: torch.Tensor, visual_q: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """AV interaction: visual first, then audio with the updated visual. (B, T, d_model) x 2 -> x 2."""
        visual_q = self.av_inter(visual_q, audio_q)
        audio_q = self.va_inter(audio_q, visual_q)
        return audio_q, visual_q


@dataclass
class _CMBSCommon:
    """Fields shared by both CMBS configs (kept in one place so the two stay in step)."""

    audio_dim: int = 128  # audio feature size (VGGish: 128); filled from the data
    visual_dim: int = 512  # visual region feature size (VGG19 pool5: 512); filled from the data
    num_classes: int = 29  # outputs incl. background (AVE: 28 events + bg = 28); filled from the data
    d_model: int = 256  # width of the temporal encoders/decoders and of everything after them
    att_hidden: int = 256  # hidden width of the cross-modal gated attention
    att_qk_dim: int = 128  # query/key width of the attention's region self-attention (visual_dim / 4)
    att_dropout: float = 0.2  # dropout on the region self-attention residual
    num_heads: int = 4  # heads of the temporal encoders and cross-modal decoders
    encoder_layers: int = 2  # layers of each temporal relation encoder
    decoder_layers: int = 1  # layers of each cross-modal relation decoder
    decoder_ffn: int = 1024  # FFN width of the decoders
    dropout: float = 0.1  # dropout inside encoder/decoder layers
    inter_attn_dropout: float = 0.2  # attention dropout of the AV interaction blocks
    inter_dropout: float = 0.1  # residual dropout of the AV interaction blocks
    topk: int = 4  # CAS pooling: mean of the top-k segments per class


@MODELS.register("cmbs")
class CMBS(AVEModel):
    """Supervised CMBS.

    visual (B,T,H,W,Dv) -> Linear+ReLU+Dropout -> cross-modal gated attention (B,T,Dv);
    Bi-LSTMs: audio Da -> d_model, visual Dv -> 2*d_model; temporal encoders (self) and cross-modal
    decoders (query = own modality, memory = other's encoding); gates ``g_a = sigmoid(W a_kv)``,
    ``g_v = sigmoid(W v_kv)`` scale the queries: ``v_q *= 1 + alpha g_a``, ``a_q *= 1 + alpha g_v``;
    CAS ``Linear(d_model, C-1)`` per modality, top-k temporal mean, averaged -> ``cas_video_logits``
    (B, C-1); AV interaction -> fused (B,T,d_model) -> relevance ``Linear(d_model,1)`` per segment and
    event scores ``Linear(d_model, C-1)(max_t fused) + gamma * cas_video_logits``.

    Outputs: ``event_logits`` (B,T) (relevance), ``class_logits`` (B,C-1) (event scores),
    ``cas_video_logits`` (B,C-1), gate logits ``audio_gate_logits``/``video_gate_logits`` (B,T) and
    ``av_gate`` = g_a * g_v (B,T).
    Prediction: ``sigmoid(event_logits) > threshold`` -> argmax(class_logits), else background.
    """


    @dataclass
    class Config(_CMBSCommon):
        alpha: float = 0.1  # gate strength: queries scaled by (1 + alpha * gate of the other modality)
        gamma: float = 0.3  # weight of the CAS video score added to the event scores
        beta: float = 0.4  # weight of the self-attention branch in the gated attention
        visual_fc_dropout: float = 0.2  # dropout after the visual adapter Linear
        encoder_ffn: int = 1024  # FFN width of the temporal encoders
        inter_heads: int = 4  # heads of the AV interaction blocks
        threshold: float = 0.5  # sigmoid(relevance) above this -> event segment
        escm: ESCMConfig | None = None  # VSCG's ESCM on the two streams before the heads; None: none

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        if d % 2:
            raise ValueError(f"cmbs: d_model must be even (audio Bi-LSTM gives 2 x d_model/2), got {d}")
        self.audio_rnn = nn.LSTM(cfg.audio_dim, d // 2, 1, batch_first=True, bidirectional=True)
        self.visual_rnn = nn.LSTM(cfg.visual_dim, d, 1, batch_first=True, bidirectional=True)
        self.front = _CMBSFrontEnd(cfg, audio_in=d, visual_in=2 * d)
        self.escm = ESCM.from_config(d, cfg.escm, "fully")
        events = cfg.num_classes - 1
        self.audio_cas = nn.Linear(d, events)
        self.video_cas = nn.Linear(d, events)
        self.relevance = nn.Linear(d, 1)
        self.event_classifier = nn.Linear(d, events)

    def encode(self, audio: Tensor, visual: Tensor) -> tuple[Tensor, Tensor, Tensors]:
        c = self.cfg
        visual = self.front.attend(audio, visual)  # (B, T, Dv)
        audio_in, visual_in = lstm_inputs(audio, visual)
        audio_seq, visual_seq = self.audio_rnn(audio_in)[0], self.visual_rnn(visual_in)[0]
        audio_kv, visual_kv, audio_q, visual_q = self.front.relate(audio_seq, visual_seq)

        a_gate_logit = self.front.audio_gate(audio_kv)  # (B, T, 1)
        v_gate_logit = self.front.video_gate(visual_kv)
        a_gate, v_gate = torch.sigmoid(a_gate_logit), torch.sigmoid(v_gate_logit)
        visual_q = visual_q * (1.0 + c.alpha * a_gate)
        audio_q = audio_q * (1.0 + c.alpha * v_gate)

        cas_video_logits = 0.5 * (
            topk_temporal_mean(self.video_cas(visual_q), c.topk)
            + topk_temporal_mean(self.audio_cas(audio_q), c.topk)
        )  # (B, C-1)
        audio_q, visual_q = self.front.interact(audio_q, visual_q)  # (B, T, d) each
        return audio_q, visual_q, {
            "cas_video_logits": cas_video_logits,
            "audio_gate_logits": a_gate_logit.squeeze(-1),
            "video_gate_logits": v_gate_logit.squeeze(-1),
            "av_gate": (a_gate * v_gate).squeeze(-1),
        }

    def outputs(self, audio: Tensor, visual: Tensor, extras: Tensors) -> AVEOutput:
        fused = 0.5 * (audio + visual)  # (B, T, d)
        cas = extras["cas_video_logits"]  # (B, C-1)
        event_scores = self.event_classifier(fused.amax(dim=1)) + self.cfg.gamma * cas  # (B, C-1)
        return AVEOutput(class_logits=event_scores, event_logits=self.relevance(fused).squeeze(-1), **extras)

    def event_gate(self, out: AVEOutput) -> Tensor:
        return torch.sigmoid(out.event_logits) > self.cfg.threshold


@MODELS.register("cmbs_weak")
class CMBSWeak(AVEModel):
    """Weakly supervised CMBS (trained on video-level labels only).

    No Bi-LSTMs: the temporal encoders/decoders read the raw audio (Da) and the attended visual (Dv).
    Gates are crossed (``g_a`` from the *visual* encoding, ``g_v`` from the *audio* encoding, as in the
    reference) and mix as ``v_q *= (1 - alpha) + alpha g_a``, ``a_q *= (1 - alpha) + alpha g_v``;
    ``av_gate = (g_a + g_v) / 2`` (B,T). Per-modality CAS ``Linear(d_model, C)`` only gate the fused CAS:
    ``cas = Linear(d_model, C, no bias)(fused)`` (the reference's Conv1d k=1) is multiplied by
    ``gamma (sigmoid(video_cas) + sigmoid(audio_cas))``; its top-k temporal mean is ``raw_logits`` (B,C);
    ``video_logits = max_t(av_gate_t * raw_logits)`` (B,C) (the reference then applies softmax).

    Outputs: ``video_logits`` (B,C), ``class_logits`` = raw_logits (B,C), ``av_gate`` (B,T) probabilities.
    Prediction: ``av_gate > gate_threshold`` -> argmax(class_logits) over all C, else background (see the
    module docstring for the reference's double-sigmoid bug, ``official_gate_bug``).
    """


    @dataclass
    class Config(_CMBSCommon):
        alpha: float = 0.2  # gate strength: queries scaled by (1 - alpha + alpha * gate)
        gamma: float = 0.5  # scale of the modality-CAS gates on the fused CAS
        beta: float = 0.5  # weight of the self-attention branch in the gated attention
        visual_fc_dropout: float = 0.1  # dropout after the visual adapter Linear
        encoder_ffn: int = 2048  # FFN width of the temporal encoders
        inter_heads: int = 2  # heads of the AV interaction blocks
        gate_threshold: float = 0.5  # av_gate (a probability) above this -> event segment
        official_gate_bug: bool = False  # reproduce the reference: threshold sigmoid(av_gate) (never bg)
        escm: WeakESCMConfig | None = None  # weak ESCM (2 * escm.hidden must equal d_model); None: none

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.front = _CMBSFrontEnd(cfg, audio_in=cfg.audio_dim, visual_in=cfg.visual_dim)
        self.escm = ESCM.from_config(d, cfg.escm, "weak")
        self.audio_cas = nn.Linear(d, cfg.num_classes)
        self.video_cas = nn.Linear(d, cfg.num_classes)
        self.cas = nn.Linear(d, cfg.num_classes, bias=False)

    def encode(self, audio: Tensor, visual: Tensor) -> tuple[Tensor, Tensor, Tensors]:
        c = self.cfg
        visual = self.front.attend(audio, visual)  # (B, T, Dv)
        audio_kv, visual_kv, audio_q, visual_q = self.front.relate(audio, visual)

        a_gate = torch.sigmoid(self.front.audio_gate(visual_kv))  # (B, T, 1), crossed as in the reference
        v_gate = torch.sigmoid(self.front.video_gate(audio_kv))
        av_gate = 0.5 * (a_gate + v_gate)
        visual_q = visual_q * ((1.0 - c.alpha) + c.alpha * a_gate)
        audio_q = audio_q * ((1.0 - c.alpha) + c.alpha * v_gate)
        video_cas, audio_cas = self.video_cas(visual_q), self.audio_cas(audio_q)  # (B, T, C)
        modality_gate = c.gamma * (torch.sigmoid(video_cas) + torch.sigmoid(audio_cas))
        audio_q, visual_q = self.front.interact(audio_q, visual_q)  # (B, T, d) each
        return audio_q, visual_q, {"av_gate": av_gate.squeeze(-1), "modality_gate": modality_gate}

    def outputs(self, audio: Tensor, visual: Tensor, extras: Tensors) -> AVEOutput:
        fused = 0.5 * (audio + visual)  # (B, T, d)
        raw_logits = topk_temporal_mean(self.cas(fused) * extras["modality_gate"], self.cfg.topk)  # (B, C)
        av_gate = extras["av_gate"]  # (B, T)
        video_logits = (av_gate.unsqueeze(-1) * raw_logits.unsqueeze(1)).amax(dim=1)  # (B, C)
        return AVEOutput(class_logits=raw_logits, video_logits=video_logits, av_gate=av_gate)

    def event_gate(self, out: AVEOutput) -> Tensor:
        gate = out.av_gate
        if self.cfg.official_gate_bug:
            gate = torch.sigmoid(gate)  # the reference's second sigmoid: always > 0.5, so never background
        return gate > self.cfg.gate_threshold
