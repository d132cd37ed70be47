"""A paper table for ``avloc reproduce``: runs (a shipped config plus overrides) filling cells of rows."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass
class Run:
    """One training configuration of a table, filling ``columns`` (name -> report key) of ``row``."""

    row: str
    config: str
    columns: dict[str, str]
    overrides: list[str] = field(default_factory=list)
    paper: dict[str, float] = field(default_factory=dict)  # column -> the paper's number


@dataclass
class Table:
    """A paper table: its columns, the runs that fill them, and how it prints."""

    name: str
    title: str
    columns: list[str]
    runs: list[Run]
    quick_overrides: list[str] = field(default_factory=list)  # applied with --quick
    scale: float = 100.0  # report values are fractions; printed as percent
    paper_source: str = ""
