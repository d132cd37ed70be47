"""Run configuration: typed defaults, small YAML files over them, dotted ``key=value`` overrides.

A run config has one fixed section, ``train`` (:class:`TrainConfig`), and four *named* sections --
``model``, ``loss``, ``data`` and ``eval`` -- each a mapping whose ``name`` picks a registered class and
whose other keys are that class's ``Config`` fields. :func:`resolve` fills every default in, so the
``config.yaml`` written into a run folder is complete and re-runnable on its own.
"""

from __future__ import annotations

import copy
import dataclasses
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import yaml

from avloc.registry import DATASETS, EVALUATORS, LOSSES, MODELS, ConfigError, Registry, build_dataclass


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
    eval_every: int = 1  # evaluate val and test every this many epochs (and always after the last)
    eval_batch_size: int = 32  # videos per evaluation forward pass (small batches: fast on CPU, low peak RSS)
    device: str = "auto"  # auto | cpu | cuda | cuda:N
    precision: str = "fp32"  # fp32 | bf16 (autocast; losses stay fp32)
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
    """A fully resolved run config: every named section holds all fields of its class's Config."""

    model: dict[str, Any]
    loss: dict[str, Any]
    data: dict[str, Any]
    eval: dict[str, Any]
    train: TrainConfig

    def to_dict(self) -> dict[str, Any]:
        return {
            "model": dict(self.model),
            "loss": dict(self.loss),
            "data": dict(self.data),
            "eval": dict(self.eval),
            "train": dataclasses.asdict(self.train),
        }


def parse_overrides(items: list[str] | None) -> dict[str, Any]:
    """Turn ``["train.lr=3e-4", "model.thr=0.1"]`` into a nested dict; values are parsed as YAML."""
    out: dict[str, Any] = {}
    for item in items or []:
        if "=" not in item:
            raise ConfigError(f"override {item!r} is not of the form section.key=value")
        key, raw = item.split("=", 1)
        parts = key.strip().split(".")
        if len(parts) != 2 or not all(parts):
            raise ConfigError(f"override key {key!r} must be section.key (e.g. train.lr=1e-4)")
        out.setdefault(parts[0], {})[parts[1]] = yaml.safe_load(raw) if raw != "" else ""
    return out


def merge(base: Mapping[str, Any], upd: Mapping[str, Any]) -> dict[str, Any]:
    """Two-level merge (sections then keys); changing a section's ``name`` drops its old keys."""
    out = copy.deepcopy(dict(base))
    for sec, vals in upd.items():
        if not isinstance(vals, Mapping):
            raise ConfigError(f"section '{sec}' must be a mapping, got {vals!r}")
        cur = dict(out.get(sec) or {})
        if "name" in vals and cur.get("name") not in (None, vals["name"]):
            cur = {}
        cur.update(vals)
        out[sec] = cur
    return out


def resolve(raw: Mapping[str, Any], where: str = "config") -> Config:
    """Validate a raw nested dict against the typed defaults and return the complete Config."""
    unknown = sorted(set(raw) - set(SECTIONS) - {"train"})
    if unknown:
        raise ConfigError(f"unknown section(s) {unknown} in {where}; valid: {sorted([*SECTIONS, 'train'])}")
    full = merge(DEFAULT_SECTIONS, {k: v for k, v in raw.items() if k in SECTIONS})
    sections: dict[str, dict[str, Any]] = {}
    for sec, reg in SECTIONS.items():
        typed = reg.config_of(full[sec])
        sections[sec] = {"name": full[sec]["name"], **dataclasses.asdict(typed)}
    train = build_dataclass(TrainConfig, raw.get("train") or {}, where=f"{where}: train")
    return Config(train=train, **sections)


def load_config(path: str | Path | None, overrides: list[str] | None = None) -> Config:
    """Read a YAML config (or start from defaults when ``path`` is None) and apply overrides."""
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
    raw = merge(raw, parse_overrides(overrides))
    return resolve(raw, where=where)


def save_config(cfg: Config, path: str | Path) -> None:
    Path(path).write_text(yaml.safe_dump(cfg.to_dict(), sort_keys=False))
