"""Does an aot bundle fit the board? RAM and flash, decided before any firmware is built.

RAM   = the activation arena the planner laid out (every intermediate tensor)
        + the firmware's stack (the target's `extras.stack_bytes`, else the default)
        + the protocol's buffers: the model's input and output, the line buffer, the RX ring.
Flash = the weights + the code: the platform (protocol, startup, UART, timer) and the kernels.

The platform figures are measurements of `aot-cortexm` builds (gcc 12.2, -O3)
of a CNN with six kinds of operator (conv, depthwise conv, average pool,
reshape, dense, softmax): 10.6-13.1 KB of flash beyond its weights on the
Cortex-M0/M3/M4/M7/M33/M55 boards, and 0.8-1.4 KB of RAM beyond its arena
and I/O buffers (the 384-byte line buffer, the protocol's state, and the
512-byte RX ring of the STM32/nRF drivers). The estimate takes 16 KiB of
code plus 2 KiB per kind of operator beyond six (an allowance, not a
measurement), and 1.5 KiB of buffers; the built ELF's sizes are the exact
figures, checked again after the build.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from edgekit.tflm.fit import FitReport

if TYPE_CHECKING:
    from edgekit.targets import Target

PLATFORM_FLASH_BYTES = 16 * 1024
BASIS_OPS = 6
FLASH_PER_EXTRA_OP = 2 * 1024
PROTOCOL_RAM_BYTES = 1536
BASIS = (
    "aot bundle: planned arena + the firmware's stack + I/O and protocol buffers (~1.5 KiB); "
    "weights + ~16 KiB of platform and kernel code (10.6-13.1 KB measured with six operator kinds), "
    "+ ~2 KiB per further operator kind (assumed)"
)


def model_weight_bytes(model) -> int:
    """Bytes of the constant tensors (weights, biases) the model's operators read, as its .tflite
    stores them: what "flash per weight byte" divides by. `model`: a .tflite path or bytes."""
    from edgekit.aot.graph import graph_from_model
    from edgekit.tflite.reader import read_model

    graph = graph_from_model(read_model(model), "m")
    read = {t for node in graph.nodes for t in node.inputs if t >= 0}
    return sum(graph.tensors[t].nbytes for t in read if graph.tensors[t].is_const)


def stack_bytes(target: Target) -> int:
    """The stack the firmware reserves on `target` (as the linker script will)."""
    from edgekit.firmware import DEFAULT_STACK_BYTES

    return int(target.extras.get("stack_bytes", DEFAULT_STACK_BYTES))


def fit_report(target: Target, info: dict[str, Any], io_bytes: int) -> FitReport:
    """The fit of a compiled bundle (`info`: the aot artifact's info) on an MCU target."""
    kinds = len(set(info["ops"]))
    return FitReport(
        target=target.name,
        kernels="aot",
        model_bytes=int(info["weights_bytes"]),
        runtime_flash_bytes=PLATFORM_FLASH_BYTES + max(0, kinds - BASIS_OPS) * FLASH_PER_EXTRA_OP,
        arena_bytes=int(info["arena_bytes"]),
        stack_bytes=stack_bytes(target),
        io_bytes=io_bytes + PROTOCOL_RAM_BYTES,
        flash_budget=target.memory_map.get("flash_bytes", target.flash_bytes),
        ram_budget=target.memory_map.get("ram_bytes", target.ram_bytes),
        basis=BASIS,
    )
