"""Run a matrix: expand the suite, run its cells on an executor, retry, resume, compare.

    suite ──expand──▶ cells ──(resume: skip cells the registry has)──▶ queue
    queue ──executor──▶ finished ──▶ done (report in the registry)
                             │ lost or failed: again, up to `retries` more times
                             └ device on no node for `unschedulable_after` s: unschedulable

A recipe is converted by one cell at a time: the other cells of that recipe
wait until it is in the store, then run at once, from the cache.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from edgekit.errors import EdgekitError
from edgekit.farm import executors as executors_
from edgekit.farm import suite as suites
from edgekit.farm.matrix import CELL_TAG, Cell, Dropped, expand
from edgekit.farm.progress import Progress

FINISHED = "FINISHED"
POLL_S = 1.0


@dataclass
class CellResult:
    cell: Cell
    status: str  # done, skipped, failed, unschedulable
    report: dict | None = None
    run_id: str | None = None
    reason: str | None = None
    attempts: int = 0
    node: str | None = None  # where it ran


@dataclass
class MatrixResult:
    suite: suites.Suite
    results: list[CellResult] = field(default_factory=list)
    dropped: list[Dropped] = field(default_factory=list)

    def count(self, *statuses: str) -> int:
        return sum(r.status in statuses for r in self.results)

    @property
    def failed(self) -> list[CellResult]:
        return [r for r in self.results if r.status in ("failed", "unschedulable")]

    def summary(self) -> str:
        parts = [f"{len(self.results)} cells: {self.count('done')} done"]
        if self.count("skipped"):
            parts.append(f"{self.count('skipped')} already in the registry")
        if self.count("failed"):
            parts.append(f"{self.count('failed')} failed")
        if self.count("unschedulable"):
            parts.append(f"{self.count('unschedulable')} unschedulable")
        if self.dropped:
            parts.append(f"{len(self.dropped)} dropped as impossible")
        return ", ".join(parts)


def run_matrix(
    suite_path: Path,
    executor: str | object = "local",
    *,
    resume: bool = False,
    registry_uri: str | None = None,
    stream=None,
) -> MatrixResult:
    """Run every cell of the suite; the reports land in the registry as cells finish."""
    from edgekit.pipeline import open_registry

    registry = open_registry(registry_uri)
    registry_uri = registry.uri  # absolute: every worker opens the same registry
    suite = suites.load(Path(suite_path), registry_uri)
    ex = executors_.make(executor, registry_uri, suite.devices) if isinstance(executor, str) else executor
    ex.open()
    try:
        cells, dropped = expand(suite, registry_uri, advertised=ex.advertised())
        result = MatrixResult(suite, dropped=dropped)
        progress = Progress(cells, stream)
        try:
            for cell in dropped:
                progress.dropped(cell)
            _Scheduler(ex, registry, suite, progress, result).run(cells, resume)
        finally:
            progress.close()
    finally:
        ex.close()
    return result


class _Scheduler:
    def __init__(self, ex, registry, suite: suites.Suite, progress: Progress, result: MatrixResult):
        self.ex = ex
        self.registry = registry
        self.suite = suite
        self.progress = progress
        self.result = result

    def _finished_runs(self) -> dict[str, str]:
        """cell id -> the registry run of its finished benchmark."""
        return {
            run["tags"][CELL_TAG]: run["run_id"]
            for run in self.registry.benchmarks_tagged(CELL_TAG)
            if run["status"] == FINISHED
        }

    def run(self, cells: list[Cell], resume: bool) -> None:
        queue: list[Cell] = []
        done = self._finished_runs() if resume and cells else {}
        for cell in cells:
            if cell.id in done:
                self.result.results.append(CellResult(cell, "skipped", run_id=done[cell.id]))
                self.progress.skipped(cell)
            else:
                queue.append(cell)
        stored = {c.recipe_key for c in queue if self.registry.find_artifact(c.recipe_key) is not None}
        converting: set[str] = set()
        in_flight: dict[int, Cell] = {}
        attempts: dict[str, int] = {}
        lacking: dict[str, float] = {}  # cell id -> since when no node advertises its device

        while queue or in_flight:
            resources = self.ex.resources()
            now = time.monotonic()
            for handle, cell in [*((None, c) for c in queue), *in_flight.items()]:
                if not self.ex.missing_device(cell, resources):
                    lacking.pop(cell.id, None)
                    continue
                since = lacking.setdefault(cell.id, now)
                if now - since >= self.suite.unschedulable_after:
                    reason = (
                        f"unschedulable: no node advertises device:{cell.target} "
                        f"(waited {self.suite.unschedulable_after:g} s; attach one with `edgekit agent`)"
                    )
                    if handle is None:
                        queue.remove(cell)
                    else:
                        self.ex.cancel(handle)
                        del in_flight[handle]
                        converting.discard(cell.recipe_key)
                    self._fail(cell, "unschedulable", reason, attempts.get(cell.id, 0) + 1)

            capacity = self.ex.capacity()
            for cell in list(queue):
                if len(in_flight) >= capacity:
                    break
                if cell.id in lacking:
                    continue  # held here rather than left pending on a cluster that cannot run it
                slots = self.ex.device_slots(cell, resources)
                if slots is not None and sum(c.target == cell.target for c in in_flight.values()) >= slots:
                    continue  # its boards are busy: a cell that can run elsewhere goes first
                if cell.recipe_key in converting:
                    continue  # another cell is converting this recipe; this one then runs from the cache
                queue.remove(cell)
                if cell.recipe_key not in stored:
                    converting.add(cell.recipe_key)
                in_flight[self.ex.submit(cell)] = cell
                self.progress.started(cell)

            for finished in self.ex.wait(POLL_S):
                cell = in_flight.pop(finished.handle, None)
                if cell is None:
                    continue
                converting.discard(cell.recipe_key)
                attempts[cell.id] = attempts.get(cell.id, 0) + 1
                if finished.error is None:
                    stored.add(cell.recipe_key)
                    node = finished.result.get("node", "?")
                    self.result.results.append(
                        CellResult(cell, "done", report=finished.result["report"], attempts=attempts[cell.id], node=node)
                    )
                    self.progress.done(cell, node, finished.result.get("seconds", 0.0))
                    continue
                if finished.lost and self._logged_before_lost(cell, attempts[cell.id]):
                    continue
                if attempts[cell.id] <= self.suite.retries:
                    self.progress.retry(cell, finished.error, attempts[cell.id], self.suite.retries)
                    queue.insert(0, cell)
                else:
                    self._fail(cell, "failed", finished.error, attempts[cell.id])

    def _logged_before_lost(self, cell: Cell, attempt: int) -> bool:
        """After a lost attempt: count it done if its report reached the registry, else clear its remains.

        A node can die after the cell logged its report but before the result
        came back; running it again would log it twice. A run left unfinished
        (killed while logging) is deleted, so the registry keeps one report.
        """
        for run in self.registry.benchmarks_tagged(CELL_TAG):
            if run["tags"].get(CELL_TAG) != cell.id:
                continue
            if run["status"] == FINISHED:
                self.result.results.append(CellResult(cell, "done", run_id=run["run_id"], attempts=attempt))
                self.progress.done(cell, "(lost after logging)", 0.0)
                return True
            self.registry.delete_benchmark(run["run_id"])
        return False

    def _fail(self, cell: Cell, status: str, reason: str, attempt: int) -> None:
        self.result.results.append(CellResult(cell, status, reason=reason, attempts=attempt))
        self.progress.failed(cell, reason)


# ------------------------------------------------------------------ the end table


def reports_of(result: MatrixResult, registry) -> list[tuple[Cell, dict]]:
    """Every finished cell's report, in matrix order; cells done earlier are read from the registry."""
    found = []
    for item in result.results:
        if item.status not in ("done", "skipped"):
            continue
        report = item.report
        if report is None and item.run_id is not None:
            report = registry.benchmark_report(item.run_id)
        found.append((item.cell, report))
    return found


