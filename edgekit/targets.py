"""Targets: the boards and platforms edgekit converts for, from `targets/*.yaml`.

Each descriptor is plain data, validated field by field when loaded, so a typo
in a YAML file is one clear error naming the file and the field rather than a
KeyError deep inside a backend. Loading is cached and imports nothing heavy:
`edgekit targets` and every `--target` lookup go through here.

A host-side target (`host-cpu`, the web runtimes) may say `auto` for the
facts that belong to the machine it runs on (cpu, cores, clock, RAM, arch,
features); those are read from this machine when the file is loaded.
"""

from __future__ import annotations

import functools
import os
import platform
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edgekit.core import QUANTIZATIONS
from edgekit.errors import EdgekitError, UnknownChoiceError
from edgekit.resources import targets_dir

KINDS = ("host", "sbc", "jetson", "mcu", "web")
RUNNERS = ("host", "qemu", "serial", "ssh", "node", "browser")
#: kinds whose descriptors may leave machine facts as `auto`
AUTO_KINDS = ("host", "web")
AUTO = "auto"
#: the keys each flash tool needs, so the firmware code can rely on them
FLASH_TOOL_KEYS = {
    "pyocd": ("target",),
    "arduino-cli": ("fqbn",),
    "esptool": ("chip",),
    "qemu": ("machine",),
}
MEMORY_MAP_KEYS = ("flash_origin", "flash_bytes", "ram_origin", "ram_bytes")

_NAME = re.compile(r"^[a-z0-9][a-z0-9-]*$")
_IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")


class TargetError(EdgekitError):
    """A target descriptor that is malformed; the message names the file and the field."""


@dataclass(frozen=True)
class Target:
    name: str
    description: str
    kind: str
    arch: str
    cpu: str
    cores: int
    clock_mhz: float
    flash_bytes: int | None
    ram_bytes: int
    backends: tuple[str, ...]
    quantization: str
    runner: str
    features: tuple[str, ...] = ()
    memory_map: dict = field(default_factory=dict)
    flash_tool: dict | None = None
    extras: dict = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    source: Path = Path()

    # the dict fields make the generated hash fail; a name and its file identify a target
    def __hash__(self) -> int:
        return hash((self.name, str(self.source)))

    @property
    def is_mcu(self) -> bool:
        return self.kind == "mcu"

    @property
    def default_backend(self) -> str:
        return self.backends[0]

    def to_json(self) -> dict:
        return {
            "name": self.name,
            "description": self.description,
            "kind": self.kind,
            "arch": self.arch,
            "cpu": self.cpu,
            "cores": self.cores,
            "clock_mhz": self.clock_mhz,
            "flash_bytes": self.flash_bytes,
            "ram_bytes": self.ram_bytes,
            "backends": list(self.backends),
            "quantization": self.quantization,
            "runner": self.runner,
            "features": list(self.features),
            "memory_map": dict(self.memory_map),
            "flash_tool": dict(self.flash_tool) if self.flash_tool else None,
            "extras": dict(self.extras),
            "aliases": list(self.aliases),
        }


# ---------------------------------------------------------------- validation


