"""Inference engines for the backbones: each installed engine and precision against eager float32, the export
cache (hit, miss, invalidation), the missing-package error and ``auto``'s measured, cached choice."""

from __future__ import annotations

import importlib.util
import json
import sys

import pytest
import torch
from torch import nn

from avloc.media.backbones import create_backbone
from avloc.media.engines import CACHE_ENV, ENGINES, EngineError, EngineNet, cache_dir, installed
from avloc.media.engines import support
from avloc.media.engines.cache import module_digest

FP32_TOL = 1e-4  # relative L2 error of a float32 engine against eager float32 (measured: ~1e-6)
BF16_TOL = 0.1  # bf16 keeps 8 mantissa bits: measured 5e-3 .. 7e-2 here (one frame; real clips: bench fidelity)
CPU = torch.device("cpu")

COMBOS = [pytest.param(e, p, marks=pytest.mark.skipif(not installed(e), reason=f"{e} not installed"))
          for e in ENGINES for p in ("fp32", "bf16")]


def _rel(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a - b).norm() / b.norm())


@pytest.fixture(scope="module")
def nets() -> dict[str, tuple[nn.Module, torch.Tensor]]:
    """Folded pretrained backbones and a small real-shaped input each (a fixed random one)."""
    g = torch.Generator().manual_seed(0)
    eff = create_backbone("efficientnet_lite0").fold_batchnorm()
    blobs = torch.nn.functional.interpolate(torch.rand(1, 3, 6, 8, generator=g), size=(180, 240), mode="bicubic")
    image = (blobs.clamp(0, 1) * 255).to(torch.uint8).permute(0, 2, 3, 1)  # (1, 180, 240, 3): smooth, photo-like
    frames = eff.preprocess(image)  # (1, 3, 224, 224)
    wave = 0.3 * torch.randn(2, 22050, generator=g)  # (2, 0.5 s at 44.1 kHz)
    loop = 0.3 * torch.randn(1, 11 * 22050, generator=g)  # (1, 11 s at 22.05 kHz): SoundNet's shortest window
    return {"efficientnet_lite0": (eff, frames), "aisfx": (create_backbone("aisfx").fold_batchnorm(), wave),
            "soundnet8": (create_backbone("soundnet8").fold_batchnorm(), loop)}


@pytest.mark.parametrize("engine,precision", COMBOS)
@pytest.mark.parametrize("name", ["efficientnet_lite0", "aisfx", "soundnet8"])
def test_every_engine_matches_eager_float32(nets, name, engine, precision):
    if not support.has_precision(engine, precision, CPU):
        with pytest.raises(EngineError, match=precision):
            EngineNet(nets[name][0], name, engine, precision)
        return
    module, x = nets[name]
    with torch.no_grad():
        ref = module(x)
    net = EngineNet(module, name, engine, precision)
    out = net(x)
    assert out.dtype == torch.float32 and out.shape == ref.shape
    err = _rel(out, ref)
    if precision == "fp32":
        assert err < FP32_TOL, err
    else:
        assert 1e-4 < err < BF16_TOL, err  # bf16 really ran (not silently float32), within its rounding
    assert net.describe() == f"{engine} {precision}"


class Tiny(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv1d(1, 4, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x[:, None]).mean(-1)  # (N, 4)


class TinyBackbone(Tiny):
    def engine_parts(self):  # noqa: ANN201
        return (lambda x: x), self


def _onnx_files() -> list[str]:
    return sorted(p.name for p in cache_dir().glob("*.onnx"))


@pytest.mark.parametrize("engine", [e for e in ENGINES if e != "torch" and installed(e)] or
                         [pytest.param("onnxruntime", marks=pytest.mark.skip(reason="no ONNX engine installed"))])
def test_the_export_is_cached_and_a_changed_module_is_never_served_stale(engine, tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    torch.manual_seed(0)
    m = TinyBackbone().eval()
    x = torch.randn(3, 16)  # (N, S)
    first = EngineNet(m, "tiny", engine)(x)
    files = _onnx_files()
    assert len(files) == 1
    stamp = (tmp_path / files[0]).stat().st_mtime_ns
    np_again = EngineNet(m, "tiny", engine)(x)  # hit: same file, not rewritten
    assert _onnx_files() == files and (tmp_path / files[0]).stat().st_mtime_ns == stamp
    torch.testing.assert_close(np_again, first)
    with torch.no_grad():
        m.conv.weight += 1.0  # new weights: a new export, and the new function
    changed = EngineNet(m, "tiny", engine)(x)
    assert len(_onnx_files()) == 2
    torch.testing.assert_close(changed, m(x).detach(), rtol=1e-4, atol=1e-5)
    EngineNet(m, "tiny", engine)(torch.randn(3, 20))  # another input shape: its own export
    assert len(_onnx_files()) == 3
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_tests_never_write_the_users_cache(engine_cache):
    assert cache_dir() == engine_cache  # conftest points CACHE_ENV at a session folder


def test_the_digest_covers_the_class_source(tmp_path, monkeypatch):
    src = tmp_path / "tinymod.py"
    body = "import torch\nclass M(torch.nn.Module):\n    def __init__(self):\n        super().__init__()\n" \
           "        self.w = torch.nn.Parameter(torch.ones(2))\n    def forward(self, x):\n        return x * {}\n"
    monkeypatch.syspath_prepend(str(tmp_path))
    digests = []
    for factor in ("self.w", "self.w + 1"):
        src.write_text(body.format(factor))
        sys.modules.pop("tinymod", None)
        importlib.invalidate_caches()
        digests.append(module_digest(importlib.import_module("tinymod").M()))
    sys.modules.pop("tinymod", None)
    assert digests[0] != digests[1]  # same weights, edited forward: another digest


def test_a_missing_engine_is_a_one_line_error_and_auto_falls_back_to_torch(monkeypatch):
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec",
                        lambda name, *a: None if name in ("onnxruntime", "openvino") else real(name, *a))
    m = TinyBackbone().eval()
    for engine in ("onnxruntime", "openvino"):
        with pytest.raises(EngineError, match=f"pip install {engine}") as err:
            EngineNet(m, "tiny", engine)
        assert "\n" not in str(err.value)
    net = EngineNet(m, "tiny", "auto")
    net(torch.randn(2, 16))
    assert net.describe() == "torch fp32" and not net.timings  # nothing to time: torch alone


def test_without_the_onnx_exporter_the_export_engines_are_missing_and_auto_uses_torch(monkeypatch):
    """onnxruntime / openvino installed but not ``onnx`` (torch's exporter needs it): an explicit engine names
    the package to install, and auto runs torch instead of failing every video."""
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda name, *a: None if name == "onnx" else real(name, *a))
    m = TinyBackbone().eval()
    for engine in ("onnxruntime", "openvino"):
        if real(engine) is not None:
            with pytest.raises(EngineError, match="pip install onnx"):
                EngineNet(m, "tiny", engine)
    net = EngineNet(m, "tiny", "auto")
    net(torch.randn(2, 16))
    assert net.describe() == "torch fp32"


