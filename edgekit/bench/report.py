"""The benchmark report: one versioned JSON schema for every backend and device.

docs/report.md documents every field. Later backends add fields; the ones
listed here are never renamed or removed within `edgekit.report/1`.
"""

from __future__ import annotations

import json
import os
import tempfile
from pathlib import Path

from edgekit.errors import EdgekitError

SCHEMA = "edgekit.report/1"

TOP_LEVEL = (
    "schema",
    "model",
    "target",
    "backend",
    "quantization",
    "runner",
    "artifact",
    "latency_ms",
    "throughput_ips",
    "memory",
    "accuracy",
    "fidelity",
    "env",
    "created_at",
)
LATENCY = ("count", "mean", "std", "min", "p50", "p90", "p95", "p99", "max", "first", "samples")
ACCURACY = ("dataset", "metric", "value", "n")
FIDELITY = ("reference", "max_abs_err", "mean_abs_err", "cosine", "argmax_agreement")
MCU_MEMORY = ("arena_bytes", "flash_bytes", "ram_bytes")
MEMORY_SCOPES = ("host-process", "device", "device-process")


def problems(report: dict) -> list[str]:
    """Everything that makes `report` not a valid edgekit.report/1 (empty when valid)."""
    found = []
    if report.get("schema") != SCHEMA:
        found.append(f"schema is {report.get('schema')!r}, not {SCHEMA!r}")
    found += [f"missing key '{k}'" for k in TOP_LEVEL if k not in report]
    latency = report.get("latency_ms") or {}
    found += [f"latency_ms: missing '{k}'" for k in LATENCY if k not in latency]
    if latency.get("count") is not None and len(latency.get("samples", [])) != latency["count"]:
        found.append("latency_ms: samples do not number count")
    accuracy = report.get("accuracy")
    if accuracy is not None:
        found += [f"accuracy: missing '{k}'" for k in ACCURACY if k not in accuracy]
        value = accuracy.get("value")
        if not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
            found.append(f"accuracy: value {value!r} is not a fraction in [0, 1]")
    fidelity = report.get("fidelity")
    if fidelity is not None:
        found += [f"fidelity: missing '{k}'" for k in FIDELITY if k not in fidelity]
    memory = report.get("memory")
    if not isinstance(memory, dict):
        found.append("memory: not an object")
        memory = {}
    # reports written before `scope` existed carry `peak_rss_bytes` instead, and stay readable
    scope = memory.get("scope")
    if scope is None and "peak_rss_bytes" not in memory:
        found.append("memory: missing 'scope'")
    elif scope is not None and scope not in MEMORY_SCOPES:
        found.append(f"memory: scope {scope!r} is not one of {', '.join(MEMORY_SCOPES)}")
    if scope == "device" and "peak_rss_bytes" in memory:
        found.append("memory: a device report carries this host's 'peak_rss_bytes'")
    if (report.get("target") or {}).get("kind") == "mcu":
        found += [f"memory: missing '{k}' (an MCU target)" for k in MCU_MEMORY if k not in memory]
    return found


def check(report: dict, where: str = "report") -> dict:
    found = problems(report)
    if found:
        raise EdgekitError(f"{where} is not a valid {SCHEMA} report: {'; '.join(found)}")
    return report


def write(report: dict, path: Path) -> None:
    """Write the report as JSON, atomically: a reader never sees half a report."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as f:
            json.dump(report, f, indent=2)
            f.write("\n")
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def read(path: Path) -> dict:
    path = Path(path)
    try:
        report = json.loads(path.read_text())
    except FileNotFoundError:
        raise EdgekitError(f"report not found: {path}") from None
    except (OSError, ValueError) as exc:
        raise EdgekitError(f"{path} is not a JSON report ({exc})") from None
    if not isinstance(report, dict):
        raise EdgekitError(f"{path} is not a JSON report object")
    return check(report, str(path))
