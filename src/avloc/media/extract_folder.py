"""``extract_videos``: many video files into one feature folder, resumable and atomic per video.

Each video is written atomically (tmp + ``os.replace``) and is the unit of resumption; the AVE h5 pair is
assembled once at the end from the per-video parts, and ``features.json`` records what made the folder. Under
``torchrun`` the inputs are split over ranks and rank 0 assembles after a barrier.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Iterable

import numpy as np

from avloc.data.ave_labels import AVE_CLASSES
from avloc.formats.feature_sidecar import META_FILE
from avloc.media.ave_layout import (
    CLASSES_FILE, annotation_order, copy_label_files, folder_classes, write_folder_annotations, write_splits)
from avloc.out_folder import check_out_folder
from avloc.media.decode import MediaError
from avloc.media.extract import AVE_SEGMENTS, FEATURE_DIR, ExtractConfig, Extractor, FeatureMeta, read_feature_meta
from avloc.media.llp_layout import LABEL_FILES, llp_file_ids, llp_streams, make_llp_dirs

log = logging.getLogger(__name__)

VIDEO_EXTENSIONS = {".mp4", ".mkv", ".webm", ".avi", ".mov", ".flv", ".m4v", ".mpg", ".mpeg", ".ts", ".3gp",
                    ".ogv", ".wmv"}
PARTS_DIR = ".parts"  # per-video results: the resumable unit; the AVE h5 files are assembled from them
H5_KEY = "avadataset"
FAILED_SUFFIX = ".failed.json"  # in PARTS_DIR: why a video has no features (read when the folder is assembled)


# ---------------------------------------------------------------------------------------------- inputs
def collect_inputs(items: Iterable[str | Path]) -> list[Path]:
    """Files, folders (searched recursively for video extensions) and list files (one path per line)."""
    out: list[Path] = []
    for item in items:
        p = Path(item)
        if p.is_dir():
            out += sorted(f for f in p.rglob("*") if f.is_file() and f.suffix.lower() in VIDEO_EXTENSIONS)
        elif p.suffix.lower() in (".txt", ".lst", ".list") and p.is_file():
            for line in p.read_text().splitlines():
                line = line.strip()
                if line and not line.startswith("#"):
                    q = Path(line)
                    out.append(q if q.is_absolute() else p.parent / q)
        else:
            out.append(p)  # a missing file is reported per video, not here
    return out


def video_ids(paths: list[Path]) -> list[str]:
    """The id of each input (its file name without extension); two inputs with one id are an error."""
    ids = [p.stem for p in paths]
    seen: dict[str, Path] = {}
    for vid, p in zip(ids, paths):
        if vid in seen:
            raise ValueError(f"two inputs share the video id '{vid}': {seen[vid]} and {p}")
        seen[vid] = p
    return ids


# ---------------------------------------------------------------------------------------------- writing
def _atomic_save(path: Path, write: Any) -> None:
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    write(tmp)
    os.replace(tmp, path)


def _save_npy(path: Path, arr: np.ndarray) -> None:
    def write(tmp: Path) -> None:
        with open(tmp, "wb") as fh:
            np.save(fh, arr)

    _atomic_save(path, write)


def _save_json(path: Path, obj: Any) -> None:
    _atomic_save(path, lambda tmp: tmp.write_text(json.dumps(obj, indent=1)))


@dataclass
class Summary:
    """What a run did; ``exit_status`` is 0 when every input was extracted (flags allowed), else 1."""

    extracted: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)  # already extracted (resumed)
    failed: dict[str, str] = field(default_factory=dict)  # path -> reason
    flagged: dict[str, list[str]] = field(default_factory=dict)
    seconds: float = 0.0  # of video used in this run (AVE: at most the first 10 s of a clip)
    written: list[str] = field(default_factory=list)  # label files written beside the features (AVE)
    needs: list[str] = field(default_factory=list)  # label files the user must still add (LLP's AVVP CSVs)
    wall: float = 0.0

    @property
    def exit_status(self) -> int:
        return 1 if self.failed else 0

    def text(self) -> str:
        lines = [f"extracted {len(self.extracted)}, already done {len(self.skipped)}, failed {len(self.failed)}"
                 f"; {self.seconds:.1f} s of video in {self.wall:.1f} s"]
        lines += [f"  FAILED {p}: {r}" for p, r in self.failed.items()]
        lines += [f"  flagged {v}: {', '.join(f)}" for v, f in self.flagged.items()]
        if self.written:
            lines.append(f"  wrote {', '.join(self.written)}: avloc train --data reads this folder as it is")
        if self.needs:
            lines.append(f"  add the AVVP label files {', '.join(self.needs)} (filenames: the clips' names) "
                         "to the folder before avloc train --data reads it")
        return "\n".join(lines)


RUNTIME_ONLY = ("device", "batch")  # ExtractConfig fields that do not change the features


def _refuse_other_recipe(out: Path, cfg: ExtractConfig) -> None:
    """A folder already holding features made another way (another backbone, layer or grid) is never mixed into.

    A folder written before the audio layer was recorded reads as the layer of that time (soundnet8: conv7), so
    resuming it with today's default layer is refused here rather than silently mixing two layers."""
    if not (out / META_FILE).is_file():
        return
    made = read_feature_meta(out).config
    diff = [f"{k}={getattr(made, k)!r} (asked: {getattr(cfg, k)!r})" for k in asdict(cfg)
            if k not in RUNTIME_ONLY and getattr(made, k) != getattr(cfg, k)]
    if diff:
        raise ValueError(f"{out / META_FILE}: this folder holds features made with {', '.join(diff)}; "
                         "extract into a new folder or ask for the same recipe")


