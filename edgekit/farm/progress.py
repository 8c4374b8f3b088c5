"""What a matrix is doing: cells done, running, failed and queued, by target.

On a terminal, a live table (rich) with the latest events above it; else
one plain line per event, so a log file or CI output reads top to bottom.
"""

from __future__ import annotations

import sys
from collections import Counter

from edgekit.farm.matrix import Cell, Dropped

STATES = ("done", "running", "failed", "queued")


class Progress:
    def __init__(self, cells: list[Cell], stream=None):
        self.stream = stream or sys.stdout
        self.total = len(cells)
        self.finished = 0
        self.state = {cell.id: "queued" for cell in cells}
        self.targets = sorted({cell.target for cell in cells})
        self._target = {cell.id: cell.target for cell in cells}
        self._live = None
        if getattr(self.stream, "isatty", lambda: False)():
            try:
                from rich.console import Console
                from rich.live import Live
            except ImportError:  # the plain lines then
                pass
            else:
                console = Console(file=self.stream)
                self._live = Live(self._table(), console=console, auto_refresh=False, transient=False)
                self._live.start()

    def _table(self):
        from rich.table import Table

        table = Table(title=f"{self.finished}/{self.total} cells finished", title_justify="left")
        table.add_column("target")
        for state in STATES:
            table.add_column(state, justify="right")
        counts = {target: Counter() for target in self.targets}
        for cell_id, state in self.state.items():
            counts[self._target[cell_id]][state] += 1
        for target in self.targets:
            table.add_row(target, *(str(counts[target][s] or "") for s in STATES))
        return table

    def _say(self, text: str) -> None:
        if self._live is not None:
            self._live.console.print(text, highlight=False, markup=False)
            self._live.update(self._table(), refresh=True)
        else:
            print(text, file=self.stream, flush=True)

    def _set(self, cell: Cell, state: str) -> None:
        self.state[cell.id] = state
        if self._live is not None:
            self._live.update(self._table(), refresh=True)

    def _count(self) -> str:
        self.finished += 1
        width = len(str(self.total))
        return f"[{self.finished:>{width}}/{self.total}]"

    def dropped(self, cell: Dropped) -> None:
        self._say(f"dropped  {cell.label}: {cell.reason}")

    def skipped(self, cell: Cell) -> None:
        self.state[cell.id] = "done"
        self._say(f"{self._count()} skipped  {cell.label}: already in the registry")

    def started(self, cell: Cell) -> None:
        self._set(cell, "running")

    def done(self, cell: Cell, node: str, seconds: float) -> None:
        self.state[cell.id] = "done"
        self._say(f"{self._count()} done     {cell.label} on node {node} in {seconds:.1f} s")

    def retry(self, cell: Cell, reason: str, attempt: int, retries: int) -> None:
        self._set(cell, "queued")
        self._say(f"retry    {cell.label} ({attempt}/{retries}): {reason}")

    def failed(self, cell: Cell, reason: str) -> None:
        self.state[cell.id] = "failed"
        self._say(f"{self._count()} failed   {cell.label}: {reason}")

    def close(self) -> None:
        if self._live is not None:
            self._live.stop()
            self._live = None