def compare_text(found: list[tuple[Cell, dict]]) -> str:
    """One compare table per model: its cells side by side, the first as the baseline."""
    from edgekit import compare

    tables = []
    for model in dict.fromkeys(cell.model for cell, _ in found):
        mine = [(cell, report) for cell, report in found if cell.model == model]
        labels = [f"{cell.target} {cell.backend} {cell.quantization}" for cell, _ in mine]
        comparison = compare.compare([report for _, report in mine], labels)
        tables.append(f"{Path(model).name}\n{compare.render_text(comparison)}")
    return "\n\n".join(tables)


def write_html(found: list[tuple[Cell, dict]], path: Path, title: str) -> None:
    """The whole matrix as one compare page, grouped by target."""
    from edgekit.compare.page import render_html, write_text_atomic
    from edgekit.compare.table import compare

    reports = [report for _, report in found]
    labels = [f"{Path(cell.model).name} {cell.target} {cell.backend} {cell.quantization}" for cell, _ in found]
    write_text_atomic(path, render_html(compare(reports, labels), title, by="target"))


def finish(result: MatrixResult, registry_uri: str | None, echo) -> None:
    """Print the compare tables (and write the page); raise if a cell failed."""
    from edgekit.pipeline import open_registry

    found = reports_of(result, open_registry(registry_uri))
    if found:
        echo("")
        echo(compare_text(found))
        if result.suite.html is not None:
            write_html(found, result.suite.html, f"edgekit matrix {result.suite.path.name}")
            echo(f"wrote {result.suite.html}")
    echo("")
    echo(result.summary())
    if result.failed:
        raise EdgekitError(
            f"{len(result.failed)} of {len(result.results)} cells did not finish: run again with --resume "
            "to retry only those"
        )
