"""A sound-event vocabulary that works offline: aiSFX's three UCS Category heads, named.

The aiSFX checkpoint (PyPI ``aisfx``) carries nine classifier heads without class names. Three of them
(``prosfx`` 78, ``soundlyTrain`` 79, ``ucsMixed`` 69 classes) classify UCS v8 Categories (the Universal Category
System of sound-effects libraries: ANIMALS, VEHICLES, WATER, ...). Their class order is the alphabetical list
of the 82 UCS Categories minus the Categories each library lacks; which ones are absent was recovered from
ESC-10 folds 1-2, synthetic probes and cross-head agreement, and checked on folds 3-5 (a random permutation of
the names scores ~1.5 % top-1, the recovered lists 31-43 %; the three-head ensemble 48.8 % strict, 71.8 % top-3
over 82 names). Positions next to an uncertain absent Category may hold a neighbouring name.

Each head is ``512 -> 256 -> ReLU -> 128 -> ReLU -> n`` on the aiSFX embedding; ``UCSHeads`` averages the
three heads' softmax per UCS name (over the heads that have that name) into one (T, 82) distribution.
"""

from __future__ import annotations

from pathlib import Path

import torch
from torch import nn

from avloc.media.weights import WeightsError, load_checkpoint, package_file

UCS_CATEGORIES: tuple[str, ...] = (
    "AIR", "AIRCRAFT", "ALARMS", "AMBIENCE", "ANIMALS", "ARCHIVED", "BEEPS", "BELLS", "BIRDS", "BOATS", "BULLETS",
    "CARTOON", "CERAMICS", "CHAINS", "CHEMICALS", "CLOCKS", "CLOTH", "COMMUNICATIONS", "COMPUTERS", "CREATURES",
    "CROWDS", "DESIGNED", "DESTRUCTION", "DIRT & SAND", "DOORS", "DRAWERS", "ELECTRICITY", "EQUIPMENT",
    "EXPLOSIONS", "FARTS", "FIGHT", "FIRE", "FIREWORKS", "FOLEY", "FOOD & DRINK", "FOOTSTEPS", "GAMES",
    "GEOTHERMAL", "GLASS", "GORE", "GUNS", "HORNS", "HUMAN", "ICE", "LASERS", "LEATHER", "LIQUID & MUD",
    "MACHINES", "MAGIC", "MECHANICAL", "METAL", "MOTORS", "MOVEMENT", "MUSICAL", "NATURAL DISASTER", "OBJECTS",
    "PAPER", "PLASTIC", "RAIN", "ROBOTS", "ROCKS", "ROPE", "RUBBER", "SCIFI", "SNOW", "SPORTS", "SWOOSHES",
    "TOOLS", "TOYS", "TRAINS", "USER INTERFACE", "VEGETATION", "VEHICLES", "VOICES", "WATER", "WEAPONS",
    "WEATHER", "WHISTLES", "WIND", "WINDOWS", "WINGS", "WOOD",
)
# head name -> (index of the head in the checkpoint, UCS Categories its library lacks)
HEADS: dict[str, tuple[int, frozenset[str]]] = {
    "prosfx": (0, frozenset({"ARCHIVED", "CERAMICS", "LIQUID & MUD", "WINDOWS"})),
    "soundlyTrain": (1, frozenset({"ARCHIVED", "FIREWORKS", "GEOTHERMAL"})),
    "ucsMixed": (2, frozenset({"ARCHIVED", "CHEMICALS", "DESTRUCTION", "DIRT & SAND", "FIREWORKS",
                               "LIQUID & MUD", "MAGIC", "NATURAL DISASTER", "ROCKS", "ROPE", "RUBBER",
                               "SNOW", "WINDOWS"})),
}
WINDOW_S = 2.32  # aiSFX's own block (100 mel frames): the window the heads were trained on


def head_classes(head: str) -> list[str]:
    """The class names of one UCS head, in its output order."""
    return [c for c in UCS_CATEGORIES if c not in HEADS[head][1]]


class UCSHeads(nn.Module):
    """aiSFX embeddings (T, 512) -> (T, 82) probabilities over ``UCS_CATEGORIES`` (three-head ensemble)."""

    def __init__(self) -> None:
        super().__init__()
        self.heads = nn.ModuleDict({
            name: nn.Sequential(nn.Linear(512, 256), nn.ReLU(), nn.Linear(256, 128), nn.ReLU(),
                                nn.Linear(128, len(head_classes(name))))
            for name in HEADS})
        cols = {name: torch.tensor([UCS_CATEGORIES.index(c) for c in head_classes(name)]) for name in HEADS}
        for name, idx in cols.items():
            self.register_buffer(f"cols_{name}", idx, persistent=False)
        count = torch.zeros(len(UCS_CATEGORIES))
        for idx in cols.values():
            count[idx] += 1
        self.register_buffer("count", count.clamp(min=1), persistent=False)  # heads that have each name

    @classmethod
    def pretrained(cls, path: str | Path | None = None) -> "UCSHeads":
        """The three heads of the aiSFX checkpoint (``path``, else the one in the ``aisfx`` package)."""
        path = Path(path) if path else package_file("aisfx", "aisfx/models/checkpoint.pth")
        ckpt = load_checkpoint(path)
        state = ckpt[0] if isinstance(ckpt, (tuple, list)) else ckpt
        model = cls()
        own = {}
        for name, (i, _) in HEADS.items():
            for layer in (0, 2, 4):
                for kind in ("weight", "bias"):
                    key = f"fc.{i}.{layer}.{kind}"
                    if key not in state:
                        raise WeightsError(f"{path}: no '{key}' (not the aiSFX checkpoint with UCS heads)")
                    own[f"heads.{name}.{layer}.{kind}"] = state[key]
        model.load_state_dict(own, strict=True)
        return model.eval().requires_grad_(False)

    def forward(self, emb: torch.Tensor) -> torch.Tensor:
        """(T, 512) -> (T, 82): per UCS name, the mean softmax of the heads that have it."""
        out = emb.new_zeros(emb.shape[0], len(UCS_CATEGORIES))  # (T, 82)
        for name, head in self.heads.items():
            out[:, getattr(self, f"cols_{name}")] += head(emb).softmax(-1)  # (T, n_head) into its columns
        return out / self.count
