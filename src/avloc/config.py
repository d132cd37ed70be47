"""Run configuration: typed defaults, small YAML files over them, dotted ``key=value`` overrides.

A run config has one fixed section, ``train`` (:class:`TrainConfig`), and four *named* sections --
``model``, ``loss``, ``data`` and ``eval``. In YAML each is a mapping whose ``name`` picks a registered
class and whose other keys are that class's ``Config`` fields (a nested Config is a nested mapping).
:func:`resolve` validates them once and returns a :class:`Config` holding the typed section objects
themselves (``cfg.model`` *is* the model's Config); ``to_dict`` gives the complete YAML form back, so the
``config.yaml`` written into a run folder is re-runnable on its own.
"""

from __future__ import annotations

import copy
import dataclasses
import typing
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from avloc.catalog import DATASETS, EVALUATORS, LOSSES, MODELS
from avloc.registry import ConfigError, Registry, build_dataclass


@dataclass
class TrainConfig:
    """Optimisation and run-control settings shared by every method."""

    epochs: int = 300  # passes over the training split
    batch_size: int = 128  # global batch (split evenly over distributed ranks)
    lr: float = 1e-3  # Adam learning rate
    weight_decay: float = 0.0  # Adam weight decay
    lr_decay_epochs: list[int] = field(default_factory=lambda: [60, 120])  # 1-indexed epochs after which lr *= lr_gamma
    lr_gamma: float = 0.8  # multiplicative LR decay at each of lr_decay_epochs
    grad_clip: float = 0.0  # max global grad norm; 0 disables clipping
    drop_last: bool = True  # drop the last incomplete batch (official AVE code: 3339 // 128 batches)
    seed: int = 123  # seeds shuffling, init and dropout; same seed -> same numbers on CPU
    init_seed: int | None = None  # seeds the initial weights alone (then dropout restarts from seed); None: seed
    eval_every: int = 1  # evaluate val and test every this many epochs (and always after the last)
    eval_batch_size: int = 32  # videos per evaluation forward pass (small batches: fast on CPU, low peak RSS)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "fp32"  # fp32 | bf16 autocast (losses fp32); slow on CPUs without avx512_bf16/AMX
    threads: int = 0  # torch CPU threads; 0 keeps torch's default
    progress: bool = True  # progress bar when stdout is a terminal (never in CI)

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1 or self.eval_every < 1:
            raise ValueError("epochs, batch_size and eval_every must be >= 1")
        if self.precision not in ("fp32", "bf16"):
            raise ValueError(f"precision must be fp32 or bf16, got {self.precision!r}")


# The named sections and the registry that resolves each.
SECTIONS: dict[str, Registry] = {"model": MODELS, "loss": LOSSES, "data": DATASETS, "eval": EVALUATORS}
DEFAULT_SECTIONS: dict[str, dict[str, Any]] = {
    "model": {"name": "psp"},
    "loss": {"name": "psp"},
    "data": {"name": "ave"},
    "eval": {"name": "ave_accuracy"},
}


@dataclass
class Config:
    """A resolved run config: each named section is the typed ``Config`` of its registered class."""

    model: Any
    loss: Any
    data: Any
    eval: Any
    train: TrainConfig

    def name(self, section: str) -> str:
        """The registered name of a named section, e.g. ``cfg.name("model") == "psp"``."""
        return SECTIONS[section].name_of(getattr(self, section))

    def to_dict(self) -> dict[str, Any]:
        """The YAML form: ``{"model": {"name": ..., **fields}, ..., "train": {...}}``."""
        return {**{sec: reg.section(getattr(self, sec)) for sec, reg in SECTIONS.items()},
                "train": dataclasses.asdict(self.train)}


def with_data_dims(cfg: Config, dims: Mapping[str, Any]) -> Config:
    """A copy of ``cfg`` whose model Config takes the dims the data fixes (feature sizes, class count)
    wherever it has such a field."""
    fields = {f.name for f in dataclasses.fields(cfg.model)}
    model = dataclasses.replace(cfg.model, **{k: v for k, v in dims.items() if k in fields})
    return dataclasses.replace(cfg, model=model)


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """Turn ``["train.lr=3e-4", "model.escm.mode=weak"]`` into a nested dict; values are parsed as YAML."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form section.key=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) < 2 or not all(parts):
            raise ConfigError(f"override key {key!r} must be section.key (e.g. train.lr=1e-4)")
        node = out
        for part in parts[:-1]:
            node = node.setdefault(part, {})
            if not isinstance(node, dict):
                raise ConfigError(f"override {item!r} sets a key inside {part!r}, which has a value")
        node[parts[-1]] = yaml.safe_load(raw) if raw != "" else ""
    return out


def _merge_fields(base: Mapping[str, Any], upd: Mapping[str, Any]) -> dict[str, Any]:
    out = dict(base)
    for key, val in upd.items():
        old = out.get(key)
        out[key] = _merge_fields(old, val) if isinstance(old, Mapping) and isinstance(val, Mapping) else val
    return out


def merge(base: Mapping[str, Any], upd: Mapping[str, Any]) -> dict[str, Any]:
    """Merge sections then keys (nested groups key by key); changing a section's ``name`` drops its old keys."""
    out = copy.deepcopy(dict(base))
    for sec, vals in upd.items():
        if not isinstance(vals, Mapping):
            raise ConfigError(f"section '{sec}' must be a mapping, got {vals!r}")
        cur = dict(out.get(sec) or {})
        if "name" in vals and cur.get("name") not in (None, vals["name"]):
            cur = {}
        out[sec] = _merge_fields(cur, vals)
    return out


