"""The official AVE feature files as one in-memory, validated dataset (registered as ``ave``).

Files (folder ``root``; names configurable), all h5 datasets under key ``avadataset`` unless noted:

* ``Annotations.txt``: ``Category&VideoID&Quality&Start&End``, line i = row i of every h5 (required);
  ``background`` as Category marks a clip without an event. Categories: the 28 AVE classes, or the event
  classes of ``classes_file`` (``classes.txt`` when present, e.g. a composed real-media set or clips labelled
  by folder; one per line; background is always added last).
* ``audio_feature.h5`` (N, 10, 128) VGGish, ``visual_feature.h5`` (N, 10, 7, 7, 512) VGG-19 pool5
  (float64 on disk, float32 here, loaded once in row chunks: 7.7 GB on disk -> 4.16 GB in RAM; with
  ``storage: float16`` half that, converted back to float32 batch by batch).
* ``{train,val,test}_order.h5`` key ``order``: int64 row indices (official 3339/402/402, disjoint).
* optional, rebuilt from the annotations when absent: ``labels.h5`` (N, 10, 29), ``labels_closs.h5``
  (N, 10), ``mil_labels.h5`` (N, 29), ``prob_label.h5`` (N, 29) (PSP's Drive-only weak target). A present
  file wins after its shape and content are checked; rows of ``labels.h5`` that disagree with their
  annotation line (AVE issue #10: a few official rows carry a second event class) are logged.
* weak setting, optional: ``audio_feature_noisy.h5`` (M, 10, 128), ``visual_feature_noisy.h5``
  (M, 10, 7, 7, 512), ``labels_noisy.h5`` (M, 29): the M = 178 background-only videos, appended after the
  N rows and added to the training split only.

Rows ``avloc extract`` could not make (``failed`` in its ``features.json``; zeros) are left out, named.

Every problem (missing file or key, wrong shape or dtype, disagreeing row counts, NaN/inf, bad split
indices, malformed annotation line) is a ``DataError`` naming the file.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import torch

from avloc.data import ave_labels as L
from avloc.data.ave_files import FEATURE_DTYPES, h5_shape, load_features, read_array
from avloc.data.ave_splits import read_orders, split_subset, without_failed
from avloc.data.base import DataError, InMemoryDataset
from avloc.registry import DATASETS

log = logging.getLogger(__name__)

H5_KEY = "avadataset"  # dataset key of every official feature/label file


def _one_hot_rows(arr: np.ndarray, path: Path, what: str) -> torch.Tensor:
    """Check that the last axis of ``arr`` is one-hot (values 0/1, exactly one 1); return float32."""
    t = torch.from_numpy(np.ascontiguousarray(arr)).float()
    binary = (t == 0) | (t == 1)
    ok = binary.all(-1) & (t.sum(-1) == 1)
    if not bool(ok.all()):
        bad = int((~ok).flatten(1).any(1).nonzero()[0, 0]) if ok.dim() > 1 else int((~ok).nonzero()[0, 0])
        raise DataError(f"{path}['{H5_KEY}']: {what} must be one-hot (0/1, one 1 per vector); "
                        f"row {bad} is not")
    return t


@DATASETS.register("ave")
class AVEDataset(InMemoryDataset):
    """AVE in RAM: float32 features, every label tensor, and index splits.

    Batch keys (B = len(idx)): ``audio`` (B, 10, Da), ``visual`` (B, 10, H, W, Dv), ``labels`` (B, 10, 29),
    ``segment_labels`` (B, 10) long, ``event_mask`` (B, 10), ``video_label`` (B, 29), ``video_class`` (B,)
    long (28 for noisy videos), ``prob_label`` (B, 29). Attributes: ``video_ids``, ``class_names`` (29,
    background last), ``annotations`` (the parsed file), ``source_rows`` (h5 row of each item; -1 - i for
    noisy video i).
    """

    task = "ave"

    @dataclass
    class Config:
        setting: str = "fully"  # fully | weak (weak: noisy background videos join the training split)
        annotations_file: str = "Annotations.txt"  # Category&VideoID&Quality&Start&End, no header
        classes_file: str = L.CLASSES_FILE  # the set's event classes, one a line (used when present); "": AVE's 28
        audio_file: str = "audio_feature.h5"  # (N, 10, 128) VGGish
        visual_file: str = "visual_feature.h5"  # (N, 10, 7, 7, 512) VGG-19 pool5
        labels_file: str = "labels.h5"  # (N, 10, 29) one-hot; rebuilt from annotations when absent
        closs_file: str = "labels_closs.h5"  # (N, 10) event mask; rebuilt when absent
        mil_labels_file: str = "mil_labels.h5"  # (N, 29) one-hot video class; rebuilt when absent
        prob_label_file: str = "prob_label.h5"  # (N, 29) PSP weak target; rebuilt when absent
        train_order_file: str = "train_order.h5"  # key 'order': row indices of the training split
        val_order_file: str = "val_order.h5"  # key 'order': validation rows
        test_order_file: str = "test_order.h5"  # key 'order': test rows
        use_noisy: bool = True  # weak setting: append the background-only noisy videos to train
        audio_noisy_file: str = "audio_feature_noisy.h5"  # (M, 10, 128)
        visual_noisy_file: str = "visual_feature_noisy.h5"  # (M, 10, 7, 7, 512)
        labels_noisy_file: str = "labels_noisy.h5"  # (M, 29), background column set
        max_videos: int = 0  # 0 = all; else keep the first split-proportional subset (quick runs)
        storage: str = "float32"  # features in RAM: float32 | float16 (half the RAM; float32 per batch)
        # rows avloc extract could not make (features.json 'failed'; zeros in the h5): exclude (from every split,
        # named in a warning) | error (refuse the folder)
        failed_videos: str = "exclude"

        def __post_init__(self) -> None:
            if self.setting not in ("fully", "weak"):
                raise ValueError(f"setting must be 'fully' or 'weak', got {self.setting!r}")
            if self.storage not in FEATURE_DTYPES:
                raise ValueError(f"storage must be one of {sorted(FEATURE_DTYPES)}, got {self.storage!r}")
            if self.failed_videos not in ("exclude", "error"):
                raise ValueError(f"failed_videos must be 'exclude' or 'error', got {self.failed_videos!r}")
            if self.max_videos < 0:
                raise ValueError(f"max_videos must be >= 0, got {self.max_videos}")

    def __init__(self, cfg: Config, root: str | Path) -> None:
        super().__init__(cfg, root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: AVE data folder not found")
        classes = self._event_classes()
        self.class_names: list[str] = [*classes, L.BACKGROUND_NAME]
        self.annotations = L.read_annotations(self._p(cfg.annotations_file), classes=classes)
        n = len(self.annotations)
        orders = read_orders(self.root, {"train": cfg.train_order_file, "val": cfg.val_order_file,
                                         "test": cfg.test_order_file}, n)
        orders, self.failed_rows = without_failed(orders, self.root, self.annotations, cfg.failed_videos)
        orders = split_subset(orders, n, cfg.max_videos)
        rows = np.unique(np.concatenate(list(orders.values())))  # sorted h5 rows to load
        pos = np.full(n, -1, dtype=np.int64)
        pos[rows] = np.arange(len(rows))
        noisy = self._noisy_count(n) if cfg.setting == "weak" and cfg.use_noisy else 0
        if noisy and cfg.max_videos:
            noisy = min(noisy, max(1, round(noisy * cfg.max_videos / n)))

        labels = self._labels(n, rows)
        self._load_features(n, rows, noisy)
        self.video_ids = [self.annotations.video_ids[r] for r in rows.tolist()]
        self.source_rows = torch.from_numpy(rows)
        self.splits = {name: torch.from_numpy(pos[order]) for name, order in orders.items()}
        if noisy:
            labels = self._append_noisy(labels, noisy)
            self.video_ids += [f"noisy{i:03d}" for i in range(noisy)]
            self.source_rows = torch.cat([self.source_rows, -1 - torch.arange(noisy)])
            self.splits["train"] = torch.cat([self.splits["train"], len(rows) + torch.arange(noisy)])
        self.tensors: dict[str, torch.Tensor] = {"audio": self.audio, "visual": self.visual, **labels}
        self._scratch: dict[str, torch.Tensor] = {}  # see batches()
        self._half: dict[str, torch.Tensor] = {}  # float16 storage: gather buffers, see _gather()
        log.info(
            "AVE %s: %d videos (%s), audio %s, visual %s",
            cfg.setting, len(self.video_ids), ", ".join(f"{k} {len(v)}" for k, v in self.splits.items()),
            tuple(self.audio.shape[1:]), tuple(self.visual.shape[1:]),
        )

    # ------------------------------------------------------------------ public interface
    def __len__(self) -> int:
        return len(self.video_ids)

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        """Gather every key for the (B,) long ``idx`` (positions into this dataset)."""
        return self._gather(idx, {})

    def batches(self, chunks: Iterable[torch.Tensor]) -> Iterator[dict[str, torch.Tensor]]:
        """Every batch is gathered into one scratch batch that this dataset keeps across calls (training and
        evaluation share it; a smaller batch uses its leading rows): a fresh 100+ MB batch per step would
        cost page faults on CPU."""
        for idx in chunks:
            scratch = self._scratch
            if not torch.is_inference_mode_enabled() and any(t.is_inference() for t in scratch.values()):
                scratch = {}  # made under inference_mode: such tensors cannot be written outside it
            out = self._gather(idx, scratch)
            if any(k not in scratch or t.untyped_storage().data_ptr() != scratch[k].untyped_storage().data_ptr()
                   for k, t in out.items()):
                self._scratch = out  # first call, or a batch larger than the scratch: it becomes the scratch
            yield out

    def _gather(self, idx: torch.Tensor, out: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        """index_select every key into the leading rows of ``out``'s tensors where they are large enough.
        Features held as float16 (``storage``) are gathered into a reused half-size buffer, then converted
        into the float32 batch: the models always see float32."""
        idx = torch.as_tensor(idx, dtype=torch.long)
        n = len(idx)
        batch = {}
        for k, v in self.tensors.items():
            want = torch.float32 if v.dtype == torch.float16 else v.dtype
            buf = out.get(k)
            fits = buf is not None and buf.shape[0] >= n and buf.shape[1:] == v.shape[1:] and buf.dtype == want
            if v.dtype == torch.float16:
                rows = torch.index_select(v, 0, idx, out=self._half_rows(k, n))  # (B, ...) float16
                batch[k] = buf[:n].copy_(rows) if fits else rows.float()
            elif fits:
                batch[k] = torch.index_select(v, 0, idx, out=buf[:n])
            else:
                batch[k] = v.index_select(0, idx)
        return batch

    def _half_rows(self, key: str, n: int) -> torch.Tensor:
        """The leading ``n`` rows of a float16 gather buffer for ``key``, grown (or remade outside
        inference_mode, where inference tensors cannot be written) when needed."""
        v, buf = self.tensors[key], self._half.get(key)
        if buf is None or buf.shape[0] < n or (buf.is_inference() and not torch.is_inference_mode_enabled()):
            buf = self._half[key] = torch.empty((n, *v.shape[1:]), dtype=v.dtype)
        return buf[:n]

    def model_dims(self) -> dict[str, int]:
        return {
            "audio_dim": int(self.audio.shape[-1]),
            "visual_dim": int(self.visual.shape[-1]),
            "att_regions": int(self.visual.shape[2] * self.visual.shape[3]),
            "num_classes": len(self.class_names),
        }

    def _event_classes(self) -> tuple[str, ...]:
        """AVE's 28 classes, or the set's own from ``classes_file`` (the default ``classes.txt`` only when
        present: the official AVE folder has none; another name must exist)."""
        name = self.cfg.classes_file
        if not name or (name == L.CLASSES_FILE and not self._p(name).is_file()):
            return L.AVE_CLASSES
        return L.read_classes(self._p(name))

    # ------------------------------------------------------------------ reading
    def _p(self, name: str) -> Path:
        return self.root / name

    def _read_rows(self, path: Path, n: int, tail: tuple[int, ...], kinds: str = "fiub") -> np.ndarray:
        """Read a label file whose rows must match the n annotation lines; says so when they do not."""
        shape = h5_shape(path, H5_KEY)
        if shape and shape[0] != n and shape[1:] == tail:
            raise DataError(
                f"{path}['{H5_KEY}']: has {shape[0]} rows but {self.annotations.path} has {n} lines"
            )
        return read_array(path, H5_KEY, (n, *tail), kinds=kinds)

    def _optional(self, name: str) -> Path | None:
        path = self._p(name)
        return path if path.is_file() else None

    def _labels(self, n: int, rows: np.ndarray) -> dict[str, torch.Tensor]:
        """Every label tensor for ``rows``: from the files when present (checked), else rebuilt."""
        ann = self.annotations
        bg, nc = ann.background, ann.background + 1
        rebuilt = L.segment_labels(ann)
        path = self._optional(self.cfg.labels_file)
        if path is not None:
            labels = _one_hot_rows(self._read_rows(path, n, (L.NUM_SEGMENTS, nc)), path, "labels")
            seg = labels.argmax(-1)
            differ = (seg != rebuilt).any(1).nonzero().flatten()
            if len(differ):  # AVE issue #10: a few official rows carry labels the annotation line lacks
                log.warning("%s: %d rows differ from %s (first rows %s); using the h5 labels",
                            path, len(differ), ann.path, differ[:5].tolist())
        else:
            seg = rebuilt
            labels = L.one_hot_labels(seg, nc)

        path = self._optional(self.cfg.closs_file)
        if path is not None:
            mask = torch.from_numpy(self._read_rows(path, n, (L.NUM_SEGMENTS,))).float()
            if not bool(((mask == 0) | (mask == 1)).all()):
                raise DataError(f"{path}['{H5_KEY}']: event mask must hold only 0 and 1")
        else:
            mask = labels[..., :bg].amax(-1)

        path = self._optional(self.cfg.mil_labels_file)
        if path is not None:
            video = _one_hot_rows(self._read_rows(path, n, (nc,)), path, "video labels")
            odd = video[:, bg].bool() & torch.from_numpy(ann.category != bg)  # bg only for background clips
            if bool(odd.any()):
                row = int(odd.nonzero()[0, 0])
                raise DataError(
                    f"{path}['{H5_KEY}']: row {row} is a background video, but its annotation line names an event"
                )
        else:
            video = L.mil_labels(ann)
        video_class = video.argmax(-1)
        differ = (video_class != torch.from_numpy(ann.category)).nonzero().flatten()
        if len(differ):
            log.warning("%s: %d video classes differ from %s (first rows %s)",
                        self.cfg.mil_labels_file, len(differ), ann.path, differ[:5].tolist())

        path = self._optional(self.cfg.prob_label_file)
        if path is not None:
            prob = torch.from_numpy(self._read_rows(path, n, (nc,), kinds="f")).float()
            if not torch.allclose(prob.sum(-1), torch.ones(n), atol=1e-4) or bool((prob < 0).any()):
                raise DataError(f"{path}['{H5_KEY}']: rows must be non-negative and sum to 1")
        else:
            prob = L.prob_label(video_class, mask, nc)

        sel = torch.from_numpy(rows)
        out = {
            "labels": labels, "segment_labels": seg, "event_mask": mask,
            "video_label": video, "video_class": video_class, "prob_label": prob,
        }
        return {k: v.index_select(0, sel).contiguous() for k, v in out.items()}

    def _noisy_count(self, n: int) -> int:
        """M when all three noisy files are present (shapes checked), 0 when none is; else DataError."""
        cfg = self.cfg
        names = (cfg.audio_noisy_file, cfg.visual_noisy_file, cfg.labels_noisy_file)
        present = [name for name in names if self._optional(name) is not None]
        if not present:
            log.warning("weak setting: no noisy background videos (%s) in %s; training on the annotated "
                        "videos only", ", ".join(names), self.root)
            return 0
        if len(present) < len(names):
            missing = [name for name in names if name not in present]
            raise DataError(f"{self.root}: noisy files are incomplete: found {present}, missing {missing} "
                            "(provide all three, or none, or set use_noisy: false)")
        shapes = {name: h5_shape(self._p(name), H5_KEY) for name in names}
        counts = {name: shape[0] if shape else 0 for name, shape in shapes.items()}
        if len(set(counts.values())) != 1:
            raise DataError(f"{self.root}: noisy files disagree on the number of videos: {counts}")
        return counts[names[0]]

    def _load_features(self, n: int, rows: np.ndarray, noisy: int) -> None:
        """Fill self.audio / self.visual, (len(rows) + noisy, ...) in the storage dtype: allocated once, read in
        chunks."""
        cfg = self.cfg
        a_path, v_path = self._p(cfg.audio_file), self._p(cfg.visual_file)
        a_shape, v_shape = h5_shape(a_path, H5_KEY), h5_shape(v_path, H5_KEY)
        if len(a_shape) != 3 or a_shape[1] != L.NUM_SEGMENTS:
            raise DataError(f"{a_path}['{H5_KEY}']: expected shape (N, {L.NUM_SEGMENTS}, D), got {a_shape}")
        if len(v_shape) != 5 or v_shape[1] != L.NUM_SEGMENTS:
            raise DataError(
                f"{v_path}['{H5_KEY}']: expected shape (N, {L.NUM_SEGMENTS}, H, W, D), got {v_shape}"
            )
        if noisy:  # check the noisy files fit before the long read of the main ones
            for main, name in ((a_path, cfg.audio_noisy_file), (v_path, cfg.visual_noisy_file)):
                shape, want = h5_shape(self._p(name), H5_KEY), h5_shape(main, H5_KEY)
                if shape[1:] != want[1:]:
                    raise DataError(f"{self._p(name)}['{H5_KEY}']: shape {shape} does not match "
                                    f"{main.name} {want} (same segments and feature dims needed)")
        total = len(rows) + noisy
        dtype = FEATURE_DTYPES[cfg.storage]
        self.audio = torch.empty((total, *a_shape[1:]), dtype=dtype)
        self.visual = torch.empty((total, *v_shape[1:]), dtype=dtype)
        m = len(rows)
        load_features(a_path, H5_KEY, a_shape[1:], rows=rows, expect_rows=n, out=self.audio[:m])
        load_features(v_path, H5_KEY, v_shape[1:], rows=rows, expect_rows=n, out=self.visual[:m])
        if noisy:
            keep = np.arange(noisy)
            load_features(self._p(cfg.audio_noisy_file), H5_KEY, a_shape[1:], rows=keep, out=self.audio[m:])
            load_features(self._p(cfg.visual_noisy_file), H5_KEY, v_shape[1:], rows=keep, out=self.visual[m:])

    def _append_noisy(self, labels: dict[str, torch.Tensor], noisy: int) -> dict[str, torch.Tensor]:
        """Noisy videos: every segment background, video_class 28, video/prob label = labels_noisy row."""
        path = self._p(self.cfg.labels_noisy_file)
        bg, nc = self.annotations.background, self.annotations.background + 1
        video = _one_hot_rows(read_array(path, H5_KEY, (None, nc))[:noisy], path, "noisy labels")
        if not bool((video[:, bg] == 1).all()):
            row = int((video[:, bg] != 1).nonzero()[0, 0])
            raise DataError(
                f"{path}['{H5_KEY}']: row {row} is not background; noisy videos are background-only"
            )
        seg = torch.full((noisy, L.NUM_SEGMENTS), bg, dtype=torch.long)
        extra = {
            "labels": L.one_hot_labels(seg, nc), "segment_labels": seg,
            "event_mask": torch.zeros(noisy, L.NUM_SEGMENTS), "video_label": video,
            "video_class": torch.full((noisy,), bg, dtype=torch.long), "prob_label": video.clone(),
        }
        return {k: torch.cat([v, extra[k]]) for k, v in labels.items()}
