"""A run folder belongs to one run: one writer at a time, the data it was trained on, no silent overwrite.

``fit`` opens the folder with :class:`RunLock` (an advisory ``flock`` that the kernel drops when its process
dies, so a ``kill -9`` never blocks the resume), refuses to start over another run's files unless asked to
overwrite, records a cheap fingerprint of the data folder in ``data.json`` and refuses a resume on data that
differs, repairs a ``metrics.jsonl`` whose last line a kill or a full disk cut short, and removes the temp
files of checkpoint writes that a kill interrupted.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import os
import socket
from pathlib import Path
from typing import Any

from avloc.formats.atomic import write_text_atomic
from avloc.formats.model_record import MODEL_RECORD
from avloc.out_folder import OutFolderError, check_out_folder
from avloc.registry import ConfigError

try:
    import fcntl
except ImportError:  # Windows: no advisory locks; one writer per folder is then the user's job
    fcntl = None  # type: ignore[assignment]

logger = logging.getLogger(__name__)

LOCK_NAME = ".lock"
DATA_RECORD = "data.json"  # what the run was trained on: the data folder and its fingerprint
# Files a run writes; any of them in a folder means the folder holds a run.
RUN_FILES = ("config.yaml", DATA_RECORD, MODEL_RECORD, "metrics.jsonl", "last.pt", "best.pt", "report.json")
RUN_PATTERNS = ("predictions_*.json",)
HASHED_SUFFIXES = {".txt", ".json", ".csv", ".tsv", ".yaml", ".yml", ".lst"}  # annotations and split lists
HASHED_H5_BYTES = 1 << 20  # h5 files up to this size (split files) are hashed whole; bigger ones by shape


class RunFolderError(ConfigError):
    """The run folder cannot be used as asked; the message names the folder, the file and what to do."""


class RunLock:
    """Exclusive advisory lock on ``run_dir/.lock`` for the lifetime of a run (a context manager).

    ``flock`` locks belong to the open file, so a killed process leaves at most an unlocked ``.lock`` file
    behind, which the next run takes over. The lock file records the holder's pid and host for the message
    a second writer gets. Without ``fcntl`` (Windows) the lock is a no-op.
    """

    def __init__(self, run_dir: str | Path) -> None:
        self.run_dir = Path(run_dir)
        self.path = self.run_dir / LOCK_NAME
        self._fd: int | None = None
        self.created_dir = False

    def __enter__(self) -> RunLock:
        try:
            check_out_folder(self.run_dir)
        except OutFolderError as exc:
            raise RunFolderError(str(exc)) from None
        try:
            if not self.run_dir.is_dir():
                self.run_dir.mkdir(parents=True)
                self.created_dir = True
            if fcntl is not None:
                self._acquire()
        except OSError as exc:
            raise RunFolderError(f"cannot use run folder {self.run_dir}: {exc.strerror or exc}") from exc
        return self

    def _acquire(self) -> None:
        while True:
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except OSError as exc:
                os.close(fd)
                if exc.errno not in (errno.EAGAIN, errno.EACCES):
                    raise
                holder = self.path.read_text().strip() if self.path.is_file() else "unknown"
                raise RunFolderError(
                    f"{self.run_dir} is in use by another avloc run ({holder}); wait for it to end or choose "
                    "another --out"
                ) from None
            try:  # the holder we waited on may have unlinked the file before we locked it: lock the new one
                same = os.fstat(fd).st_ino == os.stat(self.path).st_ino
            except FileNotFoundError:
                same = False
            if same:
                break
            os.close(fd)
        os.ftruncate(fd, 0)
        os.write(fd, f"pid {os.getpid()} on {socket.gethostname()}\n".encode())
        self._fd = fd

    def __exit__(self, *exc: object) -> None:
        if self._fd is not None:
            self.path.unlink(missing_ok=True)  # unlink while locked: nobody can lock this inode after us
            os.close(self._fd)
            self._fd = None
        if self.created_dir and self.run_dir.is_dir() and not any(self.run_dir.iterdir()):
            self.run_dir.rmdir()  # a run that never started leaves no empty folder behind


def run_files(run_dir: Path) -> list[str]:
    """Names of the run artefacts in ``run_dir`` (sorted), the files a new run would replace."""
    if not run_dir.is_dir():
        return []
    found = {name for name in RUN_FILES if (run_dir / name).exists()}
    for pattern in RUN_PATTERNS:
        found.update(p.name for p in run_dir.glob(pattern))
    return sorted(found)


def check_new_run(run_dir: Path, overwrite: bool) -> list[str]:
    """Before a fresh start: refuse a folder that holds another run's files, naming them, unless
    ``overwrite`` (or the run there never trained). Returns the files to remove once the new run starts."""
    found = run_files(run_dir)
    if found and not overwrite and never_trained(run_dir, found):
        logger.warning("%s: replacing %s of a run that stopped before its first epoch", run_dir, ", ".join(found))
        return found
    if found and not overwrite:
        hint = "--resume to continue it or " if "last.pt" in found else ""
        raise RunFolderError(
            f"{run_dir} already holds a run ({', '.join(found)}); pass {hint}--overwrite to replace it, "
            "or choose another --out"
        )
    return found


def never_trained(run_dir: Path, found: list[str]) -> bool:
    """True when ``run_dir`` holds only what a run writes before its first epoch (``config.yaml``,
    ``data.json``, ``model.json``, an empty ``metrics.jsonl``): a command that failed there (a bad batch size) left no result,
    so its corrected form is not "another run" and needs no ``--overwrite``."""
    if not set(found) <= {"config.yaml", DATA_RECORD, MODEL_RECORD, "metrics.jsonl"}:
        return False
    metrics = run_dir / "metrics.jsonl"
    return not metrics.exists() or not metrics.read_text(encoding="utf-8", errors="replace").strip()


def remove_run_files(run_dir: Path, names: list[str]) -> None:
    for name in names:
        (run_dir / name).unlink(missing_ok=True)


def clean_stale_temps(run_dir: Path) -> None:
    """Remove the temp files (``.<name>.*``) of atomic writes that a kill interrupted. Only called while
    holding the run's lock, so no live writer owns them."""
    names = (*RUN_FILES, "predictions_")
    for path in sorted(run_dir.glob(".*")):
        if path.is_file() and path.name != LOCK_NAME and any(path.name.startswith(f".{n}") for n in names):
            size = path.stat().st_size
            path.unlink()
            logger.warning("removed %s: the temp file (%.1f MB) of a write that was interrupted", path, size / 1e6)