def _upgrade_flat_escm(model: Mapping[str, Any]) -> dict[str, Any]:
    """Model sections written before ESCM became a nested group (``escm: bool`` with ``escm_hidden``,
    ``escm_dropout``, ``escm_kernel``) as the nested form, so older run folders' config.yaml still load."""
    flat = {k: model[k] for k in ("escm_hidden", "escm_dropout", "escm_kernel") if k in model}
    if not flat and not isinstance(model.get("escm"), bool):
        return dict(model)
    out = {k: v for k, v in model.items() if k not in flat}
    group = {k.removeprefix("escm_"): v for k, v in flat.items()}
    out["escm"] = None if out.get("escm") is False else group
    return out


def _upgrade_flat_backbone(model: Mapping[str, Any]) -> dict[str, Any]:
    """Model sections written before the PSP backbone became the nested group ``backbone`` (flat
    ``embed_dim``, ``lstm_hidden``, ``threshold``, ...) as the nested form, so older run folders' config.yaml
    still load."""
    name = model.get("name", DEFAULT_SECTIONS["model"]["name"])
    group = typing.get_type_hints(MODELS.get(name).Config).get("backbone") if name in MODELS else None
    fields = {f.name for f in dataclasses.fields(group)} if dataclasses.is_dataclass(group) else set()
    flat = fields & set(model)
    if not flat:
        return dict(model)
    out = {k: v for k, v in model.items() if k not in flat}
    out["backbone"] = {**(model.get("backbone") or {}), **{k: model[k] for k in flat}}
    return out


def resolve(raw: Mapping[str, Any], where: str = "config") -> Config:
    """Validate a raw nested dict against the typed defaults and return the complete Config."""
    if isinstance(raw.get("model"), Mapping):
        raw = {**raw, "model": _upgrade_flat_backbone(_upgrade_flat_escm(raw["model"]))}
    unknown = sorted(set(raw) - set(SECTIONS) - {"train"})
    if unknown:
        raise ConfigError(f"unknown section(s) {unknown} in {where}; valid: {sorted([*SECTIONS, 'train'])}")
    full = merge(DEFAULT_SECTIONS, {k: v for k, v in raw.items() if k in SECTIONS})
    sections = {sec: reg.config_of(full[sec]) for sec, reg in SECTIONS.items()}
    train = build_dataclass(TrainConfig, raw.get("train") or {}, where=f"{where}: train")
    return Config(train=train, **sections)


def load_config(path: str | Path | None, overrides: list[str] | None = None,
                data_layer: Mapping[str, Any] | None = None, data_layer_from: str = "") -> Config:
    """Read a YAML config (or start from defaults when ``path`` is None) and apply overrides.

    ``data_layer`` (the data section a feature folder describes itself with, read from ``data_layer_from``)
    sits between the file and the overrides: it replaces the file's data keys it names, the overrides still
    win, and a layer for another dataset than the file's is an error naming both.
    """
    raw: dict[str, Any] = {}
    where = "defaults"
    if path is not None:
        p = Path(path)
        if not p.is_file():
            raise ConfigError(f"config file not found: {p}")
        try:
            raw = yaml.safe_load(p.read_text())
        except yaml.YAMLError as exc:
            raise ConfigError(f"{p}: not valid YAML: {exc}") from exc
        if raw is None:  # an empty file would silently train the default model
            raise ConfigError(f"{p}: the config file is empty; name at least the model, loss and data sections")
        if not isinstance(raw, dict):
            raise ConfigError(f"{p}: top level must be a mapping of sections")
        where = str(p)
    if data_layer:
        own = (raw.get("data") or {}).get("name", DEFAULT_SECTIONS["data"]["name"])
        if own != data_layer["name"]:
            raise ConfigError(f"{data_layer_from} describes '{data_layer['name']}' features, but {where} trains "
                              f"on data '{own}'; use a {data_layer['name']} config")
        raw = merge(raw, {"data": dict(data_layer)})
    cfg = resolve(raw, where=where)  # the file (and layer) alone: its mistakes are named as the file's
    if not overrides:
        return cfg
    said = f"the command-line override(s) {' '.join(overrides)}"
    try:
        return resolve(merge(raw, parse_overrides(overrides)), where=said)
    except ConfigError as exc:  # the file resolved: the override is what is wrong, and the message says so
        raise ConfigError(str(exc) if said in str(exc) else f"{said}: {exc}") from None


def save_config(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
