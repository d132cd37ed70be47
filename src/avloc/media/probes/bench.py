"""``avloc bench backbones``: every feature backbone against its paper's figure, on real labelled media.

Audio backbones: ESC-10 accuracy under the SoundNet paper's protocol (:mod:`avloc.media.probes.esc`), every
tapped layer of a backbone that has a choice of layer. Visual backbones with an ImageNet head: top-1 / top-5
on one photo per ImageNet class for each resize mode (:mod:`avloc.media.probes.imagenet`). A backbone whose
weights are not on this machine (VGGish, VGG-19 without the user's files) is listed as skipped with the reason.
Every network runs as ``avloc extract`` runs it (BatchNorm folded) on each (engine, precision) asked for, the
photos also with each resize precision, and every score is set beside eager float32's (``vs_reference``): the
check that an engine or a precision does not cost accuracy. Results go to ``<out>/backbones.json`` and a markdown table ``<out>/backbones.md``; features are cached in
``<out>/cache/`` so that a second run only refits the classifiers.
"""

from __future__ import annotations

import json
import os
import platform
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from avloc.formats.atomic import write_text_atomic
from avloc.engine.precision import kernel_flags
from avloc.media.backbones import BACKBONES, AudioBackbone, VisualBackbone, create_backbone
from avloc.media.backbones.soundnet import SoundNet8
from avloc.media.engines import EngineNet
from avloc.media.weights import WeightsError

# (backbone, layer or resize mode) -> (figure, where it comes from); ESC-10 accuracy or ImageNet top-1
PUBLISHED: dict[tuple[str, str], tuple[float, str]] = {
    ("soundnet8", "pool5"): (0.922, "Aytar et al. 2016, Table 4 (ESC-10, pool5)"),
    ("efficientnet_lite0", "top1"): (0.751, "TF efficientnet/lite table (ImageNet val, 224 px)"),
}
REFERENCE = ("torch", "fp32", "fp32")  # eager float32, float32 resize: what every other run is compared with
ESC_PROTOCOL = "5-fold CV, 1-s windows, L2-loss linear SVM C=0.01 with bias, decision values averaged per clip"


@dataclass
class BenchSpec:
    """What to measure: folders, which backbones, how many inputs (0 = all), where to write."""

    esc_dir: Path | None
    images_dir: Path | None
    out: Path
    audio: list[str] = field(default_factory=list)  # empty: every registered audio backbone
    visual: list[str] = field(default_factory=list)  # empty: every registered visual backbone
    layers: list[str] = field(default_factory=list)  # empty: every layer of a backbone with a choice of layer
    modes: tuple[str, ...] = ("squash", "center_crop")
    esc_per_class: int = 0
    images: int = 0
    # (engine, precision, resize precision) the networks run with; the resize applies to the photos
    engines: list[tuple[str, str, str]] = field(default_factory=lambda: [REFERENCE])


def _names(kind: type, chosen: list[str]) -> list[str]:
    names = chosen or [n for n in BACKBONES.names() if issubclass(BACKBONES.get(n), kind)]
    for n in names:
        if not issubclass(BACKBONES.get(n), kind):
            raise ValueError(f"backbone '{n}' is not a {kind.__name__}")
    return names


def _engine_net(net: torch.nn.Module, name: str, engine: tuple[str, str, str]) -> EngineNet:
    """The network as ``avloc extract`` runs it: BatchNorm folded, on the given engine and precision."""
    return EngineNet(net, name, engine[0], engine[1])


def _suffix(engine: tuple[str, str, str], with_resize: bool) -> str:
    return f"_{engine[0]}_{engine[1]}" + (f"_{engine[2]}" if with_resize else "")


def _audio_rows(spec: BenchSpec, cache: Path) -> list[dict[str, Any]]:
    from avloc.media.probes.esc import esc_accuracy, list_esc

    clips, _ = list_esc(spec.esc_dir, spec.esc_per_class)
    rows: list[dict[str, Any]] = []
    engines = list(dict.fromkeys((e, p, "fp32") for e, p, _ in spec.engines))  # the resize is for photos
    for name in _names(AudioBackbone, spec.audio):
        choices = getattr(BACKBONES.get(name), "layers", None)
        for layer in [la for la in choices if not spec.layers or la in spec.layers] if choices else [""]:
            row: dict[str, Any] = {"task": "ESC-10 accuracy", "backbone": name, "variant": layer or "-"}
            try:
                backbone = create_backbone(name, layer=layer).fold_batchnorm()
            except WeightsError as exc:
                rows.append({**row, "skipped": str(exc)})
                break
            core = backbone.map_net(layer) if isinstance(backbone, SoundNet8) else backbone
            for engine in engines:
                t0 = time.perf_counter()
                key = f"esc10_{name}" + (f"_{layer}" if layer else "") + _suffix(engine, False)
                res = esc_accuracy(clips, backbone, key, cache, net=_engine_net(core, name, engine))
                ref = PUBLISHED.get((name, layer))
                rows.append({**row, "engine": engine[0], "precision": engine[1], **res,
                             "seconds": round(time.perf_counter() - t0, 1),
                             "published": ref[0] if ref else None, "source": ref[1] if ref else ""})
    return rows


