"""The LLP dataset of audio-visual video parsing in its official layout (registered as ``llp``).

Folder ``root`` (names configurable): the five annotation files of :mod:`avloc.data.llp_files`, and the
feature folders the official dataloader reads, one ``<YouTube id>.npy`` per clip in each (the id is the
first 11 characters of the filename):

* ``feats/vggish/``       (10, 128)  VGGish, one vector per one-second segment;
* ``feats/res152/``       (80, 2048) ResNet-152 of 8 frames per second (the model averages each second);
* ``feats/r2plus1d_18/``  (10, 512)  R(2+1)D-18, one snippet per segment.

Any feature width is accepted (all clips alike); the frame count must be a multiple of the 10 segments.
Splits: train / val / test = the rows of the three weak lists, in file order. Val and test clips carry the
per-segment audio and visual labels of the eval files; train clips only their video-level labels. The
official files disagree in places (51 audio and 40 visual val/test events of a class the clip's weak list
lacks): kept as they are, the official evaluation scores against the eval files.
A missing file, a wrong shape or dtype, NaN/inf, a malformed CSV line: a ``DataError`` naming the file
(and line).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from avloc.data import llp_files as F
from avloc.data.base import DataError, InMemoryDataset
from avloc.registry import DATASETS

log = logging.getLogger(__name__)

SPLITS = ("train", "val", "test")


def load_clip_array(path: Path, steps_multiple: int) -> np.ndarray:
    """One feature file as a float32 (S, D) array, S a multiple of ``steps_multiple`` (no pickles)."""
    if not path.is_file():
        raise DataError(f"{path}: feature file not found")
    try:
        arr = np.load(path, allow_pickle=False)
    except (ValueError, OSError, EOFError) as exc:
        raise DataError(f"{path}: not a readable .npy array ({exc})") from None
    if arr.dtype.kind != "f":
        raise DataError(f"{path}: dtype {arr.dtype} is not floating point")
    if arr.ndim != 2 or arr.shape[0] == 0 or arr.shape[0] % steps_multiple or arr.shape[1] == 0:
        raise DataError(f"{path}: shape {arr.shape} must be (S, D) with S a multiple of {steps_multiple}")
    if not np.isfinite(arr).all():
        raise DataError(f"{path}: holds NaN or inf")
    return arr.astype(np.float32, copy=False)


@DATASETS.register("llp")
class LLPDataset(InMemoryDataset):
    """LLP in RAM.

    Batch keys (B clips, T = 10 segments, C = 25 classes): ``audio`` (B, T, Da), ``visual`` (B, T * K, Dv)
    frame features (K = 8 officially), ``visual_st`` (B, T, Ds), ``video_labels`` (B, C), ``audio_labels``
    and ``visual_labels`` (B, T, C) (zero on train clips), ``index`` (B,). Attributes: ``video_ids``
    (filenames), ``class_names``.
    """

    task = "avvp"

    @dataclass
    class Config:
        train_file: str = "AVVP_train.csv"  # weak labels of the training clips
        val_file: str = "AVVP_val_pd.csv"  # weak labels of the validation clips (model selection)
        test_file: str = "AVVP_test_pd.csv"  # weak labels of the test clips
        eval_audio_file: str = "AVVP_eval_audio.csv"  # per-second audio events of val and test clips
        eval_visual_file: str = "AVVP_eval_visual.csv"  # per-second visual events of val and test clips
        audio_dir: str = "feats/vggish"  # <id>.npy (10, 128)
        video_dir: str = "feats/res152"  # <id>.npy (80, 2048): 8 frames per second
        st_dir: str = "feats/r2plus1d_18"  # <id>.npy (10, 512)
        max_videos: int = 0  # 0 = all; else the first split-proportional rows of each list (quick runs)

        def __post_init__(self) -> None:
            if self.max_videos < 0:
                raise ValueError(f"max_videos must be >= 0, got {self.max_videos}")

    def __init__(self, cfg: Config, root: str | Path) -> None:
        super().__init__(cfg, root)
        if not self.root.is_dir():
            raise DataError(f"{self.root}: LLP data folder not found")
        lists = {s: F.read_weak_list(self.root / f) for s, f in zip(SPLITS, (cfg.train_file, cfg.val_file,
                                                                             cfg.test_file))}
        total = sum(len(w.filenames) for w in lists.values())
        if cfg.max_videos and cfg.max_videos < total:
            keep = {s: max(1, round(cfg.max_videos * len(w.filenames) / total)) for s, w in lists.items()}
            lists = {s: F.WeakList(w.filenames[: keep[s]], w.labels[: keep[s]]) for s, w in lists.items()}
        self._check_disjoint(lists)
        self.class_names = list(F.CLASS_NAMES)
        self.video_ids: list[str] = [n for w in lists.values() for n in w.filenames]
        sizes = [len(w.filenames) for w in lists.values()]
        bounds = np.cumsum([0, *sizes])
        self.splits = {s: torch.arange(int(bounds[i]), int(bounds[i + 1])) for i, s in enumerate(SPLITS)}
        video_labels = np.concatenate([w.labels for w in lists.values()])  # (N, C)
        seg = {}
        for mod, name in (("audio", cfg.eval_audio_file), ("visual", cfg.eval_visual_file)):
            labels, unmatched = F.segment_labels(F.read_dense_events(self.root / name), self.video_ids)
            labels[: sizes[0]] = 0.0  # train clips are weakly labelled only
            seg[mod] = labels
            if unmatched:
                log.info("%s: %d event rows name no clip of the splits (ignored, as the official evaluation does)",
                         self.root / name, unmatched)
        self.tensors = {
            "audio": self._stack(cfg.audio_dir, 1),
            "visual": self._stack(cfg.video_dir, F.NUM_SEGMENTS),
            "visual_st": self._stack(cfg.st_dir, 1),
            "video_labels": torch.from_numpy(video_labels),
            "audio_labels": torch.from_numpy(seg["audio"]),
            "visual_labels": torch.from_numpy(seg["visual"]),
            "index": torch.arange(len(self.video_ids)),
        }
        log.info("LLP: %d clips (%s), audio %s, visual %s, visual_st %s", len(self.video_ids),
                 ", ".join(f"{k} {len(v)}" for k, v in self.splits.items()),
                 *(tuple(self.tensors[k].shape[1:]) for k in ("audio", "visual", "visual_st")))

    def __len__(self) -> int:
        return len(self.video_ids)

    def batch(self, idx: torch.Tensor) -> dict[str, torch.Tensor]:
        idx = torch.as_tensor(idx, dtype=torch.long)
        return {k: v.index_select(0, idx) for k, v in self.tensors.items()}

    def model_dims(self) -> dict[str, int]:
        t = self.tensors
        return {"audio_dim": int(t["audio"].shape[-1]), "visual_dim": int(t["visual"].shape[-1]),
                "st_dim": int(t["visual_st"].shape[-1]), "num_classes": len(self.class_names)}

    # ------------------------------------------------------------------ reading
    def _check_disjoint(self, lists: dict[str, F.WeakList]) -> None:
        owner: dict[str, str] = {}
        for split, w in lists.items():
            for name in w.filenames:
                if name[: F.ID_CHARS] in owner:
                    raise DataError(f"{self.root}: clip {name!r} of the {split} list is also in the "
                                    f"{owner[name[:F.ID_CHARS]]} list (splits must be disjoint)")
                owner[name[: F.ID_CHARS]] = split

    def _stack(self, folder: str, steps_multiple: int) -> torch.Tensor:
        """(N, S, D) float32 of every clip's ``<folder>/<id>.npy``; all clips must agree in shape."""
        base = self.root / folder
        if not base.is_dir():
            raise DataError(f"{base}: feature folder not found")
        out: np.ndarray | None = None
        for i, name in enumerate(self.video_ids):
            path = base / f"{name[:F.ID_CHARS]}.npy"
            arr = load_clip_array(path, steps_multiple)
            if steps_multiple == 1 and arr.shape[0] != F.NUM_SEGMENTS:
                raise DataError(f"{path}: shape {arr.shape} must be ({F.NUM_SEGMENTS}, D), one row per second")
            if out is None:
                out = np.empty((len(self.video_ids), *arr.shape), dtype=np.float32)
            elif arr.shape != out.shape[1:]:
                raise DataError(f"{path}: shape {arr.shape} differs from the other clips' {out.shape[1:]}")
            out[i] = arr
        if out is None:
            raise DataError(f"{self.root}: the split lists name no clip")
        return torch.from_numpy(out)
