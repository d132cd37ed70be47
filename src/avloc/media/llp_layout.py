"""The LLP feature layout ``avloc extract --format llp`` writes: the folders the ``llp`` dataset reads.

Per clip, named by the first 11 characters of its file name (LLP's YouTube id, as the official dataloader
names them), in the official folders whatever backbones made them (``features.json`` says which):

* ``feats/vggish/<id>.npy``       (10, Da)     the audio backbone, one row per one-second segment;
* ``feats/res152/<id>.npy``       (10 * K, Dv) the visual backbone, spatially pooled, K frames per second;
* ``feats/r2plus1d_18/<id>.npy``  (10, Dv)     the per-second mean of those frames. avloc has no video
  (spatio-temporal) backbone, so the stream LLP fills with R(2+1)D-18 repeats the visual backbone's
  segment mean: it keeps the models' inputs complete, and adds no motion information.

Labels are the user's: the five AVVP CSV files (``AVVP_train.csv``, ``AVVP_val_pd.csv``,
``AVVP_test_pd.csv``, ``AVVP_eval_audio.csv``, ``AVVP_eval_visual.csv``, see :mod:`avloc.data.llp_files`)
copied into the folder, whose file names are the clips' names.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from avloc.data.llp_files import ID_CHARS, NUM_SEGMENTS

AUDIO_DIR = "feats/vggish"
VISUAL_DIR = "feats/res152"
ST_DIR = "feats/r2plus1d_18"
LABEL_FILES = ("AVVP_train.csv", "AVVP_val_pd.csv", "AVVP_test_pd.csv", "AVVP_eval_audio.csv",
               "AVVP_eval_visual.csv")


def llp_data_config() -> dict[str, str]:
    """The ``data`` section of ``features.json`` that makes ``avloc train`` read an extracted LLP folder (the
    dims come from the arrays)."""
    return {"name": "llp", "audio_dir": AUDIO_DIR, "video_dir": VISUAL_DIR, "st_dir": ST_DIR}


def llp_file_ids(ids: list[str]) -> list[str]:
    """The feature file name of each video id: its first 11 characters; a shorter id, or two ids sharing them,
    is an error naming them (the ``llp`` dataset could not tell their files apart)."""
    short = [v for v in ids if len(v) < ID_CHARS]
    if short:
        raise ValueError(f"--format llp: video id {short[0]!r} is shorter than {ID_CHARS} characters; LLP names "
                         "clips <11-character YouTube id>_<start>_<end> and its feature files by that id")
    seen: dict[str, str] = {}
    for v in ids:
        if v[:ID_CHARS] in seen:
            raise ValueError(f"--format llp: video ids {seen[v[:ID_CHARS]]!r} and {v!r} share the feature file "
                             f"name {v[:ID_CHARS]!r} (the first {ID_CHARS} characters)")
        seen[v[:ID_CHARS]] = v
    return [v[:ID_CHARS] for v in ids]


def llp_streams(audio: np.ndarray, frames: np.ndarray) -> dict[str, np.ndarray]:
    """audio (10, Da), frames (10 * K, Dv) -> the three arrays by folder, float32."""
    st = frames.reshape(NUM_SEGMENTS, -1, frames.shape[-1]).mean(1)  # (10, Dv)
    return {AUDIO_DIR: audio.astype(np.float32), VISUAL_DIR: frames.astype(np.float32),
            ST_DIR: st.astype(np.float32)}


def make_llp_dirs(out: Path) -> None:
    for folder in (AUDIO_DIR, VISUAL_DIR, ST_DIR):
        (out / folder).mkdir(parents=True, exist_ok=True)
