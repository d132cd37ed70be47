"""The output folder a command writes into (``--out``): checked before anything is made, so that a path that
names a file is one sentence naming it, not an OS error number from deep inside a write."""

from __future__ import annotations

from pathlib import Path


class OutFolderError(ValueError):
    """``--out`` cannot be a folder; the message names the path and the file in the way."""


def check_out_folder(path: str | Path, flag: str = "--out") -> Path:
    """``path`` as a Path when it is a folder or can be made one; else ``OutFolderError`` naming the file that
    stands where the folder (or one of its parents) would be."""
    path = Path(path)
    for p in (path, *path.parents):
        if p.exists() and not p.is_dir():
            where = "" if p == path else f": {p} is a file"
            raise OutFolderError(f"{flag} {path} must be a folder{where or ', but it is a file'}")
        if p.is_dir():
            break
    return path
