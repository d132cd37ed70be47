"""Name -> class registries for models, datasets, losses and evaluators (the bottom layer: imports nothing
of avloc; :mod:`avloc.catalog` imports the built-in classes, which register themselves here).

Every registered class carries its own nested ``Config`` dataclass (typed, documented defaults; fields may
be nested Config dataclasses) and is built from a config *section*: a mapping with a ``name`` key plus any
fields of that ``Config``, or the typed ``Config`` itself. Unknown keys are an error that names the key
and the class, so a typo in a YAML file never trains the wrong thing.
"""

from __future__ import annotations

import dataclasses
import typing
from typing import Any, Callable, Iterator, Mapping, TypeVar

T = TypeVar("T")


class ConfigError(ValueError):
    """A config file, section or key=value override is wrong; the message names what and where."""


class Registry:
    """A name -> class table with a decorator, a lookup that lists the choices, and a factory."""

    def __init__(self, kind: str) -> None:
        self.kind = kind
        self._classes: dict[str, type] = {}
        self._names: dict[type, str] = {}  # Config class -> registered name

    def register(self, name: str) -> Callable[[type[T]], type[T]]:
        def deco(cls: type[T]) -> type[T]:
            if name in self._classes and self._classes[name] is not cls:
                raise KeyError(f"{self.kind} '{name}' is registered twice ({self._classes[name]} and {cls})")
            if not dataclasses.is_dataclass(getattr(cls, "Config", None)):
                raise TypeError(f"{self.kind} '{name}' ({cls.__name__}) needs a nested @dataclass Config")
            if self._names.get(cls.Config, name) != name:  # type: ignore[attr-defined]
                raise TypeError(f"{self.kind} '{name}' shares its Config class with '{self._names[cls.Config]}'"  # type: ignore[attr-defined]
                                "; give it its own (a subclass will do)")
            cls.registered_name = name  # type: ignore[attr-defined]
            self._classes[name] = cls
            self._names[cls.Config] = name  # type: ignore[attr-defined]
            return cls

        return deco

    def get(self, name: str) -> type:
        if name not in self._classes:
            known = ", ".join(sorted(self._classes)) or "none"
            raise ConfigError(f"unknown {self.kind} '{name}'; known: {known}")
        return self._classes[name]

    def names(self) -> list[str]:
        return sorted(self._classes)

    def __contains__(self, name: str) -> bool:
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

    def name_of(self, cfg: Any) -> str:
        """The registered name whose ``Config`` class ``cfg`` is an instance of."""
        if type(cfg) not in self._names:
            raise ConfigError(f"{type(cfg).__qualname__} is the Config of no registered {self.kind}")
        return self._names[type(cfg)]

    def section(self, cfg: Any) -> dict[str, Any]:
        """The YAML form of a typed Config: ``{"name": ..., **fields}`` (nested Configs as mappings)."""
        return {"name": self.name_of(cfg), **dataclasses.asdict(cfg)}

    def create(self, section: Any, *args: Any, **kwargs: Any) -> Any:
        """Instantiate ``section['name']`` with its typed config (plus any extra constructor args);
        ``section`` may also be the typed Config itself."""
        cfg = section if type(section) in self._names else self.config_of(section)
        return self.get(self.name_of(cfg))(cfg, *args, **kwargs)


MODELS = Registry("model")
DATASETS = Registry("dataset")
LOSSES = Registry("loss")
EVALUATORS = Registry("evaluator")


def build_dataclass(cls: type[T], values: Mapping[str, Any], where: str = "") -> T:
    """Instantiate dataclass ``cls`` from ``values``, rejecting unknown keys and coercing simple types."""
    names = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
    unknown = sorted(set(values) - set(names))
    if unknown:
        import difflib

        near = [m for u in unknown for m in difflib.get_close_matches(u, names, n=1)]
        hint = f" (did you mean {', '.join(repr(m) for m in near)}?)" if near else ""
        raise ConfigError(
            f"unknown key(s) {unknown} in {where or cls.__name__}{hint}; valid keys: {sorted(names)}"
        )
    try:
        hints = typing.get_type_hints(cls)
    except (NameError, TypeError):  # an annotation that does not evaluate: no nested groups to find
        hints = {}
    kwargs = {}
    for key, val in values.items():
        here = f"{where}.{key}" if where else key
        nested, optional = _nested_dataclass(hints.get(key))
        if nested is not None:  # a nested Config group: a mapping of its fields (or null when optional)
            if isinstance(val, Mapping):  # over the field's own default group (a model may set other defaults)
                kwargs[key] = build_dataclass(nested, {**_group_defaults(names[key], nested), **val}, where=here)
            elif val is None and optional:
                kwargs[key] = None
            elif isinstance(val, nested):
                kwargs[key] = val
            else:
                raise ConfigError(f"{here} must be a mapping of {nested.__name__} fields"
                                  f"{' or null' if optional else ''}, got {val!r}")
        else:
            kwargs[key] = coerce(val, names[key].type, here)
    try:
        return cls(**kwargs)
    except (TypeError, ValueError) as exc:
        raise ConfigError(f"invalid {where or cls.__name__}: {exc}") from exc


def _group_defaults(f: dataclasses.Field, nested: type) -> dict[str, Any]:
    """The field values of the default a Config gives its nested group ``f`` (empty when it has none)."""
    default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
    if not isinstance(default, nested):
        return {}
    return {g.name: getattr(default, g.name) for g in dataclasses.fields(default)}  # type: ignore[arg-type]


def _nested_dataclass(hint: Any) -> tuple[type | None, bool]:
    """(the dataclass of a ``Group`` or ``Group | None`` annotation, whether None is allowed)."""
    if dataclasses.is_dataclass(hint):
        return hint, False  # type: ignore[return-value]
    args = typing.get_args(hint)
    groups = [a for a in args if dataclasses.is_dataclass(a)]
    if len(groups) == 1 and type(None) in args:
        return groups[0], True
    return None, False


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