class _Fields:
    """Reads one descriptor's fields, raising TargetError that names file and field."""

    def __init__(self, label: str, data: dict):
        self.label = label
        self.data = data

    def fail(self, name: str, problem: str) -> TargetError:
        return TargetError(f"{self.label}: field '{name}': {problem}")

    @staticmethod
    def got(value: Any) -> str:
        return f"got {value!r}"

    def string(self, name: str, pattern: re.Pattern | None = None) -> str:
        value = self.data[name]
        if not isinstance(value, str) or not value.strip():
            raise self.fail(name, f"must be a non-empty string, {self.got(value)}")
        if pattern is not None and not pattern.match(value):
            raise self.fail(name, f"must match {pattern.pattern}, {self.got(value)}")
        return value

    def choice(self, name: str, choices: tuple[str, ...]) -> str:
        value = self.data[name]
        if value not in choices:
            raise self.fail(name, f"must be one of {', '.join(choices)}, {self.got(value)}")
        return value

    def positive_int(self, name: str, *, allow_none: bool = False) -> int | None:
        value = self.data.get(name)
        if value is None and allow_none:
            return None
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise self.fail(name, f"must be a positive integer, {self.got(value)}")
        return value

    def positive_number(self, name: str) -> float:
        value = self.data[name]
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not value > 0:
            raise self.fail(name, f"must be a positive number, {self.got(value)}")
        return float(value)

    def names(self, name: str, pattern: re.Pattern, *, required: bool) -> tuple[str, ...]:
        value = self.data.get(name, [])
        if value is None:
            value = []
        if not isinstance(value, list):
            raise self.fail(name, f"must be a list, {self.got(value)}")
        if required and not value:
            raise self.fail(name, "must list at least one entry")
        for item in value:
            if not isinstance(item, str) or not pattern.match(item):
                raise self.fail(name, f"entries must match {pattern.pattern}, {self.got(item)}")
        duplicates = sorted({item for item in value if value.count(item) > 1})
        if duplicates:
            raise self.fail(name, f"lists {', '.join(duplicates)} more than once")
        return tuple(value)

    def mapping(self, name: str) -> dict:
        value = self.data.get(name)
        if value is None:
            return {}
        if not isinstance(value, dict):
            raise self.fail(name, f"must be a mapping, {self.got(value)}")
        return value


REQUIRED = (
    "name", "description", "kind", "arch", "cpu", "cores", "clock_mhz",
    "ram_bytes", "backends", "quantization", "runner",
)
OPTIONAL = ("flash_bytes", "features", "memory_map", "flash_tool", "extras", "aliases")


def _label(path: Path) -> str:
    """How an error names the file: `targets/x.yaml` for shipped ones, else the path."""
    path = Path(path)
    try:
        path.resolve().relative_to(targets_dir().resolve())
        return f"targets/{path.name}"
    except ValueError:
        return str(path)


def load_file(path: Path) -> Target:
    """Parse and validate one descriptor."""
    path = Path(path)
    label = _label(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as exc:
        raise TargetError(f"{label}: cannot read ({exc.strerror or exc})") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        problem = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 1}" if mark is not None else ""
        raise TargetError(f"{label}: not valid YAML{where} ({problem})") from None
    if not isinstance(data, dict):
        raise TargetError(f"{label}: must be a mapping of fields, got {type(data).__name__}")
    return _validate(label, path, data)


def _validate(label: str, path: Path, data: dict) -> Target:
    unknown = sorted(str(key) for key in data if key not in REQUIRED + OPTIONAL)
    if unknown:
        raise TargetError(
            f"{label}: unknown field(s) {', '.join(repr(k) for k in unknown)}; "
            f"allowed: {', '.join(REQUIRED + OPTIONAL)}"
        )
    missing = [key for key in REQUIRED if key not in data]
    if missing:
        raise TargetError(f"{label}: missing field(s) {', '.join(repr(k) for k in missing)}")

    f = _Fields(label, data)
    name = f.string("name", _NAME)
    if name != path.stem:
        raise f.fail("name", f"must equal the file name '{path.stem}', {f.got(name)}")
    kind = f.choice("kind", KINDS)
    host_facts = _host_facts(f, kind)

    memory_map = _memory_map(f, kind)
    flash_bytes = f.positive_int("flash_bytes", allow_none=True)
    if kind == "mcu" and flash_bytes is None:
        raise f.fail("flash_bytes", "is required for an MCU target")
    ram_bytes = host_facts["ram_bytes"]
    for size, total in (("flash_bytes", flash_bytes), ("ram_bytes", ram_bytes)):
        if memory_map and memory_map[size] > total:
            raise f.fail(
                "memory_map", f"{size} {memory_map[size]} exceeds the target's {size} {total}"
            )

    runner = f.choice("runner", RUNNERS)
    if kind == "mcu" and runner not in ("qemu", "serial"):
        raise f.fail("runner", f"an MCU target runs over qemu or serial, {f.got(runner)}")

    return Target(
        name=name,
        description=f.string("description"),
        kind=kind,
        arch=host_facts["arch"],
        cpu=host_facts["cpu"],
        cores=host_facts["cores"],
        clock_mhz=host_facts["clock_mhz"],
        flash_bytes=flash_bytes,
        ram_bytes=ram_bytes,
        backends=f.names("backends", _IDENTIFIER, required=True),
        quantization=f.choice("quantization", QUANTIZATIONS),
        runner=runner,
        features=host_facts["features"],
        memory_map=memory_map,
        flash_tool=_flash_tool(f, kind),
        extras=f.mapping("extras"),
        aliases=f.names("aliases", _NAME, required=False),
        source=path,
    )


