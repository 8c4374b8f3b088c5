"""Firmware projects: render a template for an artifact and a target, build it, measure the ELF.

A template is a folder of `firmware_templates/` (format: firmware_templates/README.md).
`render` copies it with `common/` and the artifact's files into a new project
folder, filling `${var}` in `*.in` files from the target and the artifact;
`build` runs the template's build (CMake with the arm-none-eabi toolchain file)
and reads flash and RAM use from the ELF with `arm-none-eabi-size`.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import string
import subprocess
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from edgekit.core import Artifact
from edgekit.errors import EdgekitError, UnknownChoiceError
from edgekit.resources import templates_dir

PROJECT_MANIFEST = "firmware.json"
PROJECT_SCHEMA = "edgekit.firmware/1"
COMMON = "common"
DEFAULT_STACK_BYTES = 16384

# C types of tensor dtypes, for the model glue's pointer casts
_C_TYPES = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "int32": "int32_t", "float32": "float"}


@dataclass(frozen=True)
class Template:
    name: str
    path: Path
    description: str
    backends: tuple[str, ...]
    kinds: tuple[str, ...]
    boards: tuple[str, ...]  # empty: any board of a listed kind
    uarts: tuple[str, ...]  # empty: any; else the target's UART must name one of these
    build: str  # "cmake" | "arduino" | "none"
    defaults: dict[str, Any] = field(default_factory=dict)
    # environment variables the build reads (a TFLM tree): a different value is a different firmware
    build_env: tuple[str, ...] = ()

    def serves(self, target, backend: str) -> bool:
        if backend not in self.backends or target.kind not in self.kinds:
            return False
        if self.boards and target.name not in self.boards:
            return False
        if self.uarts:
            uart = str(target.extras.get("uart", "")).lower()
            return any(kind in uart for kind in self.uarts)
        return True


def _load_template(folder: Path) -> Template:
    spec_path = folder / "template.yaml"
    try:
        spec = yaml.safe_load(spec_path.read_text()) or {}
    except (OSError, yaml.YAMLError) as exc:
        raise EdgekitError(f"{spec_path}: cannot read the template description ({exc})") from None
    missing = [key for key in ("name", "backends", "kinds") if key not in spec]
    if missing:
        raise EdgekitError(f"{spec_path}: missing field(s) {', '.join(missing)}")
    if spec["name"] != folder.name:
        raise EdgekitError(f"{spec_path}: name '{spec['name']}' differs from its folder '{folder.name}'")
    return Template(
        name=spec["name"],
        path=folder,
        description=" ".join(str(spec.get("description", "")).split()),
        backends=tuple(spec["backends"]),
        kinds=tuple(spec["kinds"]),
        boards=tuple(spec.get("boards", ())),
        uarts=tuple(u.lower() for u in spec.get("uarts", ())),
        build=spec.get("build", "cmake"),
        defaults=dict(spec.get("defaults", {})),
        build_env=tuple(spec.get("build_env", ())),
    )


def templates() -> dict[str, Template]:
    """Every template shipped with edgekit, by name (`common/` is not a template)."""
    root = templates_dir()
    found = {}
    for folder in sorted(p for p in root.iterdir() if (p / "template.yaml").is_file()):
        template = _load_template(folder)
        found[template.name] = template
    return found


def choose_template(target, backend: str, name: str | None = None) -> Template:
    """The template named, or the first one serving this backend on this target."""
    available = templates()
    if name is not None:
        if name not in available:
            raise UnknownChoiceError("firmware template", name, available)
        return available[name]
    for template in available.values():
        if template.serves(target, backend):
            return template
    serving = [
        f"{t.name} ({', '.join(t.backends)} on {', '.join(t.boards or t.kinds)}"
        + (f" boards with a {'/'.join(t.uarts)} UART" if t.uarts else "")
        + ")"
        for t in available.values()
    ]
    raise EdgekitError(
        f"no firmware template builds backend '{backend}' for target {target.name}; "
        f"templates: {'; '.join(serving) or 'none'}"
    )


# ---------------------------------------------------------------- variables


def _c_identifier(text: str) -> str:
    ident = re.sub(r"[^0-9A-Za-z_]", "_", text).strip("_") or "model"
    return ident if not ident[0].isdigit() else f"m_{ident}"


def tensor_offsets(specs) -> list[int]:
    """Where each tensor starts when the tensors are concatenated."""
    offsets, total = [], 0
    for spec in specs:
        offsets.append(total)
        total += tensor_bytes([spec])
    return offsets


def tensor_bytes(specs) -> int:
    """Bytes of the tensors concatenated, one sample (a dynamic batch counts as 1)."""
    import numpy as np

    total = 0
    for spec in specs:
        count = 1
        for dim in spec.shape:
            count *= 1 if dim == -1 else dim  # a dynamic batch runs one sample at a time
        total += count * np.dtype(spec.dtype).itemsize
    return total


def cpu_flags(target) -> str:
    """arm-none-eabi-gcc CPU flags for the target, from its `extras.gcc` block or its cpu name."""
    gcc = target.extras.get("gcc") or {}
    cpu = str(target.cpu).lower()
    mcpu = gcc.get("mcpu") or re.sub(r"f$", "", cpu).replace("+", "plus")
    if not mcpu.startswith("cortex-m"):
        raise EdgekitError(f"target {target.name} ({target.cpu}) is not a Cortex-M: the bare-metal platform cannot build for it")
    flags = [f"-mcpu={mcpu}", "-mthumb"]
    abi = gcc.get("mfloat_abi") or ("hard" if "fpu" in target.features else "soft")
    flags.append(f"-mfloat-abi={abi}")
    if abi != "soft" and gcc.get("mfpu"):
        flags.append(f"-mfpu={gcc['mfpu']}")
    return " ".join(flags)


# which `common/cortexm/uart_<driver>.c` drives a target's UART, by what its `extras.uart` names
# (first match wins); an STM32 UART also needs its chip's clocks and pins (`soc_<extras.soc>.c`)
_UART_DRIVERS = (("cmsdk", "cmsdk"), ("lpuart", "stm32"), ("usart", "stm32"), ("uarte", "nrf"), ("nrf", "nrf"))
# STM32 families whose USART has the older SR/DR register layout instead of ISR/RDR/TDR
_SR_DR_SOCS = ("stm32f1", "stm32f2", "stm32f4")


def uart_driver(target) -> str:
    """The bare-metal UART driver for the target (`cmsdk`, `stm32`, `nrf`), or '' when there is none."""
    uart = str(target.extras.get("uart", "")).lower()
    return next((driver for kind, driver in _UART_DRIVERS if kind in uart), "")


def _uart_sources(target, driver: str) -> str:
    sources = [f"uart_{driver or 'cmsdk'}.c"]
    if target.extras.get("soc"):
        sources.append(f"soc_{target.extras['soc']}.c")
    return " ".join(sources)


def _pin(target, role: str) -> tuple[int, int]:
    """(port, pin) of `extras.uart_pins[role]`: STM32 style `PG7` (port G = 6) or nRF style `P0.06`."""
    text = str((target.extras.get("uart_pins") or {}).get(role, "")).upper()
    if not text:
        return 0, 0  # the CMSDK UART has fixed pins
    stm32 = re.fullmatch(r"P([A-K])(\d{1,2})", text)
    nrf = re.fullmatch(r"P(\d)\.(\d{1,2})", text)
    if stm32:
        return ord(stm32.group(1)) - ord("A"), int(stm32.group(2))
    if nrf:
        return int(nrf.group(1)), int(nrf.group(2))
    raise EdgekitError(f"target {target.name}: extras.uart_pins.{role} '{text}' is no pin name (PG7 or P0.06)")


def is_emulated(target) -> bool:
    return (target.flash_tool or {}).get("tool") == "qemu"


def variables(artifact: Artifact, target, template: Template) -> dict[str, str]:
    """Everything `${var}` may name in a template; see firmware_templates/README.md."""
    if not target.memory_map:
        raise EdgekitError(f"target {target.name} has no memory map: firmware is built for MCU targets only")
    mm = target.memory_map
    c_name = artifact.info.get("c_name") or _c_identifier(artifact.source.get("name") or Path(artifact.primary).stem)
    model_name = re.sub(r"\s+", "_", str(artifact.source.get("name") or c_name))
    # DWT counts real cycles; QEMU models no DWT, so the emulated boards use SysTick
    has_dwt = not is_emulated(target) and any(m in str(target.cpu).lower() for m in ("m3", "m4", "m7", "m33", "m55", "m85"))
    # the clock the firmware really runs the core at: a board left on its reset clock (no PLL set
    # up) says so in extras.firmware_clock_hz, and cycles -> ms must use that, not the nominal clock
    core_clock_hz = int(target.extras.get("firmware_clock_hz", round(target.clock_mhz * 1_000_000)))
    driver = uart_driver(target)
    tx, rx = _pin(target, "tx"), _pin(target, "rx")
    values: dict[str, Any] = {
        "stack_bytes": DEFAULT_STACK_BYTES,
        **template.defaults,
        # a board with little RAM (the micro:bit's 16 KiB) says how much of it the stack gets
        **({"stack_bytes": int(target.extras["stack_bytes"])} if "stack_bytes" in target.extras else {}),
        "target": target.name,
        "template": template.name,
        "backend": artifact.backend,
        "model_name": model_name,
        "c_name": c_name,
        "C_NAME": c_name.upper(),
        "primary": artifact.primary,
        "firmware_id": artifact.sha256[:16],
        "input_bytes": tensor_bytes(artifact.inputs),
        "output_bytes": tensor_bytes(artifact.outputs),
        "input_offsets": ", ".join(map(str, tensor_offsets(artifact.inputs))),
        "output_offsets": ", ".join(map(str, tensor_offsets(artifact.outputs))),
        "input_ctype": _C_TYPES.get(artifact.inputs[0].dtype, "int8_t"),
        "output_ctype": _C_TYPES.get(artifact.outputs[0].dtype, "int8_t"),
        "core_clock_hz": core_clock_hz,
        "uart_driver": driver,
        "uart_sources": _uart_sources(target, driver),
        "uart_is_lpuart": int("lpuart" in str(target.extras.get("uart", "")).lower()),
        "uart_sr_dr": int(str(target.extras.get("soc", "")) in _SR_DR_SOCS),
        "uart_base": hex(int(target.extras.get("uart_base", 0x40004000))),
        "uart_baud": int(target.extras.get("uart_baud", 115200)),
        "uart_rx_irq": int(target.extras.get("uart_rx_irq", 0)),  # UART0 RX on the MPS2 boards
        "uart_clock_hz": int(target.extras.get("uart_clock_hz", core_clock_hz)),
        "uart_tx_port": tx[0],
        "uart_tx_pin": tx[1],
        "uart_rx_port": rx[0],
        "uart_rx_pin": rx[1],
        "uart_af": int((target.extras.get("uart_pins") or {}).get("af", 0)),
        "use_dwt": int(has_dwt),
        "flash_origin": hex(mm["flash_origin"]),
        "flash_bytes": hex(mm["flash_bytes"]),
        "ram_origin": hex(mm["ram_origin"]),
        "ram_bytes": hex(mm["ram_bytes"]),
        "cpu_flags": cpu_flags(target) if target.arch.startswith("armv") else "",
    }
    # backend-specific values (e.g. an arena size) the backend put in the artifact
    values.update(artifact.info.get("firmware", {}))
    return {key: str(value) for key, value in values.items()}


# ---------------------------------------------------------------- render


def _render_tree(source: Path, dest: Path, values: dict[str, str]) -> None:
    for path in sorted(source.rglob("*")):
        rel = path.relative_to(source)
        if path.is_dir() or rel.name == "template.yaml" or "__pycache__" in rel.parts:
            continue
        out = dest / rel
        out.parent.mkdir(parents=True, exist_ok=True)
        if path.suffix == ".in":
            try:
                text = string.Template(path.read_text()).substitute(values)
            except KeyError as exc:
                raise EdgekitError(f"{path}: unknown template variable {exc} (known: {', '.join(sorted(values))})") from None
            except ValueError as exc:
                raise EdgekitError(f"{path}: {exc} (write a literal $ as $$)") from None
            out.with_suffix("").write_text(text)
        else:
            shutil.copy2(path, out)


def template_digest(template: Template) -> str:
    """sha256 over the template's and common/'s files: a changed template invalidates a cached build."""
    digest = hashlib.sha256()
    for root in (template.path, templates_dir() / COMMON):
        for path in sorted(p for p in root.rglob("*") if p.is_file() and "__pycache__" not in p.parts):
            digest.update(path.relative_to(root).as_posix().encode() + b"\0" + path.read_bytes())
    return digest.hexdigest()


@dataclass
class Project:
    """A rendered firmware project folder and what it was rendered from."""

    path: Path
    manifest: dict[str, Any]

    @property
    def target(self) -> str:
        return self.manifest["target"]

    @property
    def build_dir(self) -> Path:
        return self.path / "build"

    @property
    def elf(self) -> Path:
        if self.manifest.get("build") == "arduino":  # arduino-cli names it after the sketch
            return self.build_dir / f"{self.path.name}.ino.elf"
        return self.build_dir / "firmware.elf"

    @classmethod
    def open(cls, path: Path) -> Project:
        path = Path(path)
        try:
            manifest = json.loads((path / PROJECT_MANIFEST).read_text())
        except (OSError, ValueError):
            raise EdgekitError(
                f"{path} is not a firmware project rendered by edgekit (no {PROJECT_MANIFEST}): "
                "render one with `edgekit firmware MODEL --target T --out DIR`"
            ) from None
        if manifest.get("schema") != PROJECT_SCHEMA:
            raise EdgekitError(f"{path / PROJECT_MANIFEST}: schema {manifest.get('schema')!r} is not {PROJECT_SCHEMA}")
        return cls(path, manifest)


def render(artifact: Artifact, target, out: Path, template: str | None = None, force: bool = False) -> Project:
    """Render a firmware project for `artifact` on `target` into `out`, whole or not at all."""
    out = Path(out)
    chosen = choose_template(target, artifact.backend, template)
    if not chosen.serves(target, artifact.backend) and template is not None:
        raise EdgekitError(
            f"template {chosen.name} serves backends {', '.join(chosen.backends)} on "
            f"{', '.join(chosen.boards or chosen.kinds)}, not {artifact.backend} on {target.name}"
        )
    values = variables(artifact, target, chosen)
    if out.exists() and any(out.iterdir()) and not force and not (out / PROJECT_MANIFEST).is_file():
        raise EdgekitError(f"{out} exists and is not a firmware project: choose an empty or new folder")
    out.parent.mkdir(parents=True, exist_ok=True)
    staged = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        _render_tree(chosen.path, staged, values)
        _render_tree(templates_dir() / COMMON, staged / COMMON, values)
        if chosen.build == "arduino":
            # arduino-cli insists the sketch's .ino is named after its folder
            sketches = list(staged.glob("*.ino"))
            if len(sketches) == 1:
                sketches[0].rename(staged / f"{out.name}.ino")
        model_dir = staged / "model"
        model_dir.mkdir(exist_ok=True)
        for rel in artifact.files:
            (model_dir / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(artifact.path / rel, model_dir / rel)
        manifest = {
            "schema": PROJECT_SCHEMA,
            "template": chosen.name,
            "build": chosen.build,
            "target": target.name,
            "backend": artifact.backend,
            "artifact_sha256": artifact.sha256,
            "template_sha256": template_digest(chosen),
            "inputs": [s.to_json() for s in artifact.inputs],
            "outputs": [s.to_json() for s in artifact.outputs],
            "variables": values,
            # the bytes of the model's constant tensors, as its .tflite stores them (aot artifacts)
            "model_weights_bytes": artifact.info.get("model_weights_bytes"),
        }
        (staged / PROJECT_MANIFEST).write_text(json.dumps(manifest, indent=2) + "\n")
        if out.exists():
            shutil.rmtree(out)
        os.replace(staged, out)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise
    return Project(out, manifest)


# ---------------------------------------------------------------- build


@dataclass
class Sizes:
    """Section sizes of an ELF against the target's budgets."""

    text: int
    data: int
    bss: int
    flash_budget: int | None
    ram_budget: int | None
    stack_bytes: int | None = None  # reserved above .bss by the linker script, not in ram_bytes
    # flash the linker kept from the objects compiled from the project's model/ folder (an aot
    # bundle's code, weights and parameters), and the model's own weight bytes it compares to
    model_flash_bytes: int | None = None
    model_weights_bytes: int | None = None

    @property
    def flash_bytes(self) -> int:
        return self.text + self.data  # .data's initial values live in flash too

    @property
    def ram_bytes(self) -> int:
        return self.data + self.bss

    @property
    def fits(self) -> bool:
        return (self.flash_budget is None or self.flash_bytes <= self.flash_budget) and (
            self.ram_budget is None or self.ram_bytes <= self.ram_budget
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "text": self.text,
            "data": self.data,
            "bss": self.bss,
            "flash_bytes": self.flash_bytes,
            "ram_bytes": self.ram_bytes,
            "flash_budget": self.flash_budget,
            "ram_budget": self.ram_budget,
            "stack_bytes": self.stack_bytes,
            "model_flash_bytes": self.model_flash_bytes,
            "model_weights_bytes": self.model_weights_bytes,
        }

    def summary(self) -> str:
        def part(used, budget):
            return f"{used:,} B" + (f" of {budget:,} B ({100 * used / budget:.1f}%)" if budget else "")

        text = (
            f"flash {part(self.flash_bytes, self.flash_budget)}, RAM {part(self.ram_bytes, self.ram_budget)} "
            f"(text {self.text:,}, data {self.data:,}, bss {self.bss:,}"
            + (f"; plus {self.stack_bytes:,} B of stack)" if self.stack_bytes else ")")
        )
        if self.model_flash_bytes is not None:
            text += f"; the model's code and data {self.model_flash_bytes:,} B of that flash"
            if self.model_weights_bytes:
                ratio = self.model_flash_bytes / self.model_weights_bytes
                text += f" ({ratio:.3f}x its {self.model_weights_bytes:,} B of weights)"
        return text