def _rank_world() -> tuple[int, int]:
    return int(os.environ.get("RANK", 0)), int(os.environ.get("WORLD_SIZE", 1))


def extract_videos(inputs: Iterable[str | Path], out: str | Path, cfg: ExtractConfig | None = None,
                   annotations: str | Path | None = None, progress: bool = True,
                   extractor: Extractor | None = None, classes: str | Path | None = None,
                   class_from_folder: bool = False, split: tuple[float, float, float] = (0.8, 0.1, 0.1),
                   seed: int = 0) -> Summary:
    """Extract every input into ``out`` (resumable, atomic per video, sharded over torchrun ranks).

    AVE layout: the labels are ``annotations`` (an Annotations.txt, its class list ``classes`` when not AVE's)
    or the clips' folders (``class_from_folder``; see :mod:`avloc.media.ave_layout`); either way the label
    files and, when the folder has none, a ``split`` of the rows (seeded) are written beside the features."""
    cfg = cfg or ExtractConfig()
    if (annotations is not None or class_from_folder or classes is not None) and cfg.format != "ave":
        raise ValueError("--annotations, --classes and --class-from-folder are for --format ave")
    if annotations is not None and class_from_folder:
        raise ValueError("labels come from --annotations or from --class-from-folder, not both")
    if classes is not None and annotations is None:
        raise ValueError("--classes names the class list of --annotations; pass both")
    out = check_out_folder(out)
    _refuse_other_recipe(out, cfg)
    parts = out / PARTS_DIR
    parts.mkdir(parents=True, exist_ok=True)
    if cfg.format == "unav":
        (out / FEATURE_DIR).mkdir(exist_ok=True)
    paths = collect_inputs(inputs)
    ids = video_ids(paths)
    if cfg.format == "llp":
        file_id = dict(zip(ids, llp_file_ids(ids)))
        make_llp_dirs(out)
    order = ids
    summary = Summary()
    category = None
    if class_from_folder:
        folder_cls, category = folder_classes(paths)
    if annotations is not None:
        order, category = annotation_order(Path(annotations), Path(classes) if classes else None)
        known = set(order)
        for vid, p in zip(ids, paths):
            if vid not in known:
                summary.failed[str(p)] = f"video id '{vid}' is not in {annotations}"
        keep = [i for i, vid in enumerate(ids) if vid in known]
        paths, ids = [paths[i] for i in keep], [ids[i] for i in keep]
    rank, world = _rank_world()
    mine = list(range(rank, len(paths), world))
    ex = extractor if extractor is not None and extractor.cfg == cfg else Extractor(cfg)
    meta = ex.meta()
    if classes is not None or (class_from_folder and folder_cls != AVE_CLASSES):
        meta.classes_file = CLASSES_FILE
    start = time.perf_counter()
    bar = _progress(len(mine), progress and rank == 0)
    for i in mine:
        path, vid = paths[i], ids[i]
        done = parts / f"{vid}.json"
        if done.is_file():
            summary.skipped.append(vid)
            bar.update(1)
            continue
        try:
            audio, visual, seconds, flags = ex.video(path)
        except (MediaError, OSError, RuntimeError, ValueError) as exc:
            reason = exc.reason if isinstance(exc, MediaError) else f"{type(exc).__name__}: {exc}"
            summary.failed[str(path)] = reason
            _save_json(parts / f"{vid}{FAILED_SUFFIX}", {"path": str(path), "reason": reason})  # for _assemble
            log.info("skipped %s: %s", path, reason)  # the summary names it once, at the end
            bar.update(1)
            continue
        (parts / f"{vid}{FAILED_SUFFIX}").unlink(missing_ok=True)  # an earlier failure, fixed since
        if cfg.format == "ave":
            _save_npy(parts / f"{vid}.audio.npy", audio.astype(np.float32))
            _save_npy(parts / f"{vid}.visual.npy", visual.astype(np.float32))
        elif cfg.format == "llp":
            for folder, arr in llp_streams(audio, visual).items():
                _save_npy(out / folder / f"{file_id[vid]}.npy", arr)
        else:
            _save_npy(out / FEATURE_DIR / f"{vid}_{cfg.visual}.npy", visual.astype(np.float32))
            _save_npy(out / FEATURE_DIR / f"{vid}_{cfg.audio}.npy", audio.astype(np.float32))
        record = {"path": str(path), "seconds": seconds, "steps": int(audio.shape[0]), "flags": flags}
        _save_json(done, record)  # written last: the video counts as done only once its arrays are in place
        summary.extracted.append(vid)
        summary.seconds += min(seconds, AVE_SEGMENTS) if cfg.format != "unav" else seconds  # what was used
        if flags:
            summary.flagged[vid] = flags
        bar.update(1)
        elapsed = max(time.perf_counter() - start, 1e-9)
        bar.set_postfix_str(f"{len(summary.extracted) / elapsed:.2f} videos/s, "
                            f"{summary.seconds / elapsed:.1f} video-s/s")
    bar.close()
    _barrier(world)
    meta.engines = ex.meta().engines  # resolved now that the networks have run
    if not summary.extracted and (out / META_FILE).is_file():  # a re-run that made nothing keeps the record
        meta.engines = json.loads((out / META_FILE).read_text()).get("engines", meta.engines)
    if rank == 0:
        reported = {Path(p).stem for p in summary.failed}
        for vid in _assemble(out, order, meta):
            if vid not in reported:
                summary.failed[vid] = "no features (not among the inputs, or failed on another rank)"
        if category is not None:  # the label files the h5 rows follow, and a split when there is none
            seconds = {v: float(r["seconds"]) for v, r in meta.videos.items()}
            summary.written = (write_folder_annotations(out, order, folder_cls, category, seconds)
                               if class_from_folder else copy_label_files(out, Path(annotations),
                                                                          Path(classes) if classes else None))
            summary.written += write_splits(out, category, split, seed)
        if cfg.format == "llp":
            summary.needs = [f for f in LABEL_FILES if not (out / f).is_file()]

    summary.wall = time.perf_counter() - start
    return summary


