"""Where reports come from: report files on disk, or the benchmark runs in the registry.

Both end as `Source`s (a label for the table, where it came from, the
report), so the comparison never knows which it was given.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
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


@dataclass
class Source:
    label: str
    where: str  # a file path, or runs:/RUN_ID/report.json
    report: dict
    run_id: str | None = None


def from_files(paths: list[Path]) -> list[Source]:
    paths = [Path(p) for p in paths]
    return [Source(label, str(p), load_report(p)) for label, p in zip(_labels(paths), paths)]


def from_registry(ref: str, uri: str | None = None) -> list[Source]:
    """Every benchmark logged in the registry for `name` or `name:version`, oldest first."""
    from edgekit.registry import open_registry

    found = []
    for run_id, report in open_registry(uri).benchmark_reports(ref):
        if not isinstance(report, dict) or report.get("schema") != REPORT_SCHEMA:
            raise EdgekitError(f"run {run_id} of {ref}: its report.json is not an {REPORT_SCHEMA} report")
        found.append(Source(_run_label(report, run_id), f"runs:/{run_id}/report.json", report, run_id))
    if not found:
        raise EdgekitError(f"no benchmark of {ref} in the registry: run `edgekit bench {ref} --target T` first")
    return found


def _run_label(report: dict, run_id: str) -> str:
    """`tflite/int8 1a2b3c4`: what tells runs of one model apart, and the run to find in MLflow."""
    target = report.get("target")
    target_name = target.get("name") if isinstance(target, dict) else None
    parts = [f"{report.get('backend') or '?'}/{report.get('quantization') or '?'}"]
    if target_name:
        parts.append(f"@{target_name}")
    return "".join(parts) + f" {run_id[:7]}"


def on_target(sources: list[Source], target: str) -> list[Source]:
    """The sources benchmarked on `target` (a name or alias); an error lists the targets there are."""
    from edgekit import targets

    name = targets.get(target).name
    kept = [s for s in sources if _target_name(s.report) == name]
    if not kept:
        there = sorted({_target_name(s.report) or "-" for s in sources})
        raise EdgekitError(f"no report was benchmarked on {name}; the reports are from: {', '.join(there)}")
    return kept


def _target_name(report: dict) -> str | None:
    target = report.get("target")
    return target.get("name") if isinstance(target, dict) else target


def pick_baseline(sources: list[Source], baseline: Path | str | None) -> tuple[list[Source], int]:
    """The sources with the baseline in them, and its index.

    A file that is one of the sources stays in place, another file joins first;
    a registry run can be named by its id or a prefix of it.
    """
    if baseline is None:
        return sources, 0
    text = str(baseline)
    runs = [i for i, s in enumerate(sources) if s.run_id and s.run_id.startswith(text)]
    if len(runs) == 1:
        return sources, runs[0]
    if len(runs) > 1:
        raise EdgekitError(f"baseline {text!r} matches {len(runs)} runs: give more of the run id")
    path = Path(baseline)
    files = [i for i, s in enumerate(sources) if not s.run_id and _same_file(Path(s.where), path)]
    if files:
        return sources, files[0]
    labels = _labels([path] + [Path(s.where) for s in sources if not s.run_id])
    return [Source(labels[0], str(path), load_report(path)), *sources], 0


def compare_sources(sources: list[Source], baseline: int = 0) -> Comparison:
    return compare([s.report for s in sources], [s.label for s in sources], baseline=baseline,
                   paths=[s.where for s in sources])


def compare_files(paths: list[Path], baseline: Path | None = None) -> Comparison:
    """Load report files and compare them; `baseline` joins the list (first) unless already in it."""
    sources, index = pick_baseline(from_files(paths), baseline)
    return compare_sources(sources, index)


def _same_file(a: Path, b: Path) -> bool:
    try:
        return a.resolve() == b.resolve()
    except OSError:
        return a == b


def _labels(paths: list[Path]) -> list[str]:
    """File names, or longer paths where two reports share a name."""
    names = [p.name for p in paths]
    return [p.name if names.count(p.name) == 1 else str(p) for p in paths]