def _host_facts(f: _Fields, kind: str) -> dict:
    """arch, cpu, cores, clock, RAM and features; `auto` ones read from this machine."""
    readers = {
        "arch": lambda: f.string("arch"),
        "cpu": lambda: f.string("cpu"),
        "cores": lambda: f.positive_int("cores"),
        "clock_mhz": lambda: f.positive_number("clock_mhz"),
        "ram_bytes": lambda: f.positive_int("ram_bytes"),
        "features": lambda: f.names("features", _NAME, required=False),
    }
    auto = [key for key in readers if f.data.get(key) == AUTO]
    if auto and kind not in AUTO_KINDS:
        raise f.fail(auto[0], f"'auto' is only for targets of kind {' or '.join(AUTO_KINDS)}")
    machine = _this_machine() if auto else {}
    return {key: machine[key] if key in auto else read() for key, read in readers.items()}


def _memory_map(f: _Fields, kind: str) -> dict:
    memory_map = f.mapping("memory_map")
    if kind != "mcu":
        if memory_map:
            raise f.fail("memory_map", f"is only for MCU targets (this one is kind '{kind}')")
        return {}
    if not memory_map:
        raise f.fail("memory_map", f"is required for an MCU target: {', '.join(MEMORY_MAP_KEYS)}")
    unknown = sorted(str(k) for k in memory_map if k not in MEMORY_MAP_KEYS)
    missing = [k for k in MEMORY_MAP_KEYS if k not in memory_map]
    if unknown or missing:
        raise f.fail(
            "memory_map",
            f"needs exactly {', '.join(MEMORY_MAP_KEYS)}"
            + (f"; unknown: {', '.join(unknown)}" if unknown else "")
            + (f"; missing: {', '.join(missing)}" if missing else ""),
        )
    checked = {}
    for key in MEMORY_MAP_KEYS:
        value = memory_map[key]
        origin = key.endswith("_origin")
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if origin else 1):
            kind_ = "a non-negative integer address" if origin else "a positive integer"
            raise f.fail(f"memory_map.{key}", f"must be {kind_}, {f.got(value)}")
        checked[key] = value
    flash = range(checked["flash_origin"], checked["flash_origin"] + checked["flash_bytes"])
    ram = range(checked["ram_origin"], checked["ram_origin"] + checked["ram_bytes"])
    if flash.start < ram.stop and ram.start < flash.stop:
        raise f.fail("memory_map", "flash and RAM regions overlap")
    return checked


def _flash_tool(f: _Fields, kind: str) -> dict | None:
    value = f.data.get("flash_tool")
    if value is None:
        if kind == "mcu":
            raise f.fail("flash_tool", "is required for an MCU target")
        return None
    if not isinstance(value, dict):
        raise f.fail("flash_tool", f"must be a mapping with a 'tool' key, {f.got(value)}")
    tool = value.get("tool")
    if tool not in FLASH_TOOL_KEYS:
        raise f.fail("flash_tool.tool", f"must be one of {', '.join(FLASH_TOOL_KEYS)}, {f.got(tool)}")
    for key in FLASH_TOOL_KEYS[tool]:
        if not isinstance(value.get(key), str) or not value[key]:
            raise f.fail(f"flash_tool.{key}", f"{tool} needs a non-empty string, {f.got(value.get(key))}")
    return dict(value)