@pytest.mark.skipif(sum(installed(e) for e in ENGINES) < 2, reason="auto needs two engines to choose from")
def test_auto_times_the_engines_once_and_reuses_the_cached_choice(tmp_path, monkeypatch):
    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    torch.manual_seed(0)
    m = TinyBackbone().eval()
    x = torch.randn(2, 16)
    net = EngineNet(m, "tiny", "auto")
    net(x)
    (shape, seconds), = net.timings.items()
    chosen = net.chosen[shape]
    assert set(seconds) == {e for e in ENGINES if installed(e)} and chosen == min(seconds, key=seconds.get)
    table = json.loads((tmp_path / "auto.json").read_text())
    (key, entry), = table.items()
    assert entry["engine"] == chosen and entry["cpu"] and entry["input"] == [2, 16]
    other = next(e for e in seconds if e != chosen)
    table[key]["choice"] = other  # the next process reads the cache instead of timing again
    (tmp_path / "auto.json").write_text(json.dumps(table))
    again = EngineNet(m, "tiny", "auto")
    again(x)
    assert again.chosen[shape] == other and not again.timings
    with torch.no_grad():
        m.conv.weight += 1.0  # a changed module is timed afresh
    fresh = EngineNet(m, "tiny", "auto")
    fresh(x)
    assert fresh.timings and len(json.loads((tmp_path / "auto.json").read_text())) == 2


def test_bad_engine_or_precision_names_the_choices():
    from avloc.media.extract import ExtractConfig

    with pytest.raises(ValueError, match="engine must be one of auto, torch"):
        ExtractConfig(engine="tensorrt")
    with pytest.raises(ValueError, match="fp32, bf16"):
        ExtractConfig(precision="int8")
    with pytest.raises(EngineError, match="CPU only"):
        support.check("openvino", "fp32", torch.device("cuda"))
    assert support.candidates("fp32", torch.device("cuda")) == ["torch"]  # auto keeps torch on a GPU


def test_auto_precision_offers_bf16_only_for_checked_backbones(tmp_path, monkeypatch):
    """``precision="auto"`` times float32 and, for a backbone whose bf16 accuracy was checked and where the
    hardware has bf16 units, bf16 too; the fastest pair runs and says what it is."""
    from avloc.media.backbones.soundnet import SoundNet8

    monkeypatch.setenv(CACHE_ENV, str(tmp_path))
    m = TinyBackbone().eval()
    cpu = torch.device("cpu")
    fp32 = [(e, "fp32") for e in ENGINES if installed(e)]
    bf16 = [(e, "bf16") for e in ENGINES if installed(e) and support.has_precision(e, "bf16", cpu)]
    assert EngineNet(m, "tiny", "auto", "auto").options("auto") == fp32  # never checked: float32 only
    checked = EngineNet(m, "efficientnet_lite0", "auto", "auto")
    assert checked.options("auto") == fp32 + bf16
    assert checked.options("torch") == [o for o in fp32 + bf16 if o[0] == "torch"]
    sn = SoundNet8(SoundNet8.Config(layer="conv7"))
    assert EngineNet(sn, "soundnet8", "torch", "auto").options("torch") == [("torch", "fp32")]  # conv7: unchecked
    assert support.bf16_checked("soundnet8", "pool5") and not support.bf16_checked("soundnet8", "conv7")
    x = torch.randn(2, 16)
    checked(x)
    seconds = next(iter(checked.timings.values()), {})  # nothing timed when there is one pair only
    engine, precision = checked.chosen[(16,)], checked.precisions[(16,)]
    assert checked.describe() == f"{engine} {precision}" and (engine, precision) in fp32 + bf16
    if seconds:
        assert min(seconds, key=seconds.get) == f"{engine} {precision}"
        (entry,) = json.loads((tmp_path / "auto.json").read_text()).values()
        assert (entry["engine"], entry["precision"], entry["asked"]) == (engine, precision, "auto auto")
