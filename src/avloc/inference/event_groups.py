"""The 1,000 ILSVRC-2012 objects grouped into things that make a sound (dog, bird, road vehicle, instrument, ...).

The table ``event_groups.tsv`` beside this file is built by ``scripts/build_event_groups.py`` from the WordNet 3.0
hierarchy (ILSVRC's wnids are WordNet noun offsets) and is committed, so nothing is looked up at run time. SoundNet's
conv8 and EfficientNet-Lite0's classifier both output the 1,000 classes in this order, which is what makes one
group mass comparable between sound and sight.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

TABLE = Path(__file__).with_name("event_groups.tsv")
EVENT_KINDS = ("animal", "vehicle", "instrument", "context")  # "other" (545 classes) is never an event


@dataclass(frozen=True)
class EventGroups:
    """names: (G,) group names; kinds: (G,) animal/vehicle/instrument/context; members: (1000, G) 0/1."""

    names: tuple[str, ...]
    kinds: tuple[str, ...]
    members: torch.Tensor
    class_names: tuple[str, ...]
    ave_class: tuple[str, ...]

    def mass(self, probs: torch.Tensor) -> torch.Tensor:
        """(T, 1000) class probabilities -> (T, G) probability mass of each group."""
        return probs.to(self.members.dtype) @ self.members  # (T, G)

    def ave_name(self, name: str) -> str:
        """The AVE class every member of group ``name`` maps to (dog -> Bark), else ``name`` itself."""
        col = self.members[:, self.index(name)].bool()
        found = {a for a, m in zip(self.ave_class, col.tolist()) if m}
        return found.pop() if len(found) == 1 and "" not in found else name

    def index(self, name: str) -> int:
        if name not in self.names:
            raise KeyError(f"no event group '{name}'; groups: {', '.join(self.names)}")
        return self.names.index(name)


@lru_cache(maxsize=None)
def load_event_groups(path: Path = TABLE) -> EventGroups:
    """The committed table as an ``EventGroups`` (groups in order of first appearance, ``other`` dropped)."""
    with open(path, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    if [int(r["index"]) for r in rows] != list(range(1000)):
        raise ValueError(f"{path}: expected rows for ILSVRC indices 0..999 in order")
    kind_of = {r["group"]: r["kind"] for r in rows if r["kind"] in EVENT_KINDS}
    names = tuple(sorted(kind_of, key=lambda g: [r["group"] for r in rows].index(g)))
    members = torch.zeros(1000, len(names), dtype=torch.float64)
    col = {g: j for j, g in enumerate(names)}
    idx = [(int(r["index"]), col[r["group"]]) for r in rows if r["group"] in col]
    rows_i, cols_j = zip(*idx)
    members[list(rows_i), list(cols_j)] = 1.0
    return EventGroups(names, tuple(kind_of[g] for g in names), members,
                       tuple(r["name"] for r in rows), tuple(r["ave_class"] for r in rows))