def _progress(total: int, enabled: bool):  # noqa: ANN202
    from tqdm import tqdm

    return tqdm(total=total, unit="video", disable=not enabled, dynamic_ncols=True)


def _barrier(world: int) -> None:
    """Wait for every rank's videos before assembling (torchrun; a long timeout: ranks finish far apart)."""
    if world <= 1:
        return
    import datetime

    import torch.distributed as dist

    if not dist.is_initialized():
        dist.init_process_group("gloo", timeout=datetime.timedelta(days=7))
    dist.barrier()


def _assemble(out: Path, order: list[str], meta: FeatureMeta) -> list[str]:
    """Write ``features.json`` (and for AVE the two h5 files, rows in ``order``); return ids without features."""
    parts = out / PARTS_DIR
    records = {}
    for vid in order:
        f = parts / f"{vid}.json"
        if f.is_file():
            records[vid] = json.loads(f.read_text())
    missing = [vid for vid in order if vid not in records]
    ave = meta.config.format == "ave"
    meta.videos = {vid: {**records[vid], **({"row": row} if ave else {})}
                   for row, vid in enumerate(order) if vid in records}
    meta.failed = [{**({"row": row} if ave else {}), "id": vid, **_failure(parts, vid)}
                   for row, vid in enumerate(order) if vid not in records]
    if ave:
        _write_ave_h5(out, order, records, meta)
    _save_json(out / META_FILE, meta.to_json())
    return missing