def elf_sizes(elf: Path, target=None, size_tool: str = "arm-none-eabi-size") -> Sizes:
    """`text`, `data`, `bss` of an ELF (Berkeley format of arm-none-eabi-size)."""
    tool = shutil.which(size_tool)
    if tool is None:
        raise EdgekitError(f"{size_tool} not found: install the GNU Arm Embedded toolchain (gcc-arm-none-eabi)")
    proc = subprocess.run([tool, "-B", str(elf)], capture_output=True, text=True)
    if proc.returncode != 0:
        raise EdgekitError(f"{size_tool} failed on {elf}: {proc.stderr.strip()}")
    fields = proc.stdout.splitlines()[1].split()
    return Sizes(
        text=int(fields[0]),
        data=int(fields[1]),
        bss=int(fields[2]),
        flash_budget=getattr(target, "flash_bytes", None),
        ram_budget=getattr(target, "ram_bytes", None),
    )


#: output sections of the firmware's linker script (common/cortexm/linker.ld.in) held in flash;
#: .data is there as its initial values
FLASH_SECTIONS = frozenset({".text", ".ARM.extab", ".ARM.exidx", ".preinit_array", ".init_array",
                            ".fini_array", ".data"})  # fmt: skip
_MAP_OUTPUT = re.compile(r"^(\S+)")  # an output section (or /DISCARD/, LOAD, OUTPUT...) at column 0
_MAP_INPUT = re.compile(r"^ (\S+)(?:\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(\S.*))?$")
_MAP_PLACED = re.compile(r"^\s+0x([0-9a-fA-F]+)\s+0x([0-9a-fA-F]+)\s+(\S.*)$")


