"""Class names as a person reads them on the page, the timeline, the index and the terminal table.

The event files (events.json, .tsv, .srt) keep the names the detector emits, which ``avloc detect-eval`` and
other tools match on; only what is drawn or shown is translated. The zero-shot event groups have short
identifiers (``other_mammal``, ``reptile_amphib``); AVE and UnAV class names are already readable and pass
through unchanged.
"""

from __future__ import annotations

DISPLAY_NAMES = {
    "other_mammal": "other mammal",
    "reptile_amphib": "reptile or amphibian",
    "invertebrate": "insect or other invertebrate",
    "road_vehicle": "road vehicle",
    "instrument": "musical instrument",
    "watercraft": "boat",
    "wild_canid": "wolf, fox or wild dog",
    "big_cat": "big cat",
    "rail": "train",
    "speaker": "person speaking",  # seen through suit, tie, microphone, stage: ImageNet has no person
    "power_tool": "power tool",
    "gym": "gym equipment",
}


def display_name(label: str) -> str:
    """The readable form of ``label``: the table above, else underscores as spaces."""
    return DISPLAY_NAMES.get(label, label.replace("_", " "))
