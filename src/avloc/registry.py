"""Name -> class registries for models, datasets, losses and evaluators.

Every registered class carries a nested ``Config`` dataclass (typed, documented defaults) and is built
from a config *section*: a mapping with a ``name`` key plus any fields of that ``Config``. Unknown keys
are an error that names the key and the class, so a typo in a YAML file never trains the wrong thing.
"""

from __future__ import annotations

import dataclasses
import importlib
from typing import Any, Callable, Iterator, Mapping, TypeVar

T = TypeVar("T")

# Modules whose import registers the built-in classes; imported lazily so `import avloc` stays cheap.
_BUILTIN_MODULES = (
    "avloc.models",
    "avloc.losses",
    "avloc.data",
    "avloc.evaluation.segments",
    "avloc.evaluation.dense_map",
)


class ConfigError(ValueError):
    """A config file, section or key=value override is wrong; the message names what and where."""


def load_builtins() -> None:
    """Import the packages whose modules register the built-in models, datasets, losses, evaluators."""
    for mod in _BUILTIN_MODULES:
        importlib.import_module(mod)


class Registry:
    """A name -> class table with a decorator, a lookup that lists the choices, and a factory."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, type] = {}

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def deco(cls: type[T]) -> type[T]:
            if name in self._classes and self._classes[name] is not cls:
                raise KeyError(f"{self.kind} '{name}' is registered twice ({self._classes[name]} and {cls})")
            if not dataclasses.is_dataclass(getattr(cls, "Config", None)):
                raise TypeError(f"{self.kind} '{name}' ({cls.__name__}) needs a nested @dataclass Config")
            cls.registered_name = name  # type: ignore[attr-defined]
            self._classes[name] = cls
            return cls

        return deco

    def get(self, name: str) -> type:
        load_builtins()
        if name not in self._classes:
            known = ", ".join(sorted(self._classes)) or "none"
            raise ConfigError(f"unknown {self.kind} '{name}'; known: {known}")
        return self._classes[name]

    def names(self) -> list[str]:
        load_builtins()
        return sorted(self._classes)

    def __contains__(self, name: str) -> bool:
        load_builtins()
        return name in self._classes

    def __iter__(self) -> Iterator[str]:
        return iter(self.names())

    def config_of(self, section: Mapping[str, Any]) -> Any:
        """Build the typed ``Config`` of ``section['name']`` from the section's other keys (strict)."""
        if "name" not in section:
            raise ConfigError(f"{self.kind} section needs a 'name' (one of: {', '.join(self.names())})")
        cls = self.get(section["name"])
        fields = {k: v for k, v in section.items() if k != "name"}
        return build_dataclass(cls.Config, fields, where=f"{self.kind} '{section['name']}'")

    def create(self, section: Mapping[str, Any], *args: Any, **kwargs: Any) -> Any:
        """Instantiate ``section['name']`` with its typed config (plus any extra constructor args)."""
        cfg = self.config_of(section)
        return self.get(section["name"])(cfg, *args, **kwargs)


MODELS = Registry("model")
DATASETS = Registry("dataset")
LOSSES = Registry("loss")
EVALUATORS = Registry("evaluator")


def build_dataclass(cls: type[T], values: Mapping[str, Any], where: str = "") -> T:
    """Instantiate dataclass ``cls`` from ``values``, rejecting unknown keys and coercing simple types."""
    names = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(names))
    if unknown:
        raise ConfigError(
            f"unknown key(s) {unknown} in {where or cls.__name__}; valid keys: {sorted(names)}"
        )
    kwargs = {}
    for key, val in values.items():
        kwargs[key] = coerce(val, names[key].type, f"{where}.{key}" if where else key)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid {where or cls.__name__}: {exc}") from exc


_SCALARS = {"int": int, "float": float, "str": str, "bool": bool}


def coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check (and gently convert, e.g. int -> float) a config value against its annotation string."""
    ann = annotation if isinstance(annotation, str) else getattr(annotation, "__name__", str(annotation))
    ann = ann.replace("typing.", "")
    if ann in _SCALARS:
        typ = _SCALARS[ann]
        if typ is float and isinstance(value, (int, float)) and not isinstance(value, bool):
            return float(value)
        if typ is float and isinstance(value, str):
            try:
                return float(value)
            except ValueError:
                pass
        if isinstance(value, typ) and not (typ is int and isinstance(value, bool)):
            return value
        raise ConfigError(f"{where} must be {ann}, got {value!r} ({type(value).__name__})")
    if ann.startswith(("list[", "tuple[")):
        if not isinstance(value, (list, tuple)):
            raise ConfigError(f"{where} must be a list, got {value!r}")
        inner = ann[ann.index("[") + 1 : -1].split(",")[0].strip()
        return [coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
    return value  # Optional / unions / dicts: accepted as given
