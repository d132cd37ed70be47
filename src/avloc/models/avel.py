"""AVEL "A+V-att" (Tian et al., ECCV 2018), fully and weakly supervised.

Follows ``YapengTian/AVE-ECCV18:models.py`` / ``models_weakly.py`` (``att_Net``): audio-guided visual
attention over the 7x7 regions, one Bi-LSTM per modality, concatenation and a two-layer per-segment head.
The official model ends in a softmax; here the model returns logits and the loss decides (see
``avloc.losses.avel_losses``).

Parameter counts (defaults, 29 classes): ``avel`` and ``avel_weak`` 1,335,246 (the official att_Net,
about 1.34 M); ``escm: {}`` adds VSCG's ESCM on the two 256-d Bi-LSTM streams before the head
(+970,496 in fully mode for ``avel``, +872,192 in weak mode for ``avel_weak``).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import nn

from avloc.models.ave_base import AVEModel, Tensors
from avloc.models.base import AVEInputs
from avloc.models.blocks import (
    ESCM,
    AudioGuidedVisualAttention,
    BiLSTMPair,
    ESCMConfig,
    WeakESCMConfig,
    xavier_,
)
from avloc.models.outputs import AVEOutput
from avloc.registry import MODELS


@MODELS.register("avel")
class AVEL(AVEModel):
    """Fully supervised AVEL (A+V-att).

    audio (B,T,Da), visual (B,T,H,W,Dv) -> AGVA (B,T,Dv) -> Bi-LSTMs: audio Da -> 2*hidden, visual
    Dv -> 2*hidden -> [optional ESCM] -> concat (B,T,4*hidden) -> ReLU -> Linear(4*hidden, head_hidden)
    -> ReLU -> Linear(head_hidden, C) = ``class_logits`` (B,T,C). Prediction: per-segment argmax.
    Also returns ``attention`` (B,T,R), the AGVA weights over the regions.
    """


    @dataclass
    class Config(AVEInputs):
        att_hidden: int = 512  # AGVA hidden width
        hidden: int = 128  # Bi-LSTM hidden size per direction (each stream is 2 * hidden wide)
        head_hidden: int = 64  # width of the per-segment head's hidden layer
        escm: ESCMConfig | None = None  # VSCG's ESCM on the two Bi-LSTM streams before the head; None: none

    escm_mode = "fully"

    def __init__(self, cfg: Config) -> None:
        super().__init__()
        self.cfg = cfg
        self.attention = AudioGuidedVisualAttention(
            cfg.audio_dim, cfg.visual_dim, cfg.att_hidden, cfg.att_regions
        )
        self.lstms = BiLSTMPair(cfg.audio_dim, cfg.visual_dim, cfg.hidden)
        stream = 2 * cfg.hidden
        self.escm = ESCM.from_config(stream, cfg.escm, self.escm_mode)
        self.fc1 = nn.Linear(2 * stream, cfg.head_hidden)
        self.fc2 = nn.Linear(cfg.head_hidden, cfg.num_classes)
        xavier_(self.fc1, self.fc2)

    def encode(self, audio: torch.Tensor, visual: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, Tensors]:
        attended, att = self.attention(audio, visual)  # (B, T, Dv), (B, T, R)
        audio, visual = self.lstms(audio, attended)  # (B, T, 2*hidden) each
        return audio, visual, {"attention": att}

    def outputs(self, audio: torch.Tensor, visual: torch.Tensor, extras: Tensors) -> AVEOutput:
        hid = F.relu(self.fc1(F.relu(torch.cat([audio, visual], dim=-1))))  # (B, T, head_hidden)
        return AVEOutput(class_logits=self.fc2(hid), **extras)  # (B, T, C)


@MODELS.register("avel_weak")
class AVELWeak(AVEL):
    """Weakly supervised AVEL (W-A+V-att): the same network; the per-segment logits are max-pooled over
    time into ``video_logits`` (B, C) (the official then applies softmax) and trained against the
    video-level label. Test-time prediction stays the per-segment argmax."""

    @dataclass
    class Config(AVEL.Config):
        escm: WeakESCMConfig | None = None  # VSCG's weak-mode ESCM; None: none

    escm_mode = "weak"

    def outputs(self, audio: torch.Tensor, visual: torch.Tensor, extras: Tensors) -> AVEOutput:
        out = super().outputs(audio, visual, extras)
        out.video_logits = out.class_logits.amax(dim=1)  # (B, C)
        return out