# ---------------------------------------------------------------------------------------- data fingerprint
def _h5_shapes(path: Path) -> dict[str, list[int]]:
    import h5py

    shapes: dict[str, list[int]] = {}
    try:
        with h5py.File(path, "r") as fh:
            fh.visititems(lambda name, obj: shapes.__setitem__(name, list(obj.shape))
                          if isinstance(obj, h5py.Dataset) else None)
    except OSError:
        return {"<unreadable>": []}  # the loader names the problem; the size still fingerprints it
    return shapes


def _npy_shape(path: Path) -> list[int]:
    import numpy as np

    try:
        return list(np.load(path, mmap_mode="r", allow_pickle=False).shape)  # maps the file, reads the header
    except (OSError, ValueError):
        return [-1]


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _file_record(path: Path) -> dict[str, Any]:
    """Size always; the content digest of annotation and split files; shapes of h5 and npy arrays."""
    size = path.stat().st_size
    rec: dict[str, Any] = {"size": size}
    suffix = path.suffix.lower()
    if suffix in (".h5", ".hdf5"):
        rec["shapes"] = _h5_shapes(path)
        if size <= HASHED_H5_BYTES:
            rec["sha256"] = _sha256(path)
    elif suffix == ".npy":
        rec["shape"] = _npy_shape(path)
    elif suffix in HASHED_SUFFIXES:
        rec["sha256"] = _sha256(path)
    return rec


def _is_run_folder(path: Path) -> bool:
    return any((path / name).exists() for name in (DATA_RECORD, "last.pt", LOCK_NAME))


def data_fingerprint(root: str | Path, exclude: Path | None = None) -> dict[str, Any]:
    """A cheap description of the data folder ``root``: every file's relative name and size, the shapes of
    its h5/npy arrays and the full content of its annotation and split files (features are not hashed: a
    7.7 GB file would take longer than the run). Hidden files, run folders inside the data folder (they hold
    ``data.json``, ``last.pt`` or ``.lock``) and ``exclude`` are left out."""
    root = Path(root).resolve()
    skip = exclude.resolve() if exclude is not None else None
    files: dict[str, dict[str, Any]] = {}
    for dirpath, dirnames, filenames in os.walk(root, followlinks=True):
        here = Path(dirpath)
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and (here / d).resolve() != skip
                             and not _is_run_folder(here / d))
        for name in sorted(filenames):
            if not name.startswith(".") and (here / name).is_file():
                files[(here / name).relative_to(root).as_posix()] = _file_record(here / name)
    digest = hashlib.sha256(json.dumps(files, sort_keys=True).encode()).hexdigest()
    return {"folder": str(root), "digest": digest, "files": files}