def map_flash_by_folder(map_file: Path, folder: str = "model") -> int | None:
    """Bytes of flash the linker kept from objects compiled from `folder` of the project.

    Read from GNU ld's map (`-Wl,-Map`): every input section placed in one of
    the flash output sections whose object file lies under `folder/` (CMake
    names them `CMakeFiles/<target>.dir/model/<file>.c.obj`). Sections the
    linker dropped (`--gc-sections`) are listed before the memory map and not
    counted; alignment padding between sections is not counted either. None
    when there is no map.
    """
    try:
        lines = map_file.read_text(errors="replace").splitlines()
    except OSError:
        return None
    try:
        start = lines.index("Linker script and memory map")
    except ValueError:
        return None
    marker = f"/{folder}/"
    total, output, pending = 0, None, False
    for line in lines[start + 1 :]:
        if _MAP_OUTPUT.match(line):
            output, pending = line.split()[0], False
            continue
        placed = None
        if pending:
            placed = _MAP_PLACED.match(line)
            pending = False
        if placed is None:
            entry = _MAP_INPUT.match(line)
            if entry is None:
                continue
            if entry.group(2) is None:  # a long section name: address, size and object on the next line
                pending = not entry.group(1).startswith("*")
                continue
            size, obj = int(entry.group(3), 16), entry.group(4)
        else:
            size, obj = int(placed.group(2), 16), placed.group(3)
        if output in FLASH_SECTIONS and (marker in f"/{obj.strip()}"):
            total += size
    return total