def _failure(parts: Path, vid: str) -> dict[str, str]:
    """Why ``vid`` has no features: the reason its extraction recorded, else that it was never extracted."""
    f = parts / f"{vid}{FAILED_SUFFIX}"
    if f.is_file():
        return json.loads(f.read_text())
    return {"reason": "no features: not among the inputs (or failed on another rank)"}


def _write_ave_h5(out: Path, order: list[str], records: dict[str, Any], meta: FeatureMeta) -> None:
    """The official h5 pair, one row per id of ``order``. A row without features stays zeros: ``features.json``
    lists it under ``failed`` (row, id, reason) and the AVE reader leaves such rows out, naming them."""
    import h5py

    g, dv, da = meta.grid, meta.visual_dim, meta.audio_dim
    for name, tail, kind in (("audio_feature.h5", (AVE_SEGMENTS, da), "audio"),
                             ("visual_feature.h5", (AVE_SEGMENTS, g, g, dv), "visual")):
        def write(tmp: Path, tail: tuple = tail, kind: str = kind) -> None:
            with h5py.File(tmp, "w") as h5:
                ds = h5.create_dataset(H5_KEY, shape=(len(order), *tail), dtype="float32")
                for row, vid in enumerate(order):  # one video per row: bounded memory for any N
                    if vid in records:
                        ds[row] = np.load(out / PARTS_DIR / f"{vid}.{kind}.npy")

        _atomic_save(out / name, write)


def extract(inputs: str | Path | Iterable[str | Path], out: str | Path, annotations: str | Path | None = None,
            progress: bool = False, **config: Any) -> Summary:
    """``avloc extract`` for Python users: ``avloc.extract("clips/", "feats", format="ave", audio="aisfx")``;
    ``config`` holds ``ExtractConfig`` fields (an unknown one is an error naming it)."""
    unknown = sorted(set(config) - set(ExtractConfig.__dataclass_fields__))
    if unknown:
        raise ValueError(f"unknown extract setting(s) {unknown}; valid: {sorted(ExtractConfig.__dataclass_fields__)}")
    items = [inputs] if isinstance(inputs, (str, Path)) else list(inputs)
    return extract_videos(items, out, ExtractConfig(**config), annotations=annotations, progress=progress)
