"""A trained model (a run folder's val-selected checkpoint or an exported model file) on new videos.

Features are made exactly as the training data were: the model record keeps the training folder's
``features.json`` recipe (backbones, their settings, the grid). Then, by task:

- AVE runs (10 x 1 s): a video of S seconds is cut into 10-s windows starting at 0, 10, 20, ...; when S is not
  a multiple of 10, one more window ends at S (it overlaps the one before) and gives only the seconds after the
  last full window. A video shorter than 10 s is one window (frames past the end repeat the last frame, audio
  past the end is silence) of which the first S seconds are kept. Each second gets the model's label (the last
  class is background) and a confidence; events are runs of equal non-background labels.
- Dense runs: the whole video on the run's feature grid; the model's ``cas`` is kept as per-step scores and
  the run's proposal post-processing (its evaluator config) gives scored segments in seconds.
- AVVP runs (LLP, 10 x 1 s): the AVE windows, LLP features; per second audio, visual and audio-visual tracks
  and events at the run's thresholds (:mod:`avloc.inference.trained_avvp`).

The model is called through ``step_outputs`` only, so a change of the models' output keys is one edit here.
"""

from __future__ import annotations

from pathlib import Path
from dataclasses import replace

import numpy as np
import torch

from avloc.inference.events import Events, runs_to_events
from avloc.formats.feature_sidecar import META_FILE
from avloc.inference.model_file import TrainedModel
from avloc.inference.prediction import PredictError, ScoreTrack, VideoPrediction
from avloc.inference.windows import AVE_WINDOW, ave_windows, clip_seconds, step_outputs
from avloc.media.extract import FeatureMeta


def _ave_features(extractor, path: Path, wave: np.ndarray | None, start: float) -> tuple[np.ndarray, np.ndarray]:
    """AVE features of the 10 s from ``start``: the recipe of ``Extractor.video`` (16 frames per second through
    the visual backbone, averaged; one audio row per second), shifted in time."""
    from avloc.media.backbones.vgg import ave_audio_starts

    c = extractor.cfg
    times = start + np.arange(AVE_WINDOW * c.frames_per_segment) / c.frames_per_segment  # (160,)
    feats = extractor.frame_features(path, times)  # (160, g, g, Dv)
    visual = feats.view(AVE_WINDOW, c.frames_per_segment, *feats.shape[1:]).mean(1)  # (10, g, g, Dv)
    starts, window = ave_audio_starts(extractor.audio, AVE_WINDOW)
    if wave is None:
        audio = torch.zeros(AVE_WINDOW, extractor.audio.out_dim)
    else:
        audio = extractor.embed_audio(wave, start + starts, window)  # (10, Da)
    return audio.numpy(), visual.numpy()


def feature_meta(trained: TrainedModel, data: Path | None = None,
                 backbones: tuple[str, str] | None = None) -> FeatureMeta:
    """How to make features for ``trained``: the recipe its record kept from the training data. A feature
    folder given as ``data`` must have been made the same way; a model trained on features made elsewhere
    (no recipe recorded) needs the backbones named, on the grid of its data config."""
    from avloc.media.extract import ExtractConfig, Extractor, feature_meta_from_json, read_feature_meta

    rec, cfg = trained.record, trained.cfg
    given = read_feature_meta(data) if data is not None and (data / META_FILE).is_file() else None
    if rec.features is not None:
        meta = feature_meta_from_json(rec.features, f"{trained.source} (model record)")
        if given is not None and given.recipe() != meta.recipe():
            raise PredictError(f"{trained.source} was trained on {meta.describe()} features but {data} holds "
                               f"{given.describe()} features; use features made like the training data")
    elif given is not None:
        meta = given
    elif backbones is None:
        raise PredictError(f"{trained.source}: its features were not made by avloc extract (no features.json "
                           "recorded): name the backbones that made them with --visual NAME --audio NAME")
    elif cfg.name("data") in ("ave", "llp"):
        meta = Extractor(ExtractConfig(format=cfg.name("data"), visual=backbones[0], audio=backbones[1])).meta()
    else:  # the dense grid of the data config: step i covers [i * stride, i * stride + window) s
        d = cfg.data
        meta = Extractor(ExtractConfig(format="unav", visual=backbones[0], audio=backbones[1], fps=d.fps,
                                       stride=d.feat_stride / d.fps, window=d.num_frames / d.fps)).meta()
    made = {"audio_dim": meta.audio_dim, "visual_dim": meta.visual_dim}
    wrong = [k for k in made if getattr(rec, k) != made[k]]
    if wrong:
        raise PredictError(
            f"{trained.source} was trained on {', '.join(f'{k} {getattr(rec, k)}' for k in wrong)} but "
            f"{meta.describe()} features have {', '.join(f'{k} {made[k]}' for k in wrong)}")
    return meta


