"""``Predictor``: the one face of inference, as ``create_model`` is for models.

    import avloc
    predictor = avloc.Predictor.from_run("runs/avel")        # or .from_file("model.avloc"), .zero_shot()
    pred = predictor.predict("my_video.mp4")                 # a VideoPrediction
    print(pred.events.label, pred.events.start, pred.events.end)

A predictor is built once (weights, backbones, the feature recipe) and then called per video; the CLI verb
``avloc predict`` is this loop plus the report writers.
"""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Callable

from avloc.inference.events import Events, PostProcess, postprocess
from avloc.inference.model_file import TrainedModel, read_model_file, read_run, write_model_file
from avloc.inference.prediction import VideoPrediction


class Predictor:
    """Video path -> ``VideoPrediction`` (events, per-step score tracks, notes), post-processed by ``post``."""

    def __init__(self, detect: Callable[[Path], VideoPrediction], method: str,
                 post: PostProcess | None = None) -> None:
        self._detect = detect
        self.method = method  # "zero-shot" or "run:<name>": written on every report page
        self.post = post or PostProcess()

    @classmethod
    def from_trained(cls, trained: TrainedModel, device: str = "cpu", data: str | Path | None = None,
                     backbones: tuple[str, str] | None = None, post: PostProcess | None = None,
                     engine: str = "auto", precision: str = "fp32", resize_precision: str = "fp32") -> "Predictor":
        """``engine`` / ``precision`` / ``resize_precision`` run the feature backbones (``avloc extract
        --engine``): any engine makes features the model can read."""
        from avloc.inference.trained import TrainedDetector

        detector = TrainedDetector(trained, device, data, backbones, engine, precision, resize_precision)
        return cls(detector, detector.method, post)

    @classmethod
    def from_run(cls, run_dir: str | Path, device: str = "cpu", data: str | Path | None = None,
                 backbones: tuple[str, str] | None = None, post: PostProcess | None = None,
                 engine: str = "auto", precision: str = "fp32", resize_precision: str = "fp32") -> "Predictor":
        """A run folder's val-selected checkpoint; the training data is not needed (``data``, if given, is
        checked to hold features made like the training data's)."""
        return cls.from_trained(read_run(run_dir, data), device, data, backbones, post, engine, precision,
                                resize_precision)

    @classmethod
    def from_file(cls, path: str | Path, device: str = "cpu", backbones: tuple[str, str] | None = None,
                  post: PostProcess | None = None, engine: str = "auto", precision: str = "fp32",
                  resize_precision: str = "fp32") -> "Predictor":
        """A model file written by ``avloc export`` (or :func:`export_run`)."""
        return cls.from_trained(read_model_file(path), device, None, backbones, post, engine, precision,
                                resize_precision)

    @classmethod
    def zero_shot(cls, device: str = "cpu", post: PostProcess | None = None, vocab: str = "ucs",
                  thresholds: str | Path | None = None, engine: str = "auto", precision: str = "fp32",
                  resize_precision: str = "fp32") -> "Predictor":
        """The training-free detector: the sound (aiSFX's UCS Categories; ``vocab="soundnet"``: SoundNet-8's
        ImageNet head as first shipped) x EfficientNet-Lite0 (frames) agreement; ``thresholds``: a file of
        ``avloc zeroshot tune`` (default: the shipped val-chosen values); ``engine``, ``precision`` and
        ``resize_precision`` run the networks as for ``avloc extract``."""
        from avloc.engine.build import resolve_device
        from avloc.inference.sound_vocab import load_vocabulary
        from avloc.inference.zeroshot import ZeroShotConfig, zero_shot_predict
        from avloc.inference.zeroshot_scores import ZeroShotNets

        cfg = ZeroShotConfig.from_file(thresholds, vocab) if thresholds else ZeroShotConfig(vocab)
        cfg = cfg.resolved()  # a bad vocabulary fails here, before the weights load
        nets = ZeroShotNets.from_packages(resolve_device(device), (load_vocabulary(vocab).audio_table,),
                                          engine, precision, resize_precision)
        return cls(lambda path: zero_shot_predict(path, nets, cfg), "zero-shot", post)

    def predict(self, video: str | Path, ground_truth: Events | None = None) -> VideoPrediction:
        """Events of one video; with ``ground_truth`` (e.g. from an annotation file) also its scores."""
        from avloc.inference.video_score import score_video, scored_events

        pred = self._detect(Path(video))
        pred = replace(pred, events=postprocess(pred.events, self.post))
        if ground_truth is not None:
            pred = replace(pred, ground_truth=ground_truth,
                           metrics=score_video(scored_events(pred, ground_truth), ground_truth, pred.duration))
        return pred


def export_run(run_dir: str | Path, out: str | Path, data: str | Path | None = None) -> Path:
    """Write a run folder's val-selected model as one portable file (``avloc export``)."""
    return write_model_file(read_run(run_dir, data), out)
