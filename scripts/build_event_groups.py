"""Build ``src/avloc/inference/event_groups.tsv``: the 1,000 ILSVRC-2012 classes grouped into sound-making events.

Usage: python scripts/build_event_groups.py CATEGORIES [--wordnet DIR] [--out FILE | --garments]

CATEGORIES is SoundNet's ``categories_imagenet.txt`` (``wnid name, synonyms`` per line, ILSVRC order, the order of
SoundNet's conv8 and of EfficientNet's classifier). DIR holds the WordNet 3.0 database (Debian: ``apt-get install
wordnet-base``, files in /usr/share/wordnet); ILSVRC's wnids are WordNet 3.0 noun offsets, so a class belongs to
the first group below whose anchor synset is among its hypernyms. Two context groups (gym, speaker) and a few
vehicle parts are listed by class name instead: WordNet has no synset for "things seen where a barbell clanks".
The script asserts that the animal groups tile indices 0-397 exactly and that every listed name exists.

``--garments`` prints instead the ``imagenet`` cell of the ``speaker`` row of ``src/avloc/inference/ucs_groups.tsv``:
the ILSVRC classes that are things people wear (hyponyms of WordNet's clothing.n.01), the picture side of a
talking person in a vocabulary that hears voices (ImageNet has no person class, but names what a person on
screen wears). The diaper is left out: a baby wears it, and a baby cries rather than talks (the composed class
map has it stand in for a crying baby, the ``baby`` group's sound).
"""

from __future__ import annotations

import argparse
from pathlib import Path

# group, kind, anchor synsets (WordNet 3.0 noun offsets), first match wins: order matters (dog before canine,
# domestic cat before feline, rail before self-propelled vehicle, bicycle before wheeled vehicle ...).
GROUPS = (
    ("dog", "animal", ("02084071",)),  # dog, domestic dog
    ("wild_canid", "animal", ("02083346", "02114100")),  # canine; hyena (a feliform in WordNet, a canid to the ear)
    ("cat", "animal", ("02121808",)),  # domestic cat
    ("big_cat", "animal", ("02120997",)),  # feline (wildcats, lynx, big cats)
    ("bird", "animal", ("01503061",)),
    ("other_mammal", "animal", ("01861778",)),
    ("reptile_amphib", "animal", ("01661091", "01627424")),  # reptile, amphibian
    ("fish", "animal", ("02512053",)),
    ("invertebrate", "animal", ("01905661",)),
    ("rail", "vehicle", ("04468005", "03684823", "02959942", "04335435")),  # train, locomotive, railcar, streetcar
    ("aircraft", "vehicle", ("02686568", "04264914")),  # aircraft; spacecraft (the space shuttle)
    ("watercraft", "vehicle", ("04530566",)),  # vessel, watercraft
    ("bicycle", "vehicle", ("02834778", "04482393", "04509417")),  # bicycle, tricycle, unicycle
    ("road_vehicle", "vehicle", ("03791235", "04170037", "04464852", "02924116")),  # motor / self-propelled /
    # tracked vehicle, bus (a "public transport" in WordNet, not a motor vehicle)
    ("instrument", "instrument", ("03800933",)),  # musical instrument
)
# Classes named here join a group whatever WordNet says (parts one sees on a car, the wing of a plane, the
# context groups).
NAMED = {
    "road_vehicle": ("car mirror", "car wheel", "disk brake", "grille", "harvester", "thresher", "snowplow",
                     "motor scooter"),
    "aircraft": ("wing",),
    "watercraft": ("paddlewheel",),
    "gym": ("balance beam", "barbell", "dumbbell", "horizontal bar", "parallel bars"),
    "speaker": ("bow tie", "microphone", "stage", "suit", "Windsor tie"),
}
NAMED_KIND = {"gym": "context", "speaker": "context", "other": "other"}
# Silent things WordNet files under a group: a wreck is a vessel, a balloon an aircraft; neither is heard.
NAMED["other"] = ("wreck", "balloon")
CLOTHING = "03051540"  # clothing, article of clothing, wear: the anchor of --garments
NOT_WORN_BY_A_SPEAKER = ("diaper",)
# AVE's 28 classes, for the ILSVRC classes that are one of them (an event "Bark" is what a dog does).
AVE = {
    "Bark": "group:dog",
    "Cat": "group:cat",
    "Fixed-wing aircraft, airplane": ("airliner", "warplane", "wing"),
    "Race car, auto racing": ("racer", "sports car", "go-kart"),
    "Truck": ("trailer truck", "pickup", "garbage truck", "fire engine", "tow truck", "moving van", "police van"),
    "Bus": ("school bus", "trolleybus", "minibus"),
    "Motorcycle": ("moped", "motor scooter"),
    "Train horn": "group:rail",
    "Violin, fiddle": ("violin",),
    "Flute": ("flute",),
    "Banjo": ("banjo",),
    "Acoustic guitar": ("acoustic guitar",),
    "Accordion": ("accordion",),
    "Chainsaw": ("chain saw",),
    "Toilet flush": ("toilet seat",),
    "Frying (food)": ("frying pan", "wok"),
    "Clock": ("analog clock", "wall clock", "digital clock"),
    "Church bell": ("bell cote", "church"),
    "Horse": ("sorrel",),
    "Rodents, rats, mice": ("hamster", "guinea pig", "fox squirrel", "marmot", "beaver", "porcupine"),
}


