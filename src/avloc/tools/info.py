"""``avloc info MODEL``: what a registered model holds, parameter by parameter group."""

from __future__ import annotations

from avloc.config import parse_overrides
from avloc.catalog import MODELS


def model_info(name: str, overrides: list[str] | None = None) -> str:
    """Parameter count in total and per top-level block, with the model's resolved config."""
    fields = parse_overrides([f"model.{o}" for o in overrides or []]).get("model", {})
    model = MODELS.create({"name": name, **fields})
    lines = [f"model {name} (task {model.task}): {model.num_parameters():,} parameters"]
    for child_name, child in model.named_children():
        n = sum(p.numel() for p in child.parameters())
        lines.append(f"  {child_name:<24} {n:>12,}")
    lines.append(f"config: {model.cfg if hasattr(model, 'cfg') else ''}")
    return "\n".join(lines)
