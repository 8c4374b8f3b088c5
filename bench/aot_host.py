"""Host latency of aot bundles vs LiteRT (1 thread) vs the TFLM interpreter, and arenas, as report files.

For each MLPerf Tiny int8 model, three edgekit runners on `host-cpu`: the
aot bundle built by the host C compiler (edgekit.aot.hostbuild.HOST_CFLAGS)
and called through ctypes, LiteRT (XNNPACK, one thread) and the TFLM
interpreter (reference kernels). They are placed once and measured by the
harness in turn, round after round, in one process on the same input, and
each leaves one `edgekit.report/1` file,
bench/reports/aot-host/<model>-host-cpu-<aot|tflite|tflm>.json. The table's
p50s, ratios and arenas are read back from those files.

    .venv/bin/python bench/aot_host.py [MODEL.tflite|DIR ...] [--rounds 5] [--runs 400]
        [--qemu] [--loaded] [--write] [--out DIR] [--tables-only]

`--loaded` says in the text that other work shared the machine's cores. `--qemu` adds the emulated Cortex-M4 table, read from the report files
bench/firmware_qemu.py writes (run it first). `--write` replaces the
`## AOT compiler` section of BENCHMARKS.md.
"""

from __future__ import annotations

import argparse
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import report_files as rf

SECTION = "## AOT compiler"
FOLDER = "aot-host"
TARGET = "host-cpu"
BACKENDS = ("aot", "tflite", "tflm")
FIRMWARE = rf.REPORTS / "firmware"

#: TFLM on the emulated Cortex-M4, from the MLPerf Tiny models' README (same QEMU board,
#: -icount shift=0): instructions per inference with reference kernels and with CMSIS-NN,
#: and firmware flash with CMSIS-NN. Figures, not reports: edgekit does not build TFLM's tree.
TFLM_M4 = {
    "kws_ref_model": (43_045_360, 7_700_400, 159_868),
    "pretrainedResnet_quant": (107_400_200, 29_861_040, 204_428),
    "ad01_int8": (1_952_360, 582_960, 382_892),
}

