"""``avloc predict --run RUN_DIR --data FEATURES``: a trained run's val-selected checkpoint on new videos.

Features are made exactly as the run's training data were (``FEATURES/features.json`` names the backbones and
the grid; ``avloc extract`` wrote it). Then, by task:

- AVE runs (10 x 1 s): a video of S seconds is cut into 10-s windows starting at 0, 10, 20, ...; when S is not
  a multiple of 10, one more window ends at S (it overlaps the one before) and gives only the seconds after the
  last full window. A video shorter than 10 s is one window (frames past the end repeat the last frame, audio
  past the end is silence) of which the first S seconds are kept. Each second gets the model's label (the last
  class is background) and a confidence; events are runs of equal non-background labels.
- Dense runs: the whole video on the run's feature grid; the model's ``cas`` is kept as per-step scores and
  the run's proposal post-processing (its evaluator config) gives scored segments in seconds.

The model is called through ``step_outputs`` only, so a change of the models' output keys is one edit here.
"""

from __future__ import annotations

from pathlib import Path
from typing import Callable

import numpy as np
import torch

from avloc.inference.events import Events, runs_to_events
from avloc.inference.prediction import PredictError, ScoreTrack, VideoPrediction

AVE_WINDOW = 10


def step_outputs(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The adapter between models and predict: ``labels`` (B, T) and ``confidence`` (B, T) for AVE models,
    ``cas`` (B, T, C) and ``video_probs`` (B, C) for dense ones (from an AVEOutput / DenseOutput)."""
    out = model(batch)
    if model.task == "dense":
        return {"cas": out.cas.float(), "video_probs": torch.sigmoid(out.video_logits.float())}
    labels = model.segment_predictions(out)  # (B, T), background = last class
    background = labels == model.cfg.num_classes - 1  # (B, T)
    if out.class_logits.dim() == 3:  # per-second class logits (AVEL, PSP)
        conf = torch.softmax(out.class_logits.float(), -1).gather(-1, labels[..., None]).squeeze(-1)  # (B, T)
    else:  # one video-level class; the per-second confidence is the event gate's
        gate = torch.sigmoid(out.event_logits.float()) if out.event_logits is not None else out.av_gate.float()
        conf = torch.where(background, 1 - gate, gate)  # (B, T)
    return {"labels": labels, "confidence": conf}


def ave_windows(seconds: int) -> tuple[np.ndarray, np.ndarray]:
    """Window starts (W,) and, per second (S,), the (window, position) it is read from: (S, 2)."""
    full = max(1, seconds // AVE_WINDOW)
    starts = list(range(0, full * AVE_WINDOW, AVE_WINDOW))
    sec = np.arange(seconds)
    win, pos = np.minimum(sec // AVE_WINDOW, full - 1), sec % AVE_WINDOW
    if seconds > AVE_WINDOW and seconds % AVE_WINDOW:
        starts.append(seconds - AVE_WINDOW)  # the end-aligned window, for the tail only
        tail = sec >= full * AVE_WINDOW
        win = np.where(tail, full, win)
        pos = np.where(tail, sec - (seconds - AVE_WINDOW), pos)
    return np.array(starts, dtype=np.float64), np.stack([win, pos], 1)


def _ave_features(extractor, path: Path, wave: np.ndarray | None, start: float) -> tuple[np.ndarray, np.ndarray]:
    """AVE features of the 10 s from ``start``: the recipe of ``Extractor.video`` (16 frames per second through
    the visual backbone, averaged; one audio row per second), shifted in time."""
    from avloc.media.backbones.vgg import ave_audio_starts

    c = extractor.cfg
    times = start + np.arange(AVE_WINDOW * c.frames_per_segment) / c.frames_per_segment  # (160,)
    feats = extractor._visual(path, times, [])  # (160, g, g, Dv)
    visual = feats.view(AVE_WINDOW, c.frames_per_segment, *feats.shape[1:]).mean(1)  # (10, g, g, Dv)
    starts, window = ave_audio_starts(extractor.audio, AVE_WINDOW)
    if wave is None:
        audio = torch.zeros(AVE_WINDOW, extractor.audio.out_dim)
    else:
        audio = extractor.audio.embed(wave, start + starts, window).float().cpu()  # (10, Da)
    return audio.numpy(), visual.numpy()


def feature_meta(data_dir: Path, cfg, backbones: tuple[str, str] | None):
    """How the run's features were made: ``data_dir/features.json`` (written by ``avloc extract``), else the
    backbones named by ``--visual/--audio`` on the grid of the run's data config."""
    from avloc.media.extract import META_FILE, ExtractConfig, Extractor, read_feature_meta

    if (data_dir / META_FILE).is_file():
        return read_feature_meta(data_dir)
    if backbones is None:
        raise PredictError(f"{data_dir / META_FILE} is missing (the features were not made by avloc extract): "
                           "name the backbones that made them with --visual NAME --audio NAME")
    if cfg.name("data") == "ave":
        made = ExtractConfig(format="ave", visual=backbones[0], audio=backbones[1])
    else:  # the dense grid of the run's data config: step i covers [i * stride, i * stride + window) s
        d = cfg.data
        made = ExtractConfig(format="unav", visual=backbones[0], audio=backbones[1], fps=d.fps,
                             stride=d.feat_stride / d.fps, window=d.num_frames / d.fps)
    return Extractor(made).meta()


def run_detector(run_dir: Path, data_dir: Path, device: str,
                 backbones: tuple[str, str] | None = None) -> Callable[[Path], VideoPrediction]:
    """Load the run once; return video path -> VideoPrediction."""
    from avloc.config import load_config
    from avloc.engine.build import build_model, load_data, resolve_device
    from avloc.engine.checkpoint import CheckpointError, load_safe
    from avloc.media.extract import Extractor

    cfg_path, ckpt_path = run_dir / "config.yaml", run_dir / "best.pt"
    if not cfg_path.is_file():
        raise PredictError(f"{run_dir} is not a run folder: {cfg_path} is missing")
    if not ckpt_path.is_file():
        raise PredictError(f"{ckpt_path}: no val-selected checkpoint in the run folder (has training finished?)")
    cfg = load_config(cfg_path)
    meta = feature_meta(data_dir, cfg, backbones)
    trained = {k: getattr(cfg.model, k, None) for k in ("audio_dim", "visual_dim")}  # filled in from the data at training
    made = {"audio_dim": meta.audio_dim, "visual_dim": meta.visual_dim}
    wrong = [k for k in made if trained[k] not in (None, 0, made[k])]
    if wrong:
        raise PredictError(
            f"{cfg_path}: the run was trained on {', '.join(f'{k} {trained[k]}' for k in wrong)} but {data_dir} "
            f"holds {meta.config.visual} / {meta.config.audio} features ({', '.join(f'{k} {made[k]}' for k in wrong)}); "
            "pass the feature folder the run was trained on")
    data = load_data(cfg, data_dir)
    dev = resolve_device(device)
    model = build_model(cfg, data).to(dev)
    try:
        model.load_state_dict(load_safe(ckpt_path)["model"])
    except (RuntimeError, KeyError, CheckpointError) as exc:
        raise PredictError(
            f"{ckpt_path} does not fit the features of {data_dir} (visual {meta.config.visual} {meta.visual_dim}-d, "
            f"audio {meta.config.audio} {meta.audio_dim}-d): was the run trained on other backbones? ({exc})"[:900]
        ) from None
    model.eval()
    extractor = Extractor(meta.config)
    names = list(data.class_names)
    label = f"run:{run_dir.name}"
    if model.task == "dense":
        return lambda path: _predict_dense(model, extractor, meta, cfg, names, Path(path), dev, label)
    if meta.config.format != "ave":
        raise PredictError(f"{data_dir}: an AVE run needs features in the ave layout, not {meta.config.format!r}")
    return lambda path: _predict_ave(model, extractor, names, Path(path), dev, label)


@torch.no_grad()
def _predict_ave(model, extractor, names: list[str], path: Path, dev: torch.device, method: str) -> VideoPrediction:
    from avloc.media.decode import decode_audio, probe

    info = probe(path)
    seconds = max(1, int(np.floor(info.duration + 0.5)))
    starts, where = ave_windows(seconds)
    wave = decode_audio(path, extractor.audio.sample_rate, []) if info.has_audio else None
    feats = [_ave_features(extractor, path, wave, s) for s in starts]
    batch = {"audio": torch.from_numpy(np.stack([a for a, _ in feats])).to(dev),  # (W, 10, Da)
             "visual": torch.from_numpy(np.stack([v for _, v in feats])).to(dev)}  # (W, 10, g, g, Dv)
    out = step_outputs(model, batch)
    labels = out["labels"].cpu().numpy()[where[:, 0], where[:, 1]]  # (S,)
    conf = out["confidence"].cpu().numpy()[where[:, 0], where[:, 1]]  # (S,)
    events_cls = names[:-1]  # the last class is background
    onehot = labels[:, None] == np.arange(len(events_cls))[None, :]  # (S, C - 1)
    scores = np.where(onehot, conf[:, None], 0.0)  # (S, C - 1)
    events = runs_to_events(onehot, scores, 1.0, events_cls, "av", info.duration)
    notes = [] if info.has_audio else ["no audio track: the audio features are zeros"]
    return VideoPrediction(path.stem, path, info.duration, method, events.sorted(),
                           [ScoreTrack("av", events_cls, scores, 1.0)], notes=notes)


@torch.no_grad()
def _predict_dense(model, extractor, meta, cfg, names: list[str], path: Path, dev: torch.device,
                   method: str) -> VideoPrediction:
    from avloc.evaluation.proposals import ProposalConfig, generate_proposals
    from avloc.media.extract import features_for_video
    from avloc.registry import build_dataclass

    audio, visual, seconds = features_for_video(path, meta, extractor)  # (T, Da), (T, Dv)
    c = meta.config
    step, offset = c.stride, c.window / 2  # step i covers [i * stride, i * stride + window): centre +window/2
    t = len(audio)
    batch = {"audio": torch.from_numpy(audio)[None].to(dev), "visual": torch.from_numpy(visual)[None].to(dev),
             "mask": torch.ones(1, t, dtype=torch.bool, device=dev),
             "video_labels": torch.zeros(1, len(names), device=dev), "index": torch.zeros(1, dtype=torch.long)}
    out = step_outputs(model, batch)
    ev_cfg = cfg.eval  # the run's typed evaluator Config
    prop_cfg = build_dataclass(ProposalConfig, {k: getattr(ev_cfg, k) for k in ProposalConfig.__dataclass_fields__})
    seg = generate_proposals(out["cas"].cpu(), out["video_probs"].cpu(), np.array([t]), np.array([step]),
                             np.array([offset]), np.array([seconds]), prop_cfg)
    events = Events(np.asarray(names)[seg.label], seg.start, seg.end, seg.score, np.full(len(seg), "av"))
    scores = out["cas"][0].cpu().numpy()  # (T, C)
    return VideoPrediction(path.stem, path, seconds, method, events.sorted(),
                           [ScoreTrack("av", names, scores, step)])
