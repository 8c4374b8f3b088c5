"""Where reports come from: report files on disk."""

from __future__ import annotations

import json
from pathlib import Path

from edgekit.compare.table import Comparison, compare
from edgekit.errors import EdgekitError

#: the report schema this module reads (written by edgekit.bench.report)
REPORT_SCHEMA = "edgekit.report/1"

def load_report(path: Path) -> dict:
    """Read one report; a missing, non-JSON or foreign file is an error naming it."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise EdgekitError(f"{path}: no such report file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise EdgekitError(f"{path}: cannot read the report ({exc})") from None
    try:
        report = json.loads(text)
    except ValueError as exc:
        raise EdgekitError(f"{path}: not JSON ({exc}); pass a report written by `edgekit bench`") from None
    schema = report.get("schema") if isinstance(report, dict) else None
    if schema != REPORT_SCHEMA:
        raise EdgekitError(
            f"{path}: not an edgekit report (schema {schema!r}, expected {REPORT_SCHEMA!r}); "
            "pass a report written by `edgekit bench`"
        )
    return report


def compare_files(paths: list[Path], baseline: Path | None = None) -> Comparison:
    """Load report files and compare them; `baseline` joins the list (first) unless already in it."""
    paths = [Path(p) for p in paths]
    baseline_index = 0
    if baseline is not None:
        baseline = Path(baseline)
        matches = [i for i, p in enumerate(paths) if _same_file(p, baseline)]
        if matches:
            baseline_index = matches[0]
        else:
            paths = [baseline, *paths]
    reports = [load_report(p) for p in paths]
    return compare(reports, _labels(paths), baseline=baseline_index, paths=[str(p) for p in paths])


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return a == b


def _labels(paths: list[Path]) -> list[str]:
    """File names, or longer paths where two reports share a name."""
    names = [p.name for p in paths]
    return [p.name if names.count(p.name) == 1 else str(p) for p in paths]


