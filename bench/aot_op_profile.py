"""Instructions per operator of an aot bundle on the emulated Cortex-M4 (mps2-an386).

The bundle is compiled as the firmware compiles it (same compiler, target
features, `--optimize` mode and gcc flags), with a read of SysTick before
each operator, into a bare-metal program that runs one inference on a zero
input and prints the counts over semihosting. QEMU runs it with
`-icount shift=0`: one instruction is one nanosecond, SysTick counts 25 MHz,
so a count is exact to 40 instructions (a tick) plus the few instructions of
each read. The total is the firmware's per-inference figure less the
protocol's glue.

    python bench/aot_op_profile.py MODEL.tflite [--optimize balanced] [--keep DIR]
"""

from __future__ import annotations

import argparse
import re
import subprocess
import tempfile
from pathlib import Path

TARGET = "mps2-an386"
TICK = 40  # instructions per SysTick tick at 25 MHz with -icount shift=0

HARNESS = r"""
#include <stdint.h>
#include <string.h>
#include "model.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

extern uint32_t _estack;
extern uint32_t ek_prof_ticks[];
extern int ek_prof_count;
void Reset_Handler(void);

__attribute__((used, section(".isr_vector"))) const void *const vectors[16] = {&_estack, (const void *)Reset_Handler};

static uint8_t arena[MODEL_ACTIVATIONS_SIZE + 16] __attribute__((aligned(16)));
static int8_t in_buf[MODEL_INPUT_SIZE + 4], out_buf[MODEL_OUTPUT_SIZE + 4];

static int semihost(int op, const void *arg) {
  register int r0 __asm__("r0") = op;
  register const void *r1 __asm__("r1") = arg;
  __asm__ volatile("bkpt 0xab" : "+r"(r0) : "r"(r1) : "memory");
  return r0;
}

static void put(const char *s) { semihost(0x04, s); }

static void put_u(uint32_t v) {
  char b[12];
  int i = 11;
  b[i] = 0;
  do { b[--i] = (char)('0' + v % 10); v /= 10; } while (v);
  put(b + i);
}

void Reset_Handler(void) {
  int i;
  SCB_CPACR |= 0xFu << 20; /* the FPU */
  SYST_RVR = 0xFFFFFFu;
  SYST_CVR = 0;
  SYST_CSR = 0x5u; /* processor clock, no interrupt */
  while (SYST_CVR == 0u) {}
  ek_prof_ticks[0] = SYST_CVR;
  model_run((const void *)in_buf, (void *)out_buf, arena);
  ek_prof_ticks[ek_prof_count] = SYST_CVR;
  for (i = 0; i < ek_prof_count; ++i) {
    put_u((ek_prof_ticks[i] - ek_prof_ticks[i + 1]) & 0xFFFFFFu);
    put("\n");
  }
  semihost(0x18, (const void *)0x20026u); /* SYS_EXIT, ADP_Stopped_ApplicationExit */
  for (;;) {}
}
"""

LINKER = """
MEMORY { FLASH (rx) : ORIGIN = 0x0, LENGTH = 4M  RAM (rwx) : ORIGIN = 0x20000000, LENGTH = 4M }
ENTRY(Reset_Handler)
SECTIONS {
  .text : { KEEP(*(.isr_vector)) *(.text*) *(.rodata*) . = ALIGN(4); } > FLASH
  .data : { *(.data*) } > RAM
  .bss (NOLOAD) : { *(.bss*) *(COMMON) } > RAM
  _estack = ORIGIN(RAM) + LENGTH(RAM);
}
"""

CALL = re.compile(r"^  \w+_op(\d+)\(inputs, outputs, activations\);$")
# each operator's function follows its title: the model's node index and opcode ("CONV_2D+ADD"
# for a convolution fused with its ADD, so functions and model nodes need not be one to one)
TITLE = re.compile(r"^/\* (\d+): (\S+) -> .*\n\w+ void \w+_op(\d+)\(", re.M)


def instrumented(source: str) -> tuple[str, list[str]]:
    """The bundle source with a SysTick read before every operator's call (the ticks left
    before it: SysTick counts down, the harness reads the first and the last), and a label
    per call: the model's node index and opcode."""
    titles = {int(fn): f"{node} {opcode}" for node, opcode, fn in TITLE.findall(source)}
    labels, out = [], []
    for line in source.splitlines():
        m = CALL.match(line)
        if m:
            if labels:  # the first is read by the harness before the call
                out.append(f"  ek_prof_ticks[{len(labels)}] = *(volatile uint32_t *)0xE000E018u;")
            labels.append(titles[int(m.group(1))])
        out.append(line)
    prelude = f"uint32_t ek_prof_ticks[{len(labels) + 1}];\nint ek_prof_count = {len(labels)};\n"
    text = "\n".join(out)
    head, sep, rest = text.partition("/* ---- constants (flash) ---- */")
    return head + prelude + sep + rest, labels


def profile(model: Path, optimize: str, keep: Path | None) -> list[tuple[str, int]]:
    from edgekit import targets
    from edgekit.aot.compiler import compile_model

    target = targets.get(TARGET)
    bundle = compile_model(model, name="model", features=set(target.features), optimize=optimize)
    work = keep or Path(tempfile.mkdtemp(prefix="edgekit-op-profile-"))
    work.mkdir(parents=True, exist_ok=True)
    bundle.write(work)
    source, labels = instrumented((work / "model.c").read_text())
    (work / "model.c").write_text(source)
    (work / "main.c").write_text(HARNESS)
    (work / "link.ld").write_text(LINKER)
    gcc = target.extras["gcc"]
    flags = [f"-mcpu={gcc['mcpu']}", "-mthumb", f"-mfpu={gcc['mfpu']}", f"-mfloat-abi={gcc['mfloat_abi']}"]
    subprocess.run(
        ["arm-none-eabi-gcc", *flags, "-O3", "-ffunction-sections", "-fdata-sections", "-Wall", "-Wextra", "-Werror",
         "-nostartfiles", "--specs=nano.specs", "--specs=nosys.specs", "-T", str(work / "link.ld"), "-I", str(work),
         str(work / "main.c"), str(work / "model.c"), "-lm", "-o", str(work / "prof.elf")],
        check=True,
    )  # fmt: skip
    run = subprocess.run(
        ["qemu-system-arm", "-M", TARGET, "-display", "none", "-monitor", "none", "-serial", "none",
         "-icount", "shift=0,sleep=off", "-semihosting-config", "enable=on,target=native",
         "-kernel", str(work / "prof.elf")],
        check=True, capture_output=True, text=True, timeout=600,
    )  # fmt: skip
    ticks = [int(v) for v in run.stderr.split()]  # QEMU writes the semihosting console to stderr
    return [(label, t * TICK) for label, t in zip(labels, ticks, strict=True)]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("model", type=Path)
    parser.add_argument("--optimize", default="balanced", choices=("speed", "balanced", "size"))
    parser.add_argument("--keep", type=Path, help="keep the program's sources and ELF in this folder")
    args = parser.parse_args()
    rows = profile(args.model, args.optimize, args.keep)
    total = sum(n for _, n in rows)
    print("| operator | instructions | share |\n| --- | ---: | ---: |")
    for label, n in rows:
        print(f"| {label} | {n:,} | {100 * n / total:.1f}% |")
    print(f"| total | {total:,} | |")


if __name__ == "__main__":
    main()
