"""What the zero-shot detector can hear and see: event groups with a sound side and a picture side.

An event group g has a visual membership over the 1,000 ILSVRC-2012 classes (EfficientNet's output) and an
audio membership over the rows of one audio table (``zeroshot_scores``): pv_g, pa_g are the probability mass
of the members, and an audio-visual event needs both (``zeroshot.agreement``). Three vocabularies:

- ``soundnet``: the ImageNet event groups of ``event_groups.tsv``, heard through SoundNet-8's ImageNet head
  (audio members = visual members). The detector as first shipped.
- ``ucs``: the same groups plus eight object groups ImageNet files under "other" (clock, power tool, gun,
  bell, cooking, fire, water, baby), heard through aiSFX's 82 UCS sound Categories.
- ``soundnet_ext``: the ``ucs`` groups heard through SoundNet (separates what the new groups bring from what
  the sound vocabulary brings).

The table ``ucs_groups.tsv`` is the mapping, written by hand with this rule: a group's UCS Categories are those
whose UCS definition names the sound its members make (animals -> ANIMALS, birds incl. fowl -> BIRDS, a
talking person's stand-ins -> VOICES, HUMAN, CROWDS, instruments -> MUSICAL, cars and motorcycles ->
VEHICLES, MOTORS, ...); a group whose members make no sound (fish) has none. ImageNet has no person class,
so the talking person (``speaker``) is seen through what people wear: besides the suit, ties, microphone and
stage of the ImageNet groups, every ILSVRC class under WordNet's clothing.n.01 but the diaper (a baby's:
the ``baby`` group's sound), listed by ``scripts/build_event_groups.py --garments``; the ``soundnet``
vocabulary keeps the first-shipped groups. An added group lists the ILSVRC classes (wnid and name) that are
the sound's source (clock, chain saw, rifle, frying pan) or, where ImageNet has no picture of the source, show where the sound happens (seashore or bathtub for water,
fire screen or candle for fire, crib for a baby): the same stand-in rule as the composed benchmark's class map
``configs/media/esc10_imagenet.json``, so a composed-set gain on those classes is partly by construction.
"""

from __future__ import annotations

import csv
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import torch

from avloc.inference.event_groups import load_event_groups
from avloc.media.ucs_vocab import UCS_CATEGORIES

UCS_TABLE = Path(__file__).with_name("ucs_groups.tsv")
VOCABULARIES = ("soundnet", "ucs", "soundnet_ext")


@dataclass(frozen=True)
class SoundVocabulary:
    """names (G,); visual (1000, G) and audio (A, G) 0/1 memberships; ``audio_table``: the table A indexes."""

    name: str
    names: tuple[str, ...]
    kinds: tuple[str, ...]
    visual: torch.Tensor  # (1000, G)
    audio: torch.Tensor  # (A, G), A = 1000 (soundnet) or 82 (ucs)
    audio_table: str  # "soundnet" or "ucs": the SecondScores table the audio side reads

    def visual_mass(self, probs: torch.Tensor) -> torch.Tensor:
        """(T, 1000) -> (T, G)."""
        return probs.to(self.visual.dtype) @ self.visual

    def audio_mass(self, probs: torch.Tensor) -> torch.Tensor:
        """(T, A) -> (T, G)."""
        return probs.to(self.audio.dtype) @ self.audio

    def wnids(self, group: str) -> set[str]:
        """The ILSVRC wnids whose pictures count as group ``group``."""
        col = self.visual[:, self.names.index(group)].bool().tolist()
        return {w for w, m in zip(_wnids(), col) if m}


@lru_cache(maxsize=None)
def _wnids() -> tuple[str, ...]:
    with open(Path(__file__).with_name("event_groups.tsv"), newline="") as fh:
        return tuple(r["wnid"] for r in csv.DictReader(fh, delimiter="\t"))


@lru_cache(maxsize=None)
def load_vocabulary(name: str = "soundnet", table: Path = UCS_TABLE) -> SoundVocabulary:
    """One of ``VOCABULARIES`` (see the module docstring)."""
    if name not in VOCABULARIES:
        raise ValueError(f"unknown zero-shot vocabulary '{name}'; choose from {', '.join(VOCABULARIES)}")
    base = load_event_groups()
    if name == "soundnet":
        return SoundVocabulary(name, base.names, base.kinds, base.members, base.members, "soundnet")
    with open(table, newline="") as fh:
        rows = list(csv.DictReader(fh, delimiter="\t"))
    wnid_index = {w: i for i, w in enumerate(_wnids())}
    names = tuple(r["group"] for r in rows)
    visual = torch.zeros(1000, len(rows), dtype=torch.float64)
    ucs = torch.zeros(len(UCS_CATEGORIES), len(rows), dtype=torch.float64)
    for j, r in enumerate(rows):
        if r["group"] in base.names:
            visual[:, j] = base.members[:, base.index(r["group"])]
        for item in filter(None, r["imagenet"].split("|")):
            wnid = item.split(" ", 1)[0]
            if wnid not in wnid_index:
                raise ValueError(f"{table}: group '{r['group']}' names unknown ILSVRC wnid '{wnid}'")
            visual[wnid_index[wnid], j] = 1.0
        for cat in filter(None, r["ucs"].split("|")):
            if cat not in UCS_CATEGORIES:
                raise ValueError(f"{table}: group '{r['group']}' names unknown UCS Category '{cat}'")
            ucs[UCS_CATEGORIES.index(cat), j] = 1.0
        if not visual[:, j].any():
            raise ValueError(f"{table}: group '{r['group']}' has no ImageNet class")
    kinds = tuple(r["kind"] for r in rows)
    if name == "ucs":
        return SoundVocabulary(name, names, kinds, visual, ucs, "ucs")
    return SoundVocabulary(name, names, kinds, visual, visual, "soundnet")
