"""What every benchmark in bench/ shares: sections of figures, the table, the closing JSON line.

A benchmark is a list of sections. Each measures something against a baseline run in the same
process and returns its rows (for people), its figures and targets (for scripts), or the reason
it was skipped. The last line of output is always one JSON object:
{"bench": NAME, "figures": {...}, "targets": {...}, "met": true|false}; a target is met when its
figure is at least the target, and only measured sections contribute targets. A target named
NAME_max is a ceiling instead: met when the figure NAME is at most the target.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from rich.console import Console
from rich.table import Table

progress = Console(stderr=True)
CEILING = "_max"  # a target's name ending: its figure must not exceed it


@dataclass
class Section:
    title: str
    rows: list[tuple[str, str, str]] = field(default_factory=list)  # what, figure, baseline/note
    figures: dict[str, float] = field(default_factory=dict)
    targets: dict[str, float] = field(default_factory=dict)
    skipped: str | None = None

    def row(self, what: str, figure: str, note: str = "") -> None:
        self.rows.append((what, figure, note))


def run(name: str, sections: Sequence[Callable[[], Section]]) -> bool:
    """Run each section in turn, print the table and the JSON line; True if all targets met."""
    done: list[Section] = []
    for section in sections:
        started = time.perf_counter()
        result = section()
        progress.log(f"{result.title}: {time.perf_counter() - started:.0f} s")
        done.append(result)
    Console(width=max(Console().width, 110)).print(_table(name, done))
    figures = {k: round(v, 3) for s in done for k, v in s.figures.items()}
    targets = {k: v for s in done for k, v in s.targets.items()}
    met = all(_met(figures, k, v) for k, v in targets.items())
    print(json.dumps({"bench": name, "figures": figures, "targets": targets, "met": met}))
    return met


def _met(figures: dict[str, float], name: str, target: float) -> bool:
    if name.endswith(CEILING):
        return figures.get(name.removesuffix(CEILING), float("inf")) <= target
    return figures.get(name, 0.0) >= target


def _table(name: str, sections: Sequence[Section]) -> Table:
    table = Table(title=f"bench: {name}", title_justify="left")
    table.add_column("measured")
    table.add_column("figure", justify="right")
    table.add_column("baseline / note")
    for section in sections:
        table.add_section()
        table.add_row(f"[bold]{section.title}[/bold]", "", "")
        if section.skipped:
            table.add_row("  skipped", "", section.skipped)
        for what, figure, note in section.rows:
            table.add_row(f"  {what}", figure, note)
    return table


def verdict(figure: float, target: float) -> str:
    return f"target ≥ {target:g}: {'met' if figure >= target else 'MISSED'}"


def ceiling_verdict(figure: float, ceiling: float) -> str:
    return f"target ≤ {ceiling:g}: {'met' if figure <= ceiling else 'MISSED'}"
