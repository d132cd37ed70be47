"""Building blocks of the audio-visual video parsing (AVVP) models: the hybrid attention layer of HAN and
attentive multimodal MIL (MMIL) pooling (Tian, Li & Xu, ECCV 2020, Sec. 4)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class HybridAttentionLayer(nn.Module):
    """One HAN layer: a modality attends to itself and to the other one, then a feed-forward block.

    For the query modality q and the other modality k (both (B, T, D)):
        h = LN(q + Drop(SelfAtt(q, q, q)) + Drop(CrossAtt(q, k, k)))
        out = LN(h + Drop(W2 Drop(ReLU(W1 h))))
    HAN uses one layer for both directions (audio -> visual and visual -> audio share its weights).
    """

    def __init__(self, dim: int, heads: int, ffn: int, dropout: float) -> None:
        super().__init__()
        self.self_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.cross_attn = nn.MultiheadAttention(dim, heads, dropout=dropout, batch_first=True)
        self.ffn_in = nn.Linear(dim, ffn)
        self.ffn_out = nn.Linear(ffn, dim)
        self.norm_att = nn.LayerNorm(dim)
        self.norm_ffn = nn.LayerNorm(dim)
        self.drop_self = nn.Dropout(dropout)
        self.drop_cross = nn.Dropout(dropout)
        self.drop_ffn = nn.Dropout(dropout)
        self.drop_out = nn.Dropout(dropout)

    def forward(self, q: Tensor, k: Tensor, padding: Tensor | None = None) -> Tensor:
        """q, k: (B, T, D); padding: (B, T) bool, True at padded steps (never attended to). -> (B, T, D)"""
        cross = self.cross_attn(q, k, k, key_padding_mask=padding, need_weights=False)[0]  # (B, T, D)
        own = self.self_attn(q, q, q, key_padding_mask=padding, need_weights=False)[0]  # (B, T, D)
        h = self.norm_att(q + self.drop_cross(cross) + self.drop_self(own))  # (B, T, D)
        ffn = self.ffn_out(self.drop_ffn(torch.relu(self.ffn_in(h))))  # (B, T, D)
        return self.norm_ffn(h + self.drop_out(ffn))


def attentive_mmil(prob: Tensor, time_logits: Tensor, modality_logits: Tensor,
                   mask: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """Attentive MMIL pooling of per-segment, per-modality class probabilities.

    All inputs (B, T, M, C) (M = 2 modalities, audio first); ``mask`` (B, T) bool, False at padded steps
    (they get no temporal weight). Per class, a softmax over time weighs the segments of each modality and
    a softmax over the modalities weighs the two modalities at each segment:
        W_t = softmax_t(time_logits),  W_m = softmax_m(modality_logits)
        p_video = sum_t sum_m W_t * W_m * prob,   p_audio = sum_t W_t[:, :, 0] * prob[:, :, 0]  (visual alike)
    Returns (p_video, p_audio, p_visual), each (B, C).
    """
    if mask is not None:
        time_logits = time_logits.masked_fill(~mask[:, :, None, None], float("-inf"))
    temporal = torch.softmax(time_logits, dim=1) * prob  # (B, T, M, C)
    video = (temporal * torch.softmax(modality_logits, dim=2)).sum(dim=(1, 2))  # (B, C)
    per_modality = temporal.sum(dim=1)  # (B, M, C)
    return video, per_modality[:, 0], per_modality[:, 1]


class MMILHead(nn.Module):
    """Per-segment class probabilities and the two attention logits of MMIL, from one shared feature width.

    x (B, T, M, D) -> prob = sigmoid(W_p x), time and modality attention logits W_t x, W_m x, each (B, T, M, C).
    """

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.prob = nn.Linear(dim, num_classes)
        self.time_att = nn.Linear(dim, num_classes)
        self.modality_att = nn.Linear(dim, num_classes)

    def forward(self, x: Tensor) -> tuple[Tensor, Tensor, Tensor]:
        return torch.sigmoid(self.prob(x)), self.time_att(x), self.modality_att(x)