def fingerprint_changes(old: dict[str, Any], new: dict[str, Any], limit: int = 5) -> list[str]:
    """What differs between two fingerprints, in words (at most ``limit`` items, then a count)."""
    a, b = old.get("files", {}), new.get("files", {})
    changes = [f"{name} is missing" for name in sorted(set(a) - set(b))]
    changes += [f"{name} is new" for name in sorted(set(b) - set(a))]
    for name in sorted(set(a) & set(b)):
        ra, rb = a[name], b[name]
        for key in ("shapes", "shape"):
            if ra.get(key) != rb.get(key):
                changes.append(f"{name}: shape {ra.get(key)} -> {rb.get(key)}")
                break
        else:
            if ra.get("sha256") != rb.get("sha256"):
                changes.append(f"{name}: content changed")
            elif ra["size"] != rb["size"]:
                changes.append(f"{name}: size {ra['size']} -> {rb['size']} bytes")
    if len(changes) > limit:
        changes = [*changes[:limit], f"{len(changes) - limit} more"]
    return changes


def record_data(run_dir: Path, fingerprint: dict[str, Any]) -> None:
    write_text_atomic(run_dir / DATA_RECORD, json.dumps(fingerprint, indent=1) + "\n")


def recorded_data_folder(run_dir: Path) -> Path:
    """The data folder ``run_dir`` was trained on, as its ``data.json`` records it (``avloc eval`` without
    ``--data``); an error naming the file when there is no record or the folder is gone."""
    path = run_dir / DATA_RECORD
    try:
        folder = json.loads(path.read_text()).get("folder") if path.is_file() else None
    except (OSError, json.JSONDecodeError) as exc:
        raise RunFolderError(f"{path}: unreadable ({exc}); pass --data") from None
    if not folder:
        raise RunFolderError(f"{run_dir}: no {DATA_RECORD} records the data folder; pass --data")
    if not Path(folder).is_dir():
        raise RunFolderError(f"{path}: the recorded data folder {folder} is gone; pass --data")
    return Path(folder)


def check_same_data(run_dir: Path, fingerprint: dict[str, Any]) -> None:
    """On resume: refuse data that differs from what the run recorded, saying what changed."""
    path = run_dir / DATA_RECORD
    if not path.is_file():
        return  # a run from before data records were kept: nothing to compare against
    try:
        saved = json.loads(path.read_text())
    except json.JSONDecodeError as exc:
        raise RunFolderError(f"{path}: not valid JSON ({exc})") from exc
    if saved.get("digest") == fingerprint["digest"]:
        return
    moved = f" (recorded folder {saved.get('folder')}, now {fingerprint['folder']})" \
        if saved.get("folder") != fingerprint["folder"] else ""
    raise RunFolderError(
        f"cannot resume {run_dir}: the data differs from what it was trained on{moved}: "
        f"{'; '.join(fingerprint_changes(saved, fingerprint))}. Resume with the original --data, or start a "
        "new run"
    )


# ---------------------------------------------------------------------------------------- metrics log
def repair_metrics(path: Path, epoch: int) -> None:
    """Keep the rows of ``metrics.jsonl`` up to the checkpoint's ``epoch``. A partial last line (a kill or
    a full disk mid-write; it is always after the last checkpoint) is dropped with a note; an unreadable
    line elsewhere is an error naming the file and line."""
    if not path.exists():
        return
    lines = path.read_text(encoding="utf-8", errors="replace").split("\n")
    partial = lines.pop()  # text after the last newline: "" when the file ends cleanly
    rows = []
    for lineno, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            rows.append((json.loads(line), line))
        except json.JSONDecodeError:
            if lineno == len(lines) and not partial:
                partial = line
                break
            raise RunFolderError(f"{path}:{lineno}: not a JSON row ({line[:60]!r})") from None
    if partial.strip():
        logger.warning("%s: dropped a partial last line (%d characters; a write was cut short)", path, len(partial))
    keep = [line for row, line in rows if row.get("epoch", 0) <= epoch]
    if partial.strip() or len(keep) < len(rows):
        write_text_atomic(path, "".join(line + "\n" for line in keep))


def append_metrics(path: Path, row: dict[str, Any]) -> None:
    """Append one JSON row; a failed write (a full disk) names the file."""
    try:
        with open(path, "a", encoding="utf-8") as fh:
            fh.write(json.dumps(row) + "\n")
    except OSError as exc:
        raise OSError(exc.errno, exc.strerror, str(path)) from exc
