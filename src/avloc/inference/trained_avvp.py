"""A trained audio-visual video parsing (AVVP, ``llp``) model on a new video: three tracks of events.

The features are LLP's (``avloc extract --format llp`` recipe: audio one row per second, the visual backbone
on K frames per second, their per-second mean as the third stream), made on the 10-s windows of
:func:`~avloc.inference.trained.ave_windows`, so a video of any length is parsed as LLP clips are. Per second
the model gives audio and visual class probabilities; the decisions are the official ones
(:func:`~avloc.evaluation.avvp_metrics.binarize`: the segment's probability and the window's video
probability at the run's thresholds, 0.5 officially):

* ``audio`` track: P_audio, events where the audio decision holds;
* ``visual`` track: P_visual, events where the visual decision holds;
* ``av`` track: min(P_audio, P_visual), events where both decisions hold (heard and seen), as the official
  evaluation forms audio-visual events.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch

from avloc.evaluation.avvp_metrics import binarize
from avloc.inference.events import Events, runs_to_events
from avloc.inference.prediction import ScoreTrack, VideoPrediction
from avloc.inference.windows import ave_windows, clip_seconds, step_outputs

WINDOW = 10  # LLP clips: ten one-second segments


def llp_window_features(extractor, path: Path, wave: np.ndarray | None,
                        start: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """LLP features of the 10 s from ``start``: audio (10, Da), frames (10 * K, Dv), segment means (10, Dv)."""
    from avloc.media.backbones.vgg import ave_audio_starts

    k = extractor.cfg.frames_per_segment
    times = start + np.arange(WINDOW * k) / k  # (10 * K,)
    frames = extractor.frame_features(path, times)  # (10 * K, Dv) spatially pooled (llp format)
    st = frames.view(WINDOW, k, -1).mean(1)  # (10, Dv)
    starts, window = ave_audio_starts(extractor.audio, WINDOW)
    if wave is None:
        audio = torch.zeros(WINDOW, extractor.audio.out_dim)
    else:
        audio = extractor.embed_audio(wave, start + starts, window)  # (10, Da)
    return audio.numpy(), frames.numpy(), st.numpy()


@torch.no_grad()
def predict_avvp(model: torch.nn.Module, extractor, eval_cfg, names: list[str], path: Path, dev: torch.device,
                 method: str) -> VideoPrediction:
    """One video -> audio, visual and av tracks and events at the thresholds of ``eval_cfg`` (the run's avvp
    evaluator config)."""
    from avloc.media.decode import decode_audio, probe

    info = probe(path)
    seconds = clip_seconds(info.duration)
    starts, where = ave_windows(seconds)  # (W,), (S, 2)
    wave = decode_audio(path, extractor.audio.sample_rate, []) if info.has_audio else None
    feats = [llp_window_features(extractor, path, wave, s) for s in starts]
    batch = {key: torch.from_numpy(np.stack([f[i] for f in feats])).to(dev)
             for i, key in enumerate(("audio", "visual", "visual_st"))}  # (W, 10, Da), (W, 10K, Dv), (W, 10, Dv)
    out = step_outputs(model, batch)
    prob = out["segment_prob"].cpu()  # (W, 10, 2, C)
    audio_on, visual_on = binarize(prob, out["video_prob"].cpu(), eval_cfg.audio_threshold,
                                   eval_cfg.visual_threshold, eval_cfg.video_threshold)  # (W, 10, C) each
    w, p = where[:, 0], where[:, 1]
    pa, pv = prob[w, p, 0].numpy(), prob[w, p, 1].numpy()  # (S, C) each
    on_a, on_v = audio_on[w, p].numpy(), visual_on[w, p].numpy()  # (S, C) each
    pav = np.minimum(pa, pv)  # (S, C)
    tracks = [ScoreTrack("av", names, pav, 1.0), ScoreTrack("audio", names, pa, 1.0),
              ScoreTrack("visual", names, pv, 1.0)]
    events = Events.concat([runs_to_events(on_a & on_v, pav, 1.0, names, "av", info.duration),
                            runs_to_events(on_a, pa, 1.0, names, "audio", info.duration),
                            runs_to_events(on_v, pv, 1.0, names, "visual", info.duration)])
    notes = [] if info.has_audio else ["no audio track: the audio features are zeros"]
    return VideoPrediction(path.stem, path, info.duration, method, events.sorted(), tracks, notes=notes)
