"""A Runner whose inferences happen on a board: real (serial port) or emulated (QEMU).

`open_runner(artifact, target, options)` takes the artifact's built firmware
(edgekit.firmware.built_firmware: built once, kept in the registry's store),
starts it (QEMU) or checks/flashes the board, and returns a Runner: `infer`
sends the input over the protocol and reads the output back;
`device_timing()` is the board's own measure of the last inference.
"""

from __future__ import annotations

import json
from typing import Any

import numpy as np

from edgekit import firmware
from edgekit.core import Artifact, RunOptions, Runner
from edgekit.device.protocol import Device, DeviceError, InferResult
from edgekit.errors import EdgekitError

NS_PER_SECOND = 1_000_000_000


def split_outputs(raw: bytes, specs) -> dict[str, np.ndarray]:
    outputs, offset = {}, 0
    for spec in specs:
        shape = tuple(1 if d == -1 else d for d in spec.shape)
        dtype = np.dtype(spec.dtype).newbyteorder("<")
        size = int(np.prod(shape)) * dtype.itemsize
        outputs[spec.name] = np.frombuffer(raw[offset : offset + size], dtype=dtype).astype(spec.dtype).reshape(shape)
        offset += size
    return outputs


class DeviceRunner(Runner):
    """Runs an artifact on a board through `Device`; owns the QEMU board when there is one."""

    memory_scope = "device"

    def __init__(self, artifact: Artifact, target, device: Device, board=None, project=None):
        self.emulated = board is not None or firmware.is_emulated(target)
        self.name = "device-qemu" if self.emulated else "device-serial"
        self.artifact = artifact
        self.inputs = list(artifact.inputs)
        self.outputs = list(artifact.outputs)
        self.target = target
        self.device = device
        self.board = board
        self.project = project
        self._last: InferResult | None = None

    def _batch(self, feed: dict[str, np.ndarray]) -> int:
        sizes = {value.shape[0] for value, spec in ((feed[s.name], s) for s in self.inputs) if spec.shape[:1] == (-1,)}
        if len(sizes) > 1:
            raise EdgekitError(f"inputs have different batch sizes {sorted(sizes)}")
        return sizes.pop() if sizes else 1

    def _infer(self, feed: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        batch = self._batch(feed)
        results = []
        for i in range(batch):  # the firmware runs one sample at a time
            parts = []
            for spec in self.inputs:
                value = feed[spec.name]
                sample = value[i : i + 1] if spec.shape[:1] == (-1,) else value
                parts.append(np.ascontiguousarray(sample, dtype=np.dtype(spec.dtype).newbyteorder("<")).tobytes())
            raw, self._last = self.device.run(b"".join(parts))
            results.append(split_outputs(raw, self.outputs))
        if batch == 1:
            return results[0]
        return {name: np.concatenate([r[name] for r in results]) for name in results[0]}

    def measure(self, feed: dict[str, np.ndarray], count: int, warmup: int = 0) -> InferResult:
        """Run one input `count` times on the board (after `warmup` runs); timing of all of them."""
        self.infer(feed)
        self._last = self.device.infer(count, warmup)
        return self._last

    def device_timing(self) -> dict[str, float] | None:
        if self._last is None:
            return None
        kind = self.device.info.timer if self.device.info else "systick"
        return timing(self._last, self.target, self.emulated, kind)

    def memory(self) -> dict[str, Any]:
        """The arena the backend planned, and the firmware's flash, RAM and stack from its ELF and linker script."""
        facts: dict[str, Any] = {}
        if "arena_bytes" in self.artifact.info:
            facts["arena_bytes"] = self.artifact.info["arena_bytes"]
        if self.project is not None and (self.project.build_dir / "sizes.json").is_file():
            sizes = json.loads((self.project.build_dir / "sizes.json").read_text())
            facts |= {"flash_bytes": sizes["flash_bytes"], "ram_bytes": sizes["ram_bytes"]}
            if sizes.get("stack_bytes"):
                facts["stack_reserved_bytes"] = sizes["stack_bytes"]
            facts["firmware"] = sizes
        return facts

    def close(self) -> None:
        try:
            self.device.link.close()
        finally:
            if self.board is not None:
                self.board.stop()


def timing(result: InferResult, target, emulated: bool, timer: str = "systick") -> dict[str, float]:
    """Per-inference timing from a board's tick counts.

    A real board's DWT or SysTick counts core cycles; a `micros` timer (an
    Arduino core) counts microseconds, so cycles are then derived from the
    clock. On QEMU with -icount shift=0 one instruction is 1 ns of virtual
    time, so the ticks give an exact instruction count; ms and cycles are
    then estimates at the target's real clock, taking one cycle per
    instruction.
    """
    ticks = result.ticks_per_inference
    if emulated:
        instructions = round(ticks * NS_PER_SECOND / result.tick_hz)
        clock_hz = target.clock_mhz * 1e6
        return {
            "ms": instructions / clock_hz * 1e3,
            "instructions": float(instructions),
            "cycles_estimate": float(instructions),
            "ticks": ticks,
        }
    ms = ticks / result.tick_hz * 1e3
    if timer in ("dwt", "systick"):
        return {"ms": ms, "cycles": ticks, "ticks": ticks}
    return {"ms": ms, "cycles_estimate": ms * 1e-3 * target.clock_mhz * 1e6, "ticks": ticks}


def _connect(url: str, target, board=None, open_timeout: float = 0.0) -> Device:
    from edgekit.device.serial_link import SerialLink

    link = SerialLink(url, baud=int(target.extras.get("uart_baud", 115200)), open_timeout=open_timeout)
    return Device(link, alive=board.problem if board is not None else None)


def _check_model(device: Device, artifact: Artifact, where: str) -> None:
    info = device.hello()
    wanted_in = firmware.tensor_bytes(artifact.inputs)
    wanted_out = firmware.tensor_bytes(artifact.outputs)
    if (info.input_bytes, info.output_bytes) != (wanted_in, wanted_out):
        raise EdgekitError(
            f"the board at {where} runs {info.model} ({info.input_bytes} B in, {info.output_bytes} B out), "
            f"this model takes {wanted_in} B and gives {wanted_out} B: flash its firmware (`edgekit flash`)"
        )


def open_runner(artifact: Artifact, target, options: RunOptions | None = None) -> Runner:
    """A Runner on the board: QEMU for emulated targets, else the board at `options.port`."""
    options = options or RunOptions()
    if options.port:
        return _open_port(artifact, target, options)
    if not firmware.is_emulated(target):
        raise EdgekitError(f"target {target.name} is a real board: give its serial port with --port (e.g. /dev/ttyACM0)")
    from edgekit.device.qemu import QemuBoard

    project = firmware.built_firmware(artifact, target, options.registry)
    board = QemuBoard(project.elf, target.flash_tool["machine"]).start()
    try:
        device = _connect(board.url, target, board, open_timeout=5.0)
        _check_model(device, artifact, board.url)
    except BaseException:
        board.stop()
        raise
    return DeviceRunner(artifact, target, device, board=board, project=project)


def _open_port(artifact: Artifact, target, options: RunOptions) -> Runner:
    """A board already connected at `options.port`; flash it first unless it runs this artifact's firmware."""
    port = options.port
    from edgekit.device import flashers

    device = _connect(port, target)
    firmware_id = artifact.sha256[:16]
    try:
        device.retries, device.timeout = 1, 2.0  # the board may run anything: do not insist
        current = device.hello().firmware_id == firmware_id
    except DeviceError:
        current = False
    finally:
        device.retries, device.timeout = 5, 5.0
    if not current and firmware.is_emulated(target):
        device.link.close()
        raise EdgekitError(
            f"the emulated board at {port} does not run this model's firmware: "
            f"start it with `edgekit flash FIRMWARE --target {target.name}`"
        )
    try:
        # built (or found in the cache) either way: reports need its flash and RAM
        project = firmware.built_firmware(artifact, target, options.registry)
    except BaseException:
        device.link.close()
        raise
    if not current:
        device.link.close()
        flashers.flash(project.elf, target, port=port)
        device = _connect(port, target, open_timeout=10.0)  # a USB serial port comes back after the reset
    try:
        _check_model(device, artifact, port)
    except BaseException:
        device.link.close()
        raise
    return DeviceRunner(artifact, target, device, project=project)
