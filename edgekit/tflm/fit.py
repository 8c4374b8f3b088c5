"""Does the model fit the board? Flash and RAM, estimated before anything is flashed.

Flash = model bytes + the TFLM runtime for the model's kernels.
RAM   = tensor arena + stack + the benchmark protocol's I/O buffers.

The runtime figures are measurements, not guesses: TFLM (tflite-micro 90b983c,
gcc 12.2, release build) with seven kernels and no model takes about 60.7 KB
of flash with the reference kernels and 105.5 KB with CMSIS-NN (MLPerf Tiny
reference build on a Cortex-M4); the model's own code (interpreter set-up,
I/O copies) adds about 0.5 KiB: the three MLPerf Tiny firmwares measure
105.9 KB beyond their model bytes. A model with more than seven kernels is
given an assumed 4 KiB per further kernel (an estimate, not a measurement). The
CMSIS-NN figure is used for cores with the DSP extension (Cortex-M4/M7/M33),
where TFLM builds are normally made with CMSIS-NN; the reference figure
otherwise.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING

from edgekit.errors import EdgekitError

if TYPE_CHECKING:
    from edgekit.targets import Target

RUNTIME_FLASH_REFERENCE = 60_700
RUNTIME_FLASH_CMSIS_NN = 105_500
RUNTIME_BASIS_KERNELS = 7
#: the model's own code beside the runtime (interpreter setup, I/O copies, the arena symbol):
#: the three MLPerf Tiny firmwares measure 105.9 KB of flash beyond their model with CMSIS-NN
MODEL_CODE_FLASH = 512
FLASH_PER_EXTRA_KERNEL = 4 * 1024
#: main stack for Invoke() with the reference kernels, plus the UART protocol's line buffer
STACK_BYTES = 4 * 1024
RUNTIME_BASIS = (
    "TFLM runtime with seven kernels: 60.7 KB flash with reference kernels, 105.5 KB with "
    "CMSIS-NN (MLPerf Tiny reference build, Cortex-M4), + 0.5 KiB model code, "
    "+ ~4 KiB per kernel beyond seven (assumed)"
)


class ModelDoesNotFitError(EdgekitError):
    """The model needs more flash or RAM than the target has; the message gives the numbers."""

    def __init__(self, report: FitReport):
        super().__init__("; ".join(report.verdicts()) + " (sizes: " + report.ram_breakdown() + ")")
        self.report = report


@dataclass(frozen=True)
class FitReport:
    target: str
    kernels: str  # 'cmsis-nn' | 'reference': which runtime figure the flash estimate uses
    model_bytes: int
    runtime_flash_bytes: int
    arena_bytes: int
    stack_bytes: int
    io_bytes: int
    flash_budget: int | None
    ram_budget: int
    basis: str = RUNTIME_BASIS

    @property
    def flash_bytes(self) -> int:
        return self.model_bytes + self.runtime_flash_bytes

    @property
    def ram_bytes(self) -> int:
        return self.arena_bytes + self.stack_bytes + self.io_bytes

    @property
    def fits_flash(self) -> bool:
        return self.flash_budget is None or self.flash_bytes <= self.flash_budget

    @property
    def fits_ram(self) -> bool:
        return self.ram_bytes <= self.ram_budget

    @property
    def fits(self) -> bool:
        return self.fits_flash and self.fits_ram

    def verdicts(self) -> list[str]:
        """One line each for RAM and flash: 'needs X RAM, T has Y: fits' / '... does not fit'."""
        ram = (
            f"needs {kib(self.ram_bytes)} RAM, {self.target} has {kib(self.ram_budget)}: "
            + ("fits" if self.fits_ram else "does not fit")
        )
        if self.flash_budget is None:
            flash = f"needs {kib(self.flash_bytes)} flash, {self.target} has no flash budget"
        else:
            flash = (
                f"needs {kib(self.flash_bytes)} flash, {self.target} has {kib(self.flash_budget)}: "
                + ("fits" if self.fits_flash else "does not fit")
            )
        return [ram, flash]

    def ram_breakdown(self) -> str:
        return (
            f"arena {self.arena_bytes:,} B + stack {self.stack_bytes:,} B + I/O {self.io_bytes:,} B; "
            f"model {self.model_bytes:,} B + {self.kernels} runtime ~{self.runtime_flash_bytes:,} B"
        )

    def lines(self) -> list[str]:
        return [*self.verdicts(), self.ram_breakdown()]

    def check(self) -> None:
        """Raise ModelDoesNotFitError with the numbers when the model does not fit."""
        if not self.fits:
            raise ModelDoesNotFitError(self)

    def to_json(self) -> dict:
        return asdict(self) | {
            "flash_bytes": self.flash_bytes,
            "ram_bytes": self.ram_bytes,
            "fits_flash": self.fits_flash,
            "fits_ram": self.fits_ram,
            "fits": self.fits,
        }


def kib(n: int) -> str:
    """Bytes for people: '212 KiB', '1.5 KiB', '2 MiB', '24.1 GiB'."""
    if n >= 1024**3:
        return f"{n / 1024**3:.3g} GiB"
    if n >= 1024 * 1024:
        return f"{n / (1024 * 1024):.3g} MiB"
    value = n / 1024
    return f"{value:.0f} KiB" if value >= 10 else f"{value:.1f} KiB"


def kernels_for(target: Target) -> str:
    """The kernels a TFLM build for `target` normally uses: CMSIS-NN on Arm cores with DSP."""
    arm_with_dsp = str(target.arch).startswith("armv") and "dsp" in tuple(target.features)
    return "cmsis-nn" if arm_with_dsp else "reference"


def runtime_flash_estimate(kernel_count: int, kernels: str) -> int:
    base = RUNTIME_FLASH_CMSIS_NN if kernels == "cmsis-nn" else RUNTIME_FLASH_REFERENCE
    extra_kernels = max(0, kernel_count - RUNTIME_BASIS_KERNELS)
    return base + MODEL_CODE_FLASH + extra_kernels * FLASH_PER_EXTRA_KERNEL


def fit_report(
    target: Target, *, model_bytes: int, kernel_count: int, arena_bytes: int, io_bytes: int
) -> FitReport:
    kernels = kernels_for(target)
    return FitReport(
        target=target.name,
        kernels=kernels,
        model_bytes=model_bytes,
        runtime_flash_bytes=runtime_flash_estimate(kernel_count, kernels),
        arena_bytes=arena_bytes,
        stack_bytes=STACK_BYTES,
        io_bytes=io_bytes,
        # the memory map is what the linker gets (e.g. minus a bootloader), when the target has one
        flash_budget=target.memory_map.get("flash_bytes", target.flash_bytes),
        ram_budget=target.memory_map.get("ram_bytes", target.ram_bytes),
    )
