"""Layers specific to CMBS (Xia & Zhao, CVPR 2022), batch-first and without the reference's dead weights.

The official code (``marmot-xy/CMBS:model/models.py``, ``model/main_model.py``) registers layers its forward
never touches: a template encoder/decoder layer kept next to its clones, a decoder self-attention, an
``ave_bottleneck`` in the attention, spare LayerNorms and a spare classifier. Only the layers the forward
path uses are built here, so ``sum(p.numel())`` is the size of the model that actually runs.

Shapes use B = batch, T = segments (10), R = spatial regions (7x7 = 49), D = feature width.
"""

from __future__ import annotations

import copy

import torch
import torch.nn.functional as F
from torch import nn


def topk_temporal_mean(scores: torch.Tensor, k: int) -> torch.Tensor:
    """Mean of the k largest values over time, per class: ``scores (B, T, C) -> (B, C)``.

    CMBS pools its class-activation sequences this way so that a short event (a few high segments) is not
    diluted by the background segments the way a plain temporal mean would dilute it.
    """
    if scores.dim() != 3:
        raise ValueError(f"topk_temporal_mean expects (B, T, C) scores, got shape {tuple(scores.shape)}")
    if not 1 <= k <= scores.shape[1]:
        raise ValueError(f"topk_temporal_mean: k={k} must be in [1, T={scores.shape[1]}]")
    return scores.topk(k, dim=1).values.mean(dim=1)


class CrossModalGatedAttention(nn.Module):
    """CMBS's audio-guided visual attention (``New_Audio_Guided_Attention`` in the reference code).

    Four steps on the region features of each segment:
    1. self-attention over the R regions (query/key ``visual_dim -> qk_dim``, value ``visual_dim ->
       visual_dim``, residual + LayerNorm);
    2. a spatial attention guided by the region average of (1), giving ``self_att`` (B, T, visual_dim);
    3. an audio-guided channel attention on the *raw* regions, applied as ``v * (1 + att)``;
    4. an audio-guided spatial attention pooling the channel-attended regions to ``c_s`` (B, T, visual_dim).
    Output: ``c_s + beta * sigmoid(self_att) * c_s``. The reference says this simplified form replaces the
    paper's equations (CMBS issue #3); we follow the code.
    """

    def __init__(
        self, audio_dim: int, visual_dim: int, hidden_dim: int, qk_dim: int, beta: float, dropout: float
    ) -> None:
        super().__init__()
        self.beta = beta
        # step 1: region self-attention
        self.query = nn.Linear(visual_dim, qk_dim)
        self.key = nn.Linear(visual_dim, qk_dim)
        self.value = nn.Linear(visual_dim, visual_dim)
        self.self_dropout = nn.Dropout(dropout)
        self.self_norm = nn.LayerNorm(visual_dim)
        # step 2: average-guided spatial attention
        self.avg_proj = nn.Linear(visual_dim, hidden_dim)
        self.avg_region_proj = nn.Linear(visual_dim, hidden_dim)
        self.avg_score = nn.Linear(hidden_dim, 1)
        # step 3: audio-guided channel attention
        self.chan_audio = nn.Linear(audio_dim, visual_dim)
        self.chan_video = nn.Linear(visual_dim, visual_dim)
        self.chan_bottleneck = nn.Linear(visual_dim, hidden_dim)
        self.chan_att = nn.Linear(hidden_dim, visual_dim)
        # step 4: audio-guided spatial attention
        self.spat_video = nn.Linear(visual_dim, hidden_dim)
        self.spat_audio = nn.Linear(audio_dim, hidden_dim)
        self.spat_score = nn.Linear(hidden_dim, 1)

    def forward(self, visual: torch.Tensor, audio: torch.Tensor) -> torch.Tensor:
        """visual: (B, T, H, W, Dv) region features; audio: (B, T, Da) -> (B, T, Dv)."""
        b, t, h, w, dv = visual.shape
        n = b * t
        raw = visual.reshape(n, h * w, dv)
        aud = audio.reshape(n, 1, audio.shape[-1])

        # 1. self-attention over regions (unscaled dot product, as in the reference)
        energy = self.query(raw) @ self.key(raw).transpose(1, 2)  # (N, R, R)
        attended = energy.softmax(dim=-1) @ self.value(raw)
        regions = self.self_norm(raw + self.self_dropout(attended))  # (N, R, Dv)

        # 2. spatial attention guided by the region average
        avg = F.relu(self.avg_proj(regions.mean(dim=1, keepdim=True)))  # (N, 1, Dh)
        query = F.relu(self.avg_region_proj(regions)) * avg  # (N, R, Dh)
        maps = torch.tanh(self.avg_score(query)).transpose(1, 2).softmax(dim=-1)  # (N, 1, R)
        self_att = (maps @ regions).reshape(b, t, dv)

        # 3. audio-guided channel attention on the raw regions
        joint = (F.relu(self.chan_audio(aud)) * F.relu(self.chan_video(regions))).mean(dim=1)  # (N, Dv)
        chan = torch.sigmoid(self.chan_att(F.relu(self.chan_bottleneck(joint))))  # (N, Dv)
        chan_feat = raw * (chan.unsqueeze(1) + 1.0)  # (N, R, Dv)

        # 4. audio-guided spatial attention on the channel-attended regions
        query2 = F.relu(self.spat_video(chan_feat)) * F.relu(self.spat_audio(aud))  # (N, R, Dh)
        maps2 = torch.tanh(self.spat_score(query2)).transpose(1, 2).softmax(dim=-1)  # (N, 1, R)
        c_s = (maps2 @ chan_feat).reshape(b, t, dv)
        return c_s + self.beta * torch.sigmoid(self_att) * c_s