def _visual_rows(spec: BenchSpec, cache: Path) -> list[dict[str, Any]]:
    from avloc.media.probes.imagenet import image_logits, list_images, topk_accuracy

    files, labels, _ = list_images(spec.images_dir, spec.images)
    rows: list[dict[str, Any]] = []
    for name in _names(VisualBackbone, spec.visual):
        try:
            backbone = create_backbone(name).fold_batchnorm()
        except WeightsError as exc:
            rows.append({"task": "ImageNet top-1 / top-5", "backbone": name, "variant": "-", "skipped": str(exc)})
            continue
        backbone.to(memory_format=torch.channels_last)  # as ``avloc extract`` runs it
        for engine in spec.engines:
            net = _engine_net(backbone, name, engine)
            for mode in spec.modes:
                t0 = time.perf_counter()
                key = f"imagenet_{name}_{mode}" + _suffix(engine, True)
                res = topk_accuracy(image_logits(files, backbone, mode, key, cache, net, engine[2]), labels)
                ref = PUBLISHED.get((name, "top1"))
                rows.append({"task": "ImageNet top-1 / top-5", "backbone": name, "variant": mode,
                             "engine": engine[0], "precision": engine[1], "resize_precision": engine[2], **res,
                             "images": len(files), "seconds": round(time.perf_counter() - t0, 1),
                             "published": ref[0] if ref else None, "source": ref[1] if ref else ""})
    return rows


def with_deltas(rows: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """Each scored row with ``vs_reference``: its score minus the eager float32 row of the same task, backbone
    and variant (None where that row was not run), so an engine or precision that costs accuracy shows."""
    def score(r: dict[str, Any]) -> float:
        return r.get("accuracy", r.get("top1"))

    refs = {(r["task"], r["backbone"], r["variant"]): score(r) for r in rows if "skipped" not in r
            and (r["engine"], r["precision"], r.get("resize_precision", "fp32")) == REFERENCE}
    for r in rows:
        if "skipped" not in r:
            ref = refs.get((r["task"], r["backbone"], r["variant"]))
            r["vs_reference"] = None if ref is None else score(r) - ref
    return rows


def machine() -> str:
    """CPU model and torch threads, for the table's caption."""
    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next((ln.split(":", 1)[1].strip() for ln in f if ln.startswith("model name")), cpu)
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} logical CPUs, torch {torch.__version__}, {torch.get_num_threads()} thread(s)"


def run_backbone_bench(spec: BenchSpec) -> dict[str, Any]:
    """Measure, write ``backbones.json`` and ``backbones.md`` under ``spec.out``, and return the report."""
    spec.out.mkdir(parents=True, exist_ok=True)
    cache = spec.out / "cache"
    rows = []
    if spec.esc_dir is not None:
        rows += _audio_rows(spec, cache)
    if spec.images_dir is not None:
        rows += _visual_rows(spec, cache)
    report = {"machine": machine(), "flags": kernel_flags(), "esc_dir": str(spec.esc_dir or ""),
              "images_dir": str(spec.images_dir or ""), "esc_per_class": spec.esc_per_class, "images": spec.images,
              "rows": with_deltas(rows)}
    write_text_atomic(spec.out / "backbones.json", json.dumps(report, indent=1))
    write_text_atomic(spec.out / "backbones.md", markdown_table(report))
    return report


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:.1f}"


def markdown_table(report: dict[str, Any]) -> str:
    """The report as a markdown table beside the published figures (gap = ours - published, points)."""
    lines = ["| task | backbone | layer / resize | engine | ours | vs eager fp32 (pts) | top-5 | published "
             "| gap (pts) | per fold | source |", "|---|---|---|---|---|---|---|---|---|---|---|"]
    for r in report["rows"]:
        if "skipped" in r:  # the full reason (which file, where) is in backbones.json
            lines.append(f"| {r['task']} | {r['backbone']} | {r['variant']} | | skipped: no weights here "
                         "| | | | | | |")
            continue
        ours = r.get("accuracy", r.get("top1"))
        gap = "-" if r.get("published") is None else f"{100 * (ours - r['published']):+.1f}"
        vs = "-" if r.get("vs_reference") is None else f"{100 * r['vs_reference']:+.1f}"
        folds = " ".join(_pct(v) for v in r.get("folds", {}).values()) or "-"
        engine = f"{r['engine']} {r['precision']}" + (", uint8 resize" if r.get("resize_precision") == "uint8" else "")
        lines.append(f"| {r['task']} | {r['backbone']} | {r['variant']} | {engine} | {_pct(ours)} | {vs} "
                     f"| {_pct(r.get('top5'))} | {_pct(r.get('published'))} | {gap} | {folds} | {r.get('source', '')} |")
    lines.append(f"\nMachine: {report['machine']}, flags {' '.join(report.get('flags', []))}. "
                 f"ESC protocol: {ESC_PROTOCOL}.")
    return "\n".join(lines) + "\n"
