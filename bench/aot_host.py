"""Host latency of aot bundles vs LiteRT (1 thread) vs the TFLM interpreter, and arenas.

For each MLPerf Tiny int8 model: compile with edgekit's aot compiler, build
with the host C compiler (edgekit.aot.hostbuild.HOST_CFLAGS), and time one
inference per call, interleaved in rounds with LiteRT (XNNPACK, one thread)
and the TFLM interpreter (reference kernels), all through Python in one
process on the same input. Reports p50 of each and the ratios, plus the
aot activation arena next to TFLM's smallest working arena (bisection).

    .venv/bin/python bench/aot_host.py [--models DIR] [--rounds 5] [--write]

`--write` replaces the `## AOT compiler` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import platform
import re
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
MODELS = ("kws_ref_model.tflite", "pretrainedResnet_quant.tflite", "ad01_int8.tflite")
SECTION = "## AOT compiler"


def p50_ms(fn, runs: int) -> list[float]:
    out = []
    for _ in range(runs):
        t0 = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t0) / 1e6)
    return out


def measure(model_path: Path, rounds: int, workdir: Path) -> dict:
    from ai_edge_litert.interpreter import Interpreter
    from tflite_micro.python.tflite_micro import runtime

    from edgekit.aot.compiler import compile_model
    from edgekit.aot.hostbuild import load_bundle
    from edgekit.tflm.arena import measure_arena

    bundle = compile_model(model_path, name="net")
    folder = workdir / model_path.stem
    bundle.write(folder)
    host = load_bundle(bundle, folder)
    x = np.random.default_rng(0).integers(-128, 128, size=bundle.inputs[0].shape, dtype=np.int8)

    litert = Interpreter(model_path=str(model_path), num_threads=1)
    litert.allocate_tensors()
    in_index = litert.get_input_details()[0]["index"]
    tflm = runtime.Interpreter.from_file(str(model_path))

    def run_litert():
        litert.set_tensor(in_index, x)
        litert.invoke()

    def run_tflm():
        tflm.set_input(x, 0)
        tflm.invoke()

    def run_aot():
        host.run_raw(x)

    # same outputs before timing anything
    run_tflm()
    assert np.array_equal(host.run(x)[0].reshape(-1), np.asarray(tflm.get_output(0)).reshape(-1))

    times = {"aot": [], "litert": [], "tflm": []}
    for fn in (run_aot, run_litert, run_tflm):
        p50_ms(fn, 20)  # warm-up
    for _ in range(rounds):
        times["aot"] += p50_ms(run_aot, 400)
        times["litert"] += p50_ms(run_litert, 400)
        times["tflm"] += p50_ms(run_tflm, 20)
    p50 = {k: float(np.median(v)) for k, v in times.items()}
    arena = measure_arena(model_path)
    return {
        "model": model_path.name,
        "p50": p50,
        "runs": {k: len(v) for k, v in times.items()},
        "aot_arena": bundle.arena_bytes,
        "tflm_arena": arena.measured_bytes,
        "weights": bundle.weights_bytes,
    }


#: TFLM on the emulated Cortex-M4, from the MLPerf Tiny models' README (same QEMU board,
#: -icount shift=0): instructions per inference with reference kernels and with CMSIS-NN,
#: and firmware flash with CMSIS-NN
TFLM_M4 = {
    "kws_ref_model.tflite": (43_045_360, 7_700_400, 159_868),
    "pretrainedResnet_quant.tflite": (107_400_200, 29_861_040, 204_428),
    "ad01_int8.tflite": (1_952_360, 582_960, 382_892),
}


CORTEX_M4 = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]


def measure_m4_object(model_path: Path, workdir: Path) -> dict | None:
    """text/data/bss of the bundle (DSP path) compiled alone for Cortex-M4 with -O2 -Werror."""
    import shutil
    import subprocess

    from edgekit.aot.compiler import compile_model

    if not (shutil.which("arm-none-eabi-gcc") and shutil.which("arm-none-eabi-size")):
        return None
    bundle = compile_model(model_path, name="net", features={"dsp"})
    folder = workdir / f"{model_path.stem}-m4"
    _, source = bundle.write(folder)
    obj = folder / "net.o"
    subprocess.run(
        ["arm-none-eabi-gcc", *CORTEX_M4, "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror",
         "-c", str(source), "-o", str(obj)],
        check=True, capture_output=True,
    )  # fmt: skip
    out = subprocess.run(["arm-none-eabi-size", str(obj)], check=True, capture_output=True, text=True)
    text, data, bss = (int(v) for v in out.stdout.splitlines()[1].split()[:3])
    return {"text": text, "data": data, "bss": bss, "weights": bundle.weights_bytes, "arena": bundle.arena_bytes}


def measure_qemu(model_path: Path, workdir: Path) -> dict:
    """The aot firmware on the emulated Cortex-M4 (DSP path) through `edgekit bench`."""
    import json
    import os
    import subprocess

    report = workdir / f"{model_path.stem}-qemu.json"
    subprocess.run(
        [sys.executable, "-m", "edgekit", "bench", str(model_path), "-t", "mps2-an386", "-b", "aot",
         "-q", "int8", "-n", "3", "-w", "1", "--limit", "20", "--no-log", "-o", str(report)],
        check=True, capture_output=True,
        env=os.environ | {"EDGEKIT_REGISTRY": str(workdir / "registry")},  # keep the user's registry clean
    )  # fmt: skip
    data = json.loads(report.read_text())
    firmware = data["memory"].get("firmware", {})
    return {
        "instructions": int(data["device"]["instructions"]),
        "bit_exact": data["fidelity"]["bit_exact"],
        "n": data["fidelity"]["n"],
        "flash": firmware.get("flash_bytes"),
        "ram": firmware.get("ram_bytes"),
    }


def render_qemu(results: list[dict], command: str) -> str:
    lines = [
        "",
        f"With `--qemu`, the same command also builds each model's aot firmware for the",
        "emulated Cortex-M4 (`mps2-an386`, DSP path: `__smlad`/`__sxtb16`) and runs",
        "`edgekit bench MODEL -t mps2-an386 -b aot -q int8 -n 3 -w 1 --limit 20`:",
        "instructions per inference from QEMU's `-icount shift=0` clock, outputs",
        "compared with the host TFLM interpreter on 20 inputs. TFLM's columns are",
        "the figures in the models' README (same board, same counting).",
        "",
        "The DSP path (`EK_USE_DSP`): convolution filters are stored as int16 in",
        "SMLAD order and each window is widened once per output pixel, so the",
        "dot product, blocked two pixels by four channels, is loads and SMLADs only:",
        "six loads feed eight SMLADs, about 0.9 instructions per MAC (gcc emits 32-bit",
        "loads, no LDRD; SMLAD's floor is 0.5); depthwise layers take four channels per word with",
        "SXTB16 and SMLABB/SMLATT (about 2.5 per MAC); requantization is one SMLAL",
        "sum whose high word is shifted, saturated with SSAT (about 20 instructions",
        "per output); ADD reads each input's rescaled term from a compile-time table.",
        "AD's fully connected weights stay int8 (widening 270 kB of weights would",
        "double its flash): its dot products unpack each weight word with SXTB16.",
        "The int16 filters cost flash: the firmware column includes them.",
        "",
        "| model | aot instructions | TFLM reference kernels | TFLM + CMSIS-NN | aot bit-exact | aot firmware flash (B) | TFLM + CMSIS-NN flash (B) | aot firmware RAM (B) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    ratios = []
    for r in results:
        q = r["qemu"]
        ref, cmsis, flash = TFLM_M4[r["model"]]
        lines.append(
            f"| {r['model']} | {q['instructions']:,} | {ref:,} | {cmsis:,} | "
            f"{'yes' if q['bit_exact'] else 'NO'} ({q['n']} inputs) | {q['flash']:,} | {flash:,} | {q['ram']:,} |"
        )
        ratios.append(f"{r['model']} {q['instructions'] / cmsis:.2f}")
    lines += [
        "",
        "aot instructions / TFLM + CMSIS-NN's: " + ", ".join(ratios) + ". Goals: fewer than",
        "TFLM + CMSIS-NN for every model "
        + ("(met)" if all(r["qemu"]["instructions"] < TFLM_M4[r["model"]][1] for r in results) else "(NOT met)")
        + "; half of them "
        + ("(met)." if all(r["qemu"]["instructions"] <= TFLM_M4[r["model"]][1] / 2 for r in results) else "(not met)."),
        "What is left: the int16 dot product at about 0.9 instructions per MAC",
        "against SMLAD's 0.5 (C gets 32-bit loads; LDRD/LDM would need",
        "assembly), about 20 instructions per output for the exact requantization",
        "(72 k outputs in KWS, 86 k in ResNet-8), and for AD the int8 weights'",
        "unpacking.",
    ]
    del command
    return "\n".join(lines) + "\n"


def render_m4_objects(results: list[dict]) -> str:
    lines = [
        "",
        "The bundle alone for Cortex-M4 (`arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb",
        "-mfloat-abi=hard -mfpu=fpv4-sp-d16 -std=c99 -O2 -Wall -Wextra -Werror -c`,",
        "DSP path; `arm-none-eabi-size`): everything is flash, nothing is mutable and",
        "global; the caller provides the arena.",
        "",
        "| model | text (B) | data (B) | bss (B) | of which weights (B) | arena (B) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        m = r["m4"]
        lines.append(
            f"| {r['model']} | {m['text']:,} | {m['data']:,} | {m['bss']:,} | {m['weights']:,} | {m['arena']:,} |"
        )
    return "\n".join(lines) + "\n"


def render(results: list[dict], command: str) -> str:
    from edgekit.aot.hostbuild import HOST_CFLAGS, compiler_version, host_compiler

    cpu = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import ai_edge_litert
    from importlib.metadata import version

    lines = [
        SECTION,
        "",
        f"`{command}` compiles each MLPerf Tiny int8 model with the aot backend, builds",
        f"it with `{compiler_version(host_compiler())}` and `{' '.join(HOST_CFLAGS)}`, and times",
        "one inference per call through Python (ctypes), interleaved with LiteRT",
        "(XNNPACK, 1 thread) and the TFLM interpreter (reference kernels) on the same",
        "input, in one process. The outputs are checked equal to TFLM's first. Arena:",
        "the bundle's planned activation arena vs the smallest arena with which the",
        "host TFLM interpreter allocates and invokes (bisection; includes TFLM's",
        "own runtime structures).",
        "",
        f"Measured on {cpu} ({platform.machine()}), Python {platform.python_version()}, "
        f"ai-edge-litert {version('ai-edge-litert')}, tflite-micro {version('tflite-micro')}:",
        "",
        "| model | aot p50 (ms) | LiteRT p50 (ms) | TFLM p50 (ms) | aot / LiteRT | TFLM / aot | aot arena (B) | TFLM arena (B) | weights (B) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in results:
        p = r["p50"]
        lines.append(
            f"| {r['model']} | {p['aot']:.4f} | {p['litert']:.4f} | {p['tflm']:.3f} | "
            f"{p['aot'] / p['litert']:.2f} | {p['tflm'] / p['aot']:.0f} | {r['aot_arena']:,} | "
            f"{r['tflm_arena']:,} | {r['weights']:,} |"
        )
    del ai_edge_litert
    ratios = {r["model"]: r["p50"]["aot"] / r["p50"]["litert"] for r in results}
    speedups = {r["model"]: r["p50"]["tflm"] / r["p50"]["aot"] for r in results}
    within = [m for m, v in ratios.items() if v <= 2.0]
    missed = [f"{m} ({v:.1f}x)" for m, v in ratios.items() if v > 2.0]
    lines += [
        "",
        "Goals (this host, 1 thread): p50 within 2x of LiteRT: "
        + (f"met for {', '.join(within)}" if within else "met for none")
        + (f"; not met for {', '.join(missed)}" if missed else "")
        + ". At least 10x faster than the TFLM interpreter: "
        + ("met for all three" if all(v >= 10 for v in speedups.values()) else "not met for all")
        + f" ({min(speedups.values()):.0f}x to {max(speedups.values()):.0f}x).",
        "How the bundle gets there on this host (gcc with AVX-512 VNNI, the `EK_LANES`",
        "path of `kernels/ek_common.h`): a convolution keeps 16 output channels in the",
        "lanes of one register, with the weights packed at compile time so that each",
        "broadcast 4-byte input word meets 64 bytes of weights in one `vpdpbusd` (no",
        "horizontal sum per output), four output pixels share each weight load, and",
        "the exact TFLM requantization (double rounding) runs 16 channels at a time",
        "in vector code. What limits each model: ResNet-8's 3x3 convolutions run",
        "at the `vpdpbusd` rate with one broadcast load per pixel and input word",
        "(its 16-channel layers fill a single block of lanes), plus the window",
        "gathering and ADD (gcc's vectorization of the scalar requantization); it",
        "sits just under the 2x line, and runs on this shared 2-core machine vary",
        "by about 5%. KWS is dominated by",
        "its 1x1 convolutions (same kernel) and the four depthwise layers, which",
        "gcc vectorizes over channels; AD's fully connected layers (batch 1) still",
        "use the portable dot product (the lanes kernel there ran AD 25% faster but",
        "made gcc compile ResNet-8's convolution loop 25% slower, so it is not used)",
        "and, at a few microseconds per inference, the ctypes call overhead counts.",
        "Weights on the host are packed in blocks of",
        "16 channels (or padded to 32-byte rows without VNNI), on DSP targets the",
        "conv and depthwise filters are stored widened to int16 (see below), hence",
        "the weight sizes above the model's. The arenas grew by the scratch of four",
        "output pixels (x86) or of the widened int16 windows (DSP): under 1 kB.",
    ]
    text = "\n".join(lines) + "\n"
    if all(r.get("m4") for r in results):
        text += render_m4_objects(results)
    if all("qemu" in r for r in results):
        text += render_qemu(results, command)
    return text


def replace_section(text: str, section: str) -> str:
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        return pattern.sub(lambda _: section + "\n", text, count=1)
    return text.rstrip("\n") + "\n\n" + section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="aot vs LiteRT vs TFLM on the host")
    parser.add_argument("--models", type=Path, default=REPO.parent / "shared" / "models" / "mlperf-tiny")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    parser.add_argument("--qemu", action="store_true", help="also run the firmware on the emulated Cortex-M4")
    args = parser.parse_args(argv)
    results = []
    with tempfile.TemporaryDirectory(prefix="edgekit-aot-bench-") as tmp:
        for name in MODELS:
            r = measure(args.models / name, args.rounds, Path(tmp))
            p = r["p50"]
            print(
                f"{name}: aot {p['aot']:.4f} ms, litert {p['litert']:.4f} ms, tflm {p['tflm']:.3f} ms; "
                f"aot/litert {p['aot'] / p['litert']:.2f}, tflm/aot {p['tflm'] / p['aot']:.0f}; "
                f"arena aot {r['aot_arena']} B vs tflm {r['tflm_arena']} B",
                flush=True,
            )
            r["m4"] = measure_m4_object(args.models / name, Path(tmp))
            if args.qemu:
                r["qemu"] = measure_qemu(args.models / name, Path(tmp))
                print(f"  qemu: {r['qemu']}", flush=True)
            results.append(r)
    command = ".venv/bin/python bench/aot_host.py" + (f" --rounds {args.rounds}" if args.rounds != 5 else "")
    command += " --qemu" if args.qemu else ""
    section = render(results, command)
    if args.write:
        path = REPO / "BENCHMARKS.md"
        text = path.read_text() if path.exists() else "# Benchmarks\n"
        path.write_text(replace_section(text, section))
        print(f"updated {path}")
    else:
        sys.stdout.write(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
