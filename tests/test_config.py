"""Typed config: defaults, YAML files, overrides, strict unknown-key errors, complete resolved configs."""

from __future__ import annotations

from dataclasses import dataclass

import pytest
import yaml

from avloc.config import TrainConfig, load_config, merge, parse_overrides, resolve, save_config
from avloc.tools.paths import configs_dir
from avloc.registry import MODELS, ConfigError, Registry, build_dataclass


@dataclass
class _Cfg:
    a: int = 1
    b: float = 0.5
    c: list[int] = None  # type: ignore[assignment]
    d: str = "x"


def test_build_dataclass_coerces_and_rejects():
    cfg = build_dataclass(_Cfg, {"a": 3, "b": 2, "c": [1, 2], "d": "y"})
    assert cfg.b == 2.0 and isinstance(cfg.b, float) and cfg.c == [1, 2]
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['e'\]"):
        build_dataclass(_Cfg, {"e": 1}, where="model 'x'")
    with pytest.raises(ConfigError, match="a must be int"):
        build_dataclass(_Cfg, {"a": "three"})
    with pytest.raises(ConfigError, match="must be int"):
        build_dataclass(_Cfg, {"a": True})
    with pytest.raises(ConfigError, match=r"c\[1\] must be int"):
        build_dataclass(_Cfg, {"c": [1, "x"]})
    assert build_dataclass(_Cfg, {"b": "3e-4"}).b == pytest.approx(3e-4)


def test_parse_overrides_and_merge():
    ov = parse_overrides(["train.lr=3e-4", "model.name=vscg", "train.lr_decay_epochs=[5, 9]"])
    assert ov == {"train": {"lr": "3e-4", "lr_decay_epochs": [5, 9]}, "model": {"name": "vscg"}}
    with pytest.raises(ConfigError, match="section.key"):
        parse_overrides(["lr=3"])
    with pytest.raises(ConfigError, match="not of the form"):
        parse_overrides(["train.lr"])
    # changing a section's name drops the old section's keys
    assert merge({"model": {"name": "a", "x": 1}}, {"model": {"name": "b"}}) == {"model": {"name": "b"}}
    assert merge({"model": {"name": "a", "x": 1}}, {"model": {"y": 2}}) == {"model": {"name": "a", "x": 1, "y": 2}}


def test_defaults_resolve_completely():
    cfg = load_config(None)
    assert cfg.train == TrainConfig()
    model_fields = MODELS.config_of({"name": cfg.model["name"]})
    assert set(cfg.model) == {"name", *vars(model_fields)}


def test_unknown_section_and_key_errors(tmp_path):
    p = tmp_path / "c.yaml"
    p.write_text(yaml.safe_dump({"modle": {"name": "psp"}}))
    with pytest.raises(ConfigError, match="unknown section"):
        load_config(p)
    p.write_text(yaml.safe_dump({"train": {"epoch": 3}}))
    with pytest.raises(ConfigError, match=r"unknown key\(s\) \['epoch'\]"):
        load_config(p)
    with pytest.raises(ConfigError, match="unknown model 'nope'"):
        load_config(None, ["model.name=nope"])
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "missing.yaml")
    p.write_text("train: [1, 2")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(p)
    with pytest.raises(ConfigError, match="precision"):
        load_config(None, ["train.precision=fp8"])


def test_saved_config_round_trips(tmp_path):
    cfg = load_config(None, ["train.lr=0.01", "train.epochs=7"])
    save_config(cfg, tmp_path / "config.yaml")
    again = load_config(tmp_path / "config.yaml")
    assert again.to_dict() == cfg.to_dict()
    assert again.train.lr == 0.01


@pytest.mark.parametrize("path", sorted(p.relative_to(configs_dir()) for p in configs_dir().rglob("*.yaml")),
                         ids=str)
def test_every_shipped_config_resolves(path):
    cfg = resolve(yaml.safe_load((configs_dir() / path).read_text()), where=str(path))
    assert cfg.model["name"] in MODELS


def test_registry_requires_config_and_rejects_duplicates():
    reg = Registry("thing")

    with pytest.raises(TypeError, match="Config"):
        @reg.register("bad")
        class Bad:  # noqa: F841
            pass

    @reg.register("ok")
    class Ok:
        @dataclass
        class Config:
            n: int = 2

        def __init__(self, cfg):
            self.cfg = cfg

    assert reg.create({"name": "ok", "n": 5}).cfg.n == 5
    with pytest.raises(KeyError, match="twice"):
        @reg.register("ok")
        class Other:  # noqa: F841
            @dataclass
            class Config:
                pass
    with pytest.raises(ConfigError, match="needs a 'name'"):
        reg.create({"n": 1})