def read_categories(path: Path) -> list[tuple[str, str]]:
    """``(wnid, first name)`` per ILSVRC index."""
    rows = []
    for line in path.read_text().splitlines():
        wnid, names = line.split(" ", 1)
        rows.append((wnid, names.split(",")[0].strip()))
    if len(rows) != 1000:
        raise SystemExit(f"{path}: {len(rows)} classes, expected 1000")
    return rows


def read_hypernyms(wordnet: Path) -> dict[str, list[str]]:
    """Noun offset -> its hypernym offsets (``@`` and instance ``@i`` pointers) from ``data.noun``."""
    parents: dict[str, list[str]] = {}
    for line in (wordnet / "data.noun").read_text(encoding="latin1").splitlines():
        if line.startswith(" "):
            continue  # licence header
        fields = line.split(" ")
        n_words = int(fields[3], 16)
        at = 4 + 2 * n_words
        n_ptrs = int(fields[at])
        ptrs = fields[at + 1 : at + 1 + 4 * n_ptrs]
        parents[fields[0]] = [ptrs[i + 1] for i in range(0, len(ptrs), 4) if ptrs[i] in ("@", "@i")]
    return parents


def ancestors(offset: str, parents: dict[str, list[str]]) -> set[str]:
    seen, todo = set(), [offset]
    while todo:
        node = todo.pop()
        if node not in seen:
            seen.add(node)
            todo.extend(parents.get(node, ()))
    return seen


def build(categories: Path, wordnet: Path) -> list[tuple[int, str, str, str, str, str]]:
    rows = read_categories(categories)
    parents = read_hypernyms(wordnet)
    by_name = {name: i for i, (_, name) in enumerate(rows)}
    missing = [n for names in NAMED.values() for n in names if n not in by_name]
    missing += [n for v in AVE.values() if not isinstance(v, str) for n in v if n not in by_name]
    if missing:
        raise SystemExit(f"{categories}: no class named {missing}")
    group = ["other"] * 1000
    kind = ["other"] * 1000
    for i, (wnid, _) in enumerate(rows):
        up = ancestors(wnid[1:], parents)
        for name, k, anchors in GROUPS:
            if up & set(anchors):
                group[i], kind[i] = name, k
                break
    kinds = {name: k for name, k, _ in GROUPS} | NAMED_KIND
    for name, members in NAMED.items():
        for member in members:
            group[by_name[member]], kind[by_name[member]] = name, kinds[name]
    animal = [i for i in range(1000) if kind[i] == "animal"]
    if animal != list(range(398)):
        raise SystemExit(f"animal groups do not tile 0-397: {sorted(set(animal) ^ set(range(398)))[:20]}")
    ave = [""] * 1000
    for label, members in AVE.items():
        idx = ([i for i in range(1000) if group[i] == members[6:]] if isinstance(members, str)
               else [by_name[m] for m in members])
        for i in idx:
            ave[i] = label
    return [(i, rows[i][0], rows[i][1], group[i], kind[i], ave[i]) for i in range(1000)]


def garments(categories: Path, wordnet: Path) -> list[tuple[str, str]]:
    """``(wnid, name)`` of the ILSVRC classes under clothing.n.01, in ILSVRC order, less the diaper."""
    parents = read_hypernyms(wordnet)
    return [(wnid, name) for wnid, name in read_categories(categories)
            if CLOTHING in ancestors(wnid[1:], parents) and name not in NOT_WORN_BY_A_SPEAKER]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("categories", type=Path)
    parser.add_argument("--wordnet", type=Path, default=Path("/usr/share/wordnet"))
    parser.add_argument("--out", type=Path,
                        default=Path(__file__).resolve().parents[1] / "src/avloc/inference/event_groups.tsv")
    parser.add_argument("--garments", action="store_true",
                        help="print the speaker row's imagenet cell for ucs_groups.tsv instead of writing the table")
    args = parser.parse_args()
    if args.garments:
        print("|".join(f"{wnid} {name}" for wnid, name in garments(args.categories, args.wordnet)))
        return
    lines = ["index\twnid\tname\tgroup\tkind\tave_class"]
    lines += ["\t".join(map(str, row)) for row in build(args.categories, args.wordnet)]
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