def _run_build_step(cmd: list[str], log: Path, what: str) -> None:
    with open(log, "a") as out:
        out.write("$ " + " ".join(cmd) + "\n")
        out.flush()
        proc = subprocess.run(cmd, stdout=out, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        lines = log.read_text().strip().splitlines()
        # the compiler's and linker's own words, not make's echo of them
        causes = [
            line.split("/bin/ld: ")[-1].strip()
            for line in lines
            if re.search(r"error:|undefined reference|overflow|will not fit|CMake Error", line)
            and not re.match(r"g?make(\[\d+\])?:", line)
            and "ld returned" not in line
        ]
        shown = list(dict.fromkeys(causes))[:2] or lines[-3:]
        raise EdgekitError(f"{what} failed: {' | '.join(shown)}; full log: {log}")


def _fresh_log(project: Project) -> Path:
    project.build_dir.mkdir(exist_ok=True)
    log = project.build_dir / "build.log"
    log.write_text("")
    return log


def _build_cmake(project: Project, jobs: int | None) -> None:
    for tool in ("cmake", "arm-none-eabi-gcc"):
        if shutil.which(tool) is None:
            raise EdgekitError(f"{tool} not found: install cmake and the GNU Arm Embedded toolchain (gcc-arm-none-eabi)")
    log = _fresh_log(project)
    _run_build_step(["cmake", "-S", str(project.path), "-B", str(project.build_dir)], log, "configuring the firmware")
    _run_build_step(
        ["cmake", "--build", str(project.build_dir), "-j", str(jobs or os.cpu_count() or 1)], log, "building the firmware"
    )


def _build_arduino(project: Project, target) -> None:
    tool = shutil.which("arduino-cli")
    if tool is None:
        raise EdgekitError("arduino-cli not found: install it from https://arduino.github.io/arduino-cli/ and its board core")
    fqbn = (target.flash_tool or {}).get("fqbn")
    if not fqbn:
        raise EdgekitError(f"target {target.name} names no Arduino board (flash_tool.fqbn)")
    log = _fresh_log(project)
    cmd = [tool, "compile", "--fqbn", fqbn, "--output-dir", str(project.build_dir), str(project.path)]
    _run_build_step(cmd, log, "building the sketch")


def build(project: Project | Path, jobs: int | None = None) -> Sizes:
    """Build a rendered project (CMake + arm-none-eabi, or arduino-cli), check it fits the target, return its sizes."""
    from edgekit import targets

    if not isinstance(project, Project):
        project = Project.open(project)
    kind = project.manifest.get("build")
    target = targets.get(project.target)
    if kind == "cmake":
        _build_cmake(project, jobs)
    elif kind == "arduino":
        _build_arduino(project, target)
    else:
        raise EdgekitError(f"{project.path}: template {project.manifest['template']} has no build ({kind}): see its README")
    sizes = elf_sizes(project.elf, target)
    stack = project.manifest.get("variables", {}).get("stack_bytes")
    sizes.stack_bytes = int(stack) if stack else None
    sizes.model_flash_bytes = map_flash_by_folder(project.elf.with_suffix(".map"))
    sizes.model_weights_bytes = project.manifest.get("model_weights_bytes")
    if not sizes.fits:
        raise EdgekitError(f"the firmware does not fit {target.name}: {sizes.summary()}")
    (project.build_dir / "sizes.json").write_text(json.dumps(sizes.to_json(), indent=2) + "\n")
    return sizes


def firmware_key(artifact: Artifact, target, template: Template) -> str:
    """Everything that decides a built firmware: the artifact, the template and its variables."""
    facts = {
        "artifact_sha256": artifact.sha256,
        "template": template.name,
        "template_sha256": template_digest(template),
        "variables": variables(artifact, target, template),  # the target's facts, as rendered
        "build_env": {name: os.environ.get(name) for name in template.build_env},
    }
    return hashlib.sha256(json.dumps(facts, sort_keys=True).encode()).hexdigest()[:32]


def built_firmware(artifact: Artifact, target, registry_uri: str | None = None, template: str | None = None) -> Project:
    """The artifact's firmware for `target`, rendered and built once, kept in the registry's store.

    Built in a private staging folder and published with one rename, so two
    processes that build the same firmware at once leave one complete copy,
    and a failed build leaves nothing.
    """
    from edgekit.registry.location import locate
    from edgekit.registry.store import LocalStore, discard

    store = LocalStore(locate(registry_uri).store_dir)
    chosen = choose_template(target, artifact.backend, template)
    final = store.firmware_dir(firmware_key(artifact, target, chosen))
    if (final / "build" / "sizes.json").is_file():
        return Project.open(final)
    staged = store.staging_dir()
    try:
        # the same folder name as the final one: arduino-cli names the ELF after it
        project = render(artifact, target, staged / final.name, template=chosen.name, force=True)
        build(project)
        store.publish(project.path, final)
    finally:
        discard(staged)
    return Project.open(final)