CORTEX_M4 = ["-mcpu=cortex-m4", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv4-sp-d16"]


def measure(models: list[Path], out: Path, rounds: int, runs: int, registry_uri: str | None) -> None:
    """The three runners of each model, interleaved; one report file each."""
    from edgekit.pipeline import artifact_for, reference_runner

    with rf.registry(registry_uri) as uri:
        for model in models:
            contenders = []
            for backend in BACKENDS:
                artifact, source = artifact_for(rf.as_given(model), TARGET, backend, None, None, uri)
                # the interpreter is ~100x slower: fewer runs keep its rounds as long as the others'
                count = max(1, runs // 20) if backend == "tflm" else runs
                contenders.append(
                    rf.Contender(
                        artifact=artifact,
                        source=source,
                        settings=rf.settings(runs=count, warmup=max(1, count // 20)),
                        out=out / rf.file_name(model, TARGET, backend),
                        reference=reference_runner(artifact, source) if backend == "aot" else None,
                    )
                )
            reports = rf.interleaved(contenders, TARGET, rounds)
            p50 = {b: r["latency_ms"]["p50"] for b, r in zip(BACKENDS, reports)}
            print(f"{model.name}: " + ", ".join(f"{b} p50 {v:.4f} ms" for b, v in p50.items()), flush=True)


def read_host(models: list[Path], out: Path) -> list[dict]:
    return [{b: rf.read(out / rf.file_name(m, TARGET, b)) for b in BACKENDS} | {"model": m} for m in models]


def measure_m4_object(model_path: Path, workdir: Path) -> dict | None:
    """text/data/bss of the bundle (DSP path) compiled alone for Cortex-M4 with -O2 -Werror.

    A build measurement, not a benchmark: no runner is involved, so it is
    printed with the tables and is not a report.
    """
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


QEMU_PROSE = """
With `--qemu`, the same command adds the aot firmware for the emulated
Cortex-M4 (`mps2-an386`, DSP path: `__smlad`/`__sxtb16`) from the report
files `bench/firmware_qemu.py` writes (`bench()` with `-n 3 -w 1 --limit 20`):
instructions per inference from QEMU's `-icount shift=0` clock
(`device.instructions`), outputs compared with the host TFLM interpreter on
20 inputs (`fidelity`), firmware flash and RAM (`memory`). TFLM's columns are
the figures in the models' README (same board, same counting): edgekit does
not run TFLM's own build, so they are not reports.

The DSP path (`EK_USE_DSP`, `--optimize balanced`, the default): convolution
filters are stored as int16 in SMLAD order, four rows interleaved word by
word. Convolutions whose input channels are a multiple of 8 (ResNet-8's,
KWS's 1x1) run tap by tap (`ek_conv_taps.h`): no window is copied, a pair of
output pixels accumulates one widened tap at a time, and the dot product (two
pixels by four channels, an assembly loop) is 11 instructions per 16 MACs;
the others gather their windows into patches for the same loop. A
convolution whose output only feeds an ADD is fused with it (ResNet blocks),
its output written over the ADD's other input. Depthwise layers read a ring
of input rows widened to int16 once: a tap of four channels is two LDRDs and
four SMLABB/SMLATT. Requantization is SMMLAR of the doubled accumulator (the
filters are stored doubled), an add and a shift from parameters computed at
compile time, then SSAT (about 10 instructions per output); ADD reads each
input's rescaled term from a compile-time table (14 instructions per
element). Fully connected layers widen their input row once per layer and
keep the weights int8, four rows interleaved word by word and unpacked with
SXTB16 in an assembly loop (18 instructions per 16 MACs; int16 at
`--optimize speed`, 11 per 16). The int16 filters cost flash: the firmware
column includes them.
"""

QEMU_LEFT = """What is left: KWS's four 1x1 convolutions are 60% of its instructions
(0.95 per MAC, where SMLAD's floor is 0.5 plus the loads). At `--optimize size`
the compact kernels read the model's int8 filters as they are, with raw
biases (int16 where they fit) and one requantization word per channel, and
SOFTMAX computes its exp: the bundle is 1.006x (AD), 1.043x (ResNet-8) and
1.142x (KWS) its weight bytes (goal 1.15x; it was 1.38x for KWS, whose 588
channels of folded bias and two-word requantization took 7 KB), for 3.4x
(KWS), 3.7x (ResNet-8) and 1.03x (AD) the instructions of `balanced`.
"""


def render_qemu(models: list[Path]) -> str:
    files = [FIRMWARE / rf.file_name(m, "mps2-an386", "aot", "dsp") for m in models]
    lines = [
        QEMU_PROSE,
        "| model | aot instructions | TFLM reference kernels | TFLM + CMSIS-NN | aot bit-exact "
        "| aot firmware flash (B) | TFLM + CMSIS-NN flash (B) | aot firmware RAM (B) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    ratios, fewer, half = [], True, True
    for model, path in zip(models, files):
        r = rf.read(path)
        count = int(r["device"]["instructions"])
        ref, cmsis, flash = TFLM_M4.get(model.stem, (None, None, None))
        fid = r["fidelity"]
        lines.append(
            f"| {model.name} | {count:,} | {f'{ref:,}' if ref else '-'} | {f'{cmsis:,}' if cmsis else '-'} "
            f"| {'yes' if fid.get('bit_exact') else 'NO'} ({fid['n']} inputs) | {r['memory']['flash_bytes']:,} "
            f"| {f'{flash:,}' if flash else '-'} | {r['memory']['ram_bytes']:,} |"
        )
        if cmsis:
            ratios.append(f"{model.name} {count / cmsis:.2f}")
            fewer &= count < cmsis
            half &= count <= cmsis / 2
    lines += [
        "",
        f"Reports: {rf.cite(files)}.",
        "",
        "aot instructions / TFLM + CMSIS-NN's: " + ", ".join(ratios) + ". Goals: fewer than "
        f"TFLM + CMSIS-NN for every model ({'met' if fewer else 'NOT met'}); half of them "
        f"({'met' if half else 'not met'}).",
        QEMU_LEFT,
    ]
    import firmware_qemu  # the --optimize table is that script's

    return "\n".join(lines) + firmware_qemu.modes_table(models, FIRMWARE)


def render_m4_objects(models: list[Path], sizes: list[dict]) -> str:
    lines = [
        "",
        "The bundle alone for Cortex-M4 (`arm-none-eabi-gcc -mcpu=cortex-m4 -mthumb",
        "-mfloat-abi=hard -mfpu=fpv4-sp-d16 -std=c99 -O2 -Wall -Wextra -Werror -c`,",
        "DSP path; `arm-none-eabi-size`): everything is flash, nothing is mutable and",
        "global; the caller provides the arena. These sizes are a build measurement",
        "printed by the script, not a benchmark report (nothing runs); the firmware",
        "flash in the reports below includes them.",
        "",
        "| model | text (B) | data (B) | bss (B) | of which weights (B) | arena (B) |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for model, m in zip(models, sizes):
        lines.append(
            f"| {model.name} | {m['text']:,} | {m['data']:,} | {m['bss']:,} | {m['weights']:,} | {m['arena']:,} |"
        )
    return "\n".join(lines) + "\n"


HOST_PROSE = """How the bundle gets there on a host with AVX-512 VNNI (gcc, the `EK_LANES`
path of `kernels/ek_common.h`): a convolution keeps 16 output channels in the
lanes of one register, with the weights packed at compile time so that each
broadcast 4-byte input word meets 64 bytes of weights in one `vpdpbusd` (no
horizontal sum per output), four output pixels share each weight load, and
the exact TFLM requantization (double rounding) runs 16 channels at a time
in vector code. What limits each model: ResNet-8's 3x3 convolutions run
at the `vpdpbusd` rate with one broadcast load per pixel and input word
(its 16-channel layers fill a single block of lanes), plus the window
gathering and ADD (gcc's vectorization of the scalar requantization); runs
on this shared 2-core machine vary by about 5%. KWS is dominated by
its 1x1 convolutions (same kernel) and the four depthwise layers, which
gcc vectorizes over channels; AD's fully connected layers (batch 1) keep
eight outputs in the lanes of an AVX2 register (`EK_FC_LANES`: one
`vpmaddwd` per input pair and eight outputs, no horizontal sums), and the
runner calls the bundle with buffers and ctypes arguments made once, reading
the feed in place and copying nothing. With AVX2 but without AVX-512 VNNI
(`EK_X86_CONV`, `kernels/ek_x86.h`), convolutions read the same packing: four
taps of a window, widened to int16 once per pixel and
broadcast, meet 4 channels' weights in one `vpmaddwd` (exact; the byte form
`vpmaddubsw` saturates), three pixels sharing each weight vector; depthwise
layers interleave two taps of 16 channels into one `vpmaddwd`; both
requantize 16 channels at a time with the exact double rounding. Without
either, every convolution takes the portable int8 dot product.
Weights on the host are packed in blocks of
16 channels (rows padded to 32 bytes without SIMD), on DSP targets the
conv and depthwise filters are stored widened to int16 (see below), hence
the weight sizes above the model's. The arenas grew by the scratch of four
output pixels (x86) or of the widened int16 windows (DSP): under 1 kB.
"""


def verdict(met: dict[str, bool], values: dict[str, str]) -> str:
    yes = [m for m, ok in met.items() if ok]
    no = [f"{m} ({values[m]})" for m, ok in met.items() if not ok]
    if not no:
        return f"met for all ({', '.join(values[m] for m in yes)})"
    return (f"met for {', '.join(f'{m} ({values[m]})' for m in yes)}; " if yes else "") + f"not met for {', '.join(no)}"


NO_VNNI_NOTE = """This host cannot take the bundle's AVX-512 VNNI path: KWS's and ResNet-8's
convolutions run the AVX2 path of `kernels/ek_x86.h`. The last measurement of
the VNNI path is in the next section."""

LOADED_NOTE = """Other work shared the cores while it was measured; the runners alternate,
but a longer inference is preempted more often, so a miss here may be partly
the load."""


def render(models: list[Path], out: Path, command: str, load_note: str, sizes=None, qemu=False) -> str:
    from edgekit.aot.hostbuild import HOST_CFLAGS, compiler_version, host_compiler

    rows = read_host(models, out)
    env = rows[0]["aot"]["env"]
    packages = env["packages"]
    rounds = rows[0]["aot"]["latency_ms"].get("rounds", 1)
    counts = {b: rows[0][b]["latency_ms"]["count"] for b in BACKENDS}
    files = [out / rf.file_name(r["model"], TARGET, b) for r in rows for b in BACKENDS]
    features = rows[0]["aot"]["target"].get("features") or []
    vnni = {"avx512f", "avx512-vnni"} <= set(features)
    avx2 = "avx2" in features
    if vnni:
        path = "the bundle's `EK_LANES` path"
    elif avx2:
        path = "no AVX-512 VNNI, so the bundle's AVX2 path, `EK_X86_CONV`"
    else:
        path = "neither AVX-512 VNNI nor AVX2, so the portable dot product"
    lines = [
        SECTION,
        "",
        f"`{command}` converts each MLPerf Tiny int8 model for `host-cpu` with the aot backend",
        f"(built with `{compiler_version(host_compiler())}` and `{' '.join(HOST_CFLAGS)}`,",
        "called through ctypes by the `aot-host` runner), the tflite backend (LiteRT,",
        "XNNPACK, 1 thread) and the tflm backend (the TFLM interpreter, reference",
        "kernels), places the three runners once and lets the harness time them in",
        f"turn, {rounds} rounds in one process on the same input ({counts['aot']:,}, "
        f"{counts['tflite']:,} and {counts['tflm']:,} timed runs).",
        "Each leaves a report file; every number below is read from them:",
        f"{rf.cite(files)}.",
        "The aot report's `fidelity` checks its outputs bit for bit against TFLM's.",
        "Arena: the bundle's planned activation arena (`memory.arena_bytes` of the",
        "aot report) vs the smallest arena with which the host TFLM interpreter",
        "allocates and invokes (`memory.arena_measured_bytes` of the tflm report;",
        "bisection; includes TFLM's own runtime structures).",
        "",
        f"Measured on {env['cpu']} ({env['machine']}, {env['cores']} cores; CPU features "
        f"{', '.join(features) or 'none listed'}: {path}), Python {env['python']}, "
        f"ai-edge-litert {packages.get('ai-edge-litert')}, tflite-micro {packages.get('tflite-micro')}{load_note}:",
        "",
        "| model | aot p50 (ms) | LiteRT p50 (ms) | TFLM p50 (ms) | aot / LiteRT | TFLM / aot "
        "| aot arena (B) | TFLM arena (B) | weights (B) | aot bit-exact |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    ratios, speedups = {}, {}
    for r in rows:
        name = r["model"].name
        p = {b: r[b]["latency_ms"]["p50"] for b in BACKENDS}
        ratios[name], speedups[name] = p["aot"] / p["tflite"], p["tflm"] / p["aot"]
        fid = r["aot"]["fidelity"] or {}
        lines.append(
            f"| {name} | {p['aot']:.4f} | {p['tflite']:.4f} | {p['tflm']:.3f} | {ratios[name]:.2f} "
            f"| {speedups[name]:.0f} | {r['aot']['memory']['arena_bytes']:,} "
            f"| {r['tflm']['memory']['arena_measured_bytes']:,} | {r['aot']['memory']['weights_bytes']:,} "
            f"| {'yes' if fid.get('bit_exact') else 'NO'} ({fid.get('n')} inputs) |"
        )
    lines += [
        "",
        "Goals (this host, 1 thread): p50 at most LiteRT's: "
        + verdict({m: v <= 1.0 for m, v in ratios.items()}, {m: f"{v:.2f}x" for m, v in ratios.items()})
        + ". At least 10x faster than the TFLM interpreter: "
        + verdict({m: v >= 10 for m, v in speedups.items()}, {m: f"{v:.0f}x" for m, v in speedups.items()})
        + ".",
    ]
    if not vnni and avx2:
        lines.append(NO_VNNI_NOTE)
    if load_note:
        lines.append(LOADED_NOTE)
    lines += ["", HOST_PROSE]
    text = "\n".join(lines)
    if sizes and all(sizes):
        text += render_m4_objects(models, sizes)
    if qemu:
        text += render_qemu(models)
    return text


def replace_section(text: str, section: str) -> str:
    pattern = re.compile(rf"^{re.escape(SECTION)}\n.*?(?=^## |\Z)", re.S | re.M)
    if pattern.search(text):
        return pattern.sub(lambda _: section.rstrip("\n") + "\n\n", text, count=1)
    return text.rstrip("\n") + "\n\n" + section


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="aot vs LiteRT vs TFLM on the host")
    parser.add_argument("models", nargs="*", type=Path, help="model files or a folder of the MLPerf Tiny models")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--runs", type=int, default=400, help="timed runs per round (TFLM: a twentieth)")
    parser.add_argument("--out", type=Path, default=rf.REPORTS / FOLDER, help="folder of the report files")
    parser.add_argument("--registry", help="registry to cache conversions in (default: a temporary one)")
    parser.add_argument("--write", action="store_true", help="update BENCHMARKS.md")
    parser.add_argument("--qemu", action="store_true", help="add the emulated Cortex-M4 table from its reports")
    parser.add_argument("--loaded", action="store_true", help="say the host was busy with other work")
    parser.add_argument("--tables-only", action="store_true", help="render from the reports already there")
    args = parser.parse_args(argv)
    models = rf.models_from(args.models)
    if not args.tables_only:
        measure(models, args.out, args.rounds, args.runs, args.registry)
    with tempfile.TemporaryDirectory(prefix="edgekit-aot-m4-") as tmp:
        sizes = [measure_m4_object(m, Path(tmp)) for m in models]
    command = ".venv/bin/python bench/aot_host.py" + (" --qemu" if args.qemu else "")
    note = ", on a loaded machine (other work shared its 2 cores)" if args.loaded else ""
    section = render(models, args.out, command, note, sizes, args.qemu)
    if args.write:
        path = rf.REPO / "BENCHMARKS.md"
        text = path.read_text() if path.exists() else "# Benchmarks\n"
        path.write_text(replace_section(text, section))
        print(f"updated {path}")
    else:
        sys.stdout.write(section)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
