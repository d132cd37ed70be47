"""Where the shipped configs live: the repo's ``configs/`` (source checkout) or the copy in the wheel."""

from __future__ import annotations

from pathlib import Path

_PKG = Path(__file__).resolve().parents[1]  # src/avloc (this file is in avloc/tools/)


def configs_dir() -> Path:
    for cand in (_PKG.parents[1] / "configs", _PKG / "configs"):
        if cand.is_dir():
            return cand
    raise FileNotFoundError("avloc's configs/ folder is missing from this installation")


def config_path(name: str | Path) -> Path:
    """A config given as a path that exists, or as a name under configs/ (e.g. ``ave/vscg_fully.yaml``)."""
    p = Path(name)
    if p.is_file():
        return p
    shipped = configs_dir() / p
    if shipped.is_file():
        return shipped
    raise FileNotFoundError(f"config not found: {name} (neither a file nor under {configs_dir()})")