class TrainedDetector:
    """A trained model and the feature recipe it needs: video path -> VideoPrediction."""

    def __init__(self, trained: TrainedModel, device: str = "cpu", data: str | Path | None = None,
                 backbones: tuple[str, str] | None = None, engine: str = "auto", precision: str = "fp32",
                 resize_precision: str = "fp32") -> None:
        from avloc.catalog import MODELS
        from avloc.engine.build import resolve_device
        from avloc.media.extract import Extractor

        self.dev = resolve_device(device)
        self.meta = feature_meta(trained, Path(data) if data is not None else None, backbones)
        cfg = trained.cfg
        model = MODELS.create(cfg.model)
        if model.task != trained.record.task:
            raise PredictError(f"{trained.source}: model '{cfg.name('model')}' is for task '{model.task}' but "
                               f"the record says '{trained.record.task}'")
        try:
            model.load_state_dict(trained.state)
        except RuntimeError as exc:
            raise PredictError(f"{trained.source}: the weights do not fit model '{cfg.name('model')}' "
                               f"({str(exc)[:300]})") from None
        self.model = model.to(self.dev).eval()
        layout = {"ave": "ave", "avvp": "llp", "dense": "unav"}.get(model.task, model.task)
        if self.meta.config.format != layout:
            raise PredictError(f"{trained.source}: a '{model.task}' model needs features in the {layout} layout, "
                               f"not {self.meta.config.format!r}")
        st_dim = getattr(cfg.model, "st_dim", None)  # AVVP: the third stream is the visual backbone's mean
        if model.task == "avvp" and st_dim != self.meta.visual_dim:
            raise PredictError(f"{trained.source} was trained on a {st_dim}-d third visual stream but "
                               f"{self.meta.describe()} features make a {self.meta.visual_dim}-d one")
        # where and by which engine the backbones run is this machine's choice, not the training data's
        self.extractor = Extractor(replace(self.meta.config, device=str(self.dev), engine=engine, precision=precision,
                                           resize_precision=resize_precision))
        self.cfg, self.names = cfg, list(trained.record.class_names)
        self.method = f"run:{Path(trained.source).name}"

    def __call__(self, path: str | Path) -> VideoPrediction:
        if self.model.task == "dense":
            return _predict_dense(self.model, self.extractor, self.meta, self.cfg, self.names, Path(path),
                                  self.dev, self.method)
        if self.model.task == "avvp":
            from avloc.inference.trained_avvp import predict_avvp

            return predict_avvp(self.model, self.extractor, self.cfg.eval, self.names, Path(path), self.dev,
                                self.method)
        return _predict_ave(self.model, self.extractor, self.names, Path(path), self.dev, self.method)


@torch.no_grad()
def _predict_ave(model, extractor, names: list[str], path: Path, dev: torch.device, method: str) -> VideoPrediction:
    from avloc.media.decode import decode_audio, probe

    info = probe(path)
    seconds = clip_seconds(info.duration)
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