# ------------------------------------------------------------ this machine


def _normalise_arch(machine: str) -> str:
    machine = machine.lower()
    return {"amd64": "x86_64", "x64": "x86_64", "arm64": "aarch64", "i686": "x86"}.get(
        machine, machine or "unknown"
    )


#: CPU flags worth knowing for inference speed, as /proc/cpuinfo spells them
_CPU_FLAGS = {
    "sse4_2": "sse4-2", "avx": "avx", "avx2": "avx2", "fma": "fma", "f16c": "f16c",
    "avx512f": "avx512f", "avx512_vnni": "avx512-vnni", "avx_vnni": "avx-vnni",
    "amx_int8": "amx-int8", "asimd": "neon", "asimdhp": "fp16", "asimddp": "dotprod",
    "sve": "sve", "i8mm": "i8mm",
}


@functools.cache
def _this_machine() -> dict:
    """Facts about the machine edgekit runs on, for `auto` fields."""
    cpuinfo = _read("/proc/cpuinfo")
    cpu = _cpuinfo_value(cpuinfo, ("model name", "Hardware", "Processor")) or platform.processor()
    flags = set((_cpuinfo_value(cpuinfo, ("flags", "Features")) or "").split())
    return {
        "arch": _normalise_arch(platform.machine()),
        "cpu": cpu or "unknown",
        "cores": os.cpu_count() or 1,
        "clock_mhz": _clock_mhz(cpuinfo),
        "ram_bytes": _ram_bytes(),
        "features": tuple(name for flag, name in _CPU_FLAGS.items() if flag in flags),
    }


def _read(path: str) -> str:
    try:
        return Path(path).read_text(errors="replace")
    except OSError:
        return ""


def _cpuinfo_value(cpuinfo: str, keys: tuple[str, ...]) -> str | None:
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip() in keys and value.strip():
            return value.strip()
    return None


def _clock_mhz(cpuinfo: str) -> float:
    # the rated maximum, not the current (throttled, fluctuating) frequency
    max_khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq").strip()
    if max_khz.isdigit() and int(max_khz) > 0:
        return int(max_khz) / 1000.0
    current = _cpuinfo_value(cpuinfo, ("cpu MHz",))
    try:
        return round(float(current), 1) if current else 1000.0
    except ValueError:
        return 1000.0


def _ram_bytes() -> int:
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return 1 << 30


# ------------------------------------------------------------- catalogue


def load_folder(folder: Path) -> dict[str, Target]:
    """Every `*.yaml` in `folder`, by name; names and aliases must be unique."""
    targets: dict[str, Target] = {}
    owner: dict[str, str] = {}  # name or alias -> file that claims it
    for path in sorted(Path(folder).glob("*.yaml")):
        target = load_file(path)
        for claimed in (target.name, *target.aliases):
            if claimed in owner:
                raise TargetError(
                    f"{_label(path)}: '{claimed}' is already defined by {owner[claimed]}"
                )
            owner[claimed] = _label(path)
        targets[target.name] = target
    return targets


@functools.cache
def _catalogue() -> tuple[dict[str, Target], dict[str, str]]:
    targets = load_folder(targets_dir())
    aliases = {alias: t.name for t in targets.values() for alias in t.aliases}
    return targets, aliases


def names() -> list[str]:
    """Sorted target names (aliases not included)."""
    return sorted(_catalogue()[0])


def get(name: str) -> Target:
    """The target called `name` or one of its aliases, or the descriptor file `name` names (.yaml)."""
    if name.endswith((".yaml", ".yml")) and Path(name).is_file():
        # a user's own descriptor: a board edgekit does not ship, or one that names its device
        return load_file(Path(name))
    targets, aliases = _catalogue()
    resolved = aliases.get(name, name)
    if resolved not in targets:
        raise UnknownChoiceError("target", name, names())
    return targets[resolved]


def all_targets() -> list[Target]:
    targets = _catalogue()[0]
    return [targets[name] for name in sorted(targets)]