class TemporalRelationEncoder(nn.Module):
    """``InternalTemporalRelationModule``: Linear(in_dim -> d_model) then post-norm Transformer encoder
    layers (self-attention over the T segments, ReLU FFN). (B, T, in_dim) -> (B, T, d_model).

    The layers start as identical copies of one initialised layer, as the official code's ``_get_clones``
    (``copy.deepcopy``) makes them."""

    def __init__(
        self, in_dim: int, d_model: int, num_layers: int, num_heads: int, ffn_dim: int, dropout: float
    ) -> None:
        super().__init__()
        self.affine = nn.Linear(in_dim, d_model)
        layer = nn.TransformerEncoderLayer(d_model, num_heads, ffn_dim, dropout, batch_first=True)
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(num_layers))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.affine(x)
        for layer in self.layers:
            x = layer(x)
        return x


class CrossModalDecoderLayer(nn.Module):
    """The CMRAN decoder layer as CMBS runs it: cross-attention from ``query`` (B, T, D) to the
    concatenation [memory; query] (B, Tm + T, D), residual + LayerNorm, then a ReLU FFN, residual +
    LayerNorm. The reference also builds a decoder self-attention that it never calls; it is omitted."""

    def __init__(self, d_model: int, num_heads: int, ffn_dim: int, dropout: float) -> None:
        super().__init__()
        self.cross_attn = nn.MultiheadAttention(d_model, num_heads, dropout=dropout, batch_first=True)
        self.ffn = nn.Sequential(
            nn.Linear(d_model, ffn_dim), nn.ReLU(), nn.Dropout(dropout), nn.Linear(ffn_dim, d_model)
        )
        self.norm1 = nn.LayerNorm(d_model)
        self.norm2 = nn.LayerNorm(d_model)
        self.dropout1 = nn.Dropout(dropout)
        self.dropout2 = nn.Dropout(dropout)

    def forward(self, query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        memory = torch.cat([memory, query], dim=1)
        x = self.norm1(query + self.dropout1(self.cross_attn(query, memory, memory, need_weights=False)[0]))
        return self.norm2(x + self.dropout2(self.ffn(x)))


class CrossModalRelationDecoder(nn.Module):
    """``CrossModalRelationAttModule``: Linear(in_dim -> d_model) on the query modality, then decoder
    layers attending to the other modality's encoder output. query (B, T, in_dim), memory (B, T, d_model)
    -> (B, T, d_model). Its layers start as identical copies, like the encoder's."""

    def __init__(
        self, in_dim: int, d_model: int, num_layers: int, num_heads: int, ffn_dim: int, dropout: float
    ) -> None:
        super().__init__()
        self.affine = nn.Linear(in_dim, d_model)
        layer = CrossModalDecoderLayer(d_model, num_heads, ffn_dim, dropout)
        self.layers = nn.ModuleList(copy.deepcopy(layer) for _ in range(num_layers))

    def forward(self, query: torch.Tensor, memory: torch.Tensor) -> torch.Tensor:
        x = self.affine(query)
        for layer in self.layers:
            x = layer(x, memory)
        return x


class AudioVideoInter(nn.Module):
    """CMBS's audio-visual interaction: the element-wise product ``x * y`` (B, T, D) attends to the
    concatenated sequences [y; x] (B, 2T, D); residual + LayerNorm. Returns (B, T, D)."""

    def __init__(self, d_model: int, num_heads: int, attn_dropout: float, dropout: float) -> None:
        super().__init__()
        self.attn = nn.MultiheadAttention(d_model, num_heads, dropout=attn_dropout, batch_first=True)
        self.dropout = nn.Dropout(dropout)
        self.norm = nn.LayerNorm(d_model)

    def forward(self, x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        joint = x * y
        memory = torch.cat([y, x], dim=1)
        return self.norm(joint + self.dropout(self.attn(joint, memory, memory, need_weights=False)[0]))
