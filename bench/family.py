"""The shared models across the emulated Cortex-M family: aot beside TFLM + CMSIS-NN, as report files.

For each emulated core (M0 `microbit`, M3 `mps2-an385`, M4 `mps2-an386`,
M7 `mps2-an500`, M33 `mps2-an505`, M55 `mps3-an547`) and each shared MLPerf
Tiny int8 model, `bench()` runs the aot firmware (the target's own
conversion, `--optimize balanced`) and, when TFLM_DIR names a TFLM tree,
the tflm-cmake firmware built from it for the same core (CMSIS-NN picks its
portable, DSP or Helium kernels from the compiler's target flags). Each
writes one `edgekit.report/1` file,
bench/reports/family/<model>-<target>-<aot|tflm>.json: instructions per
inference from QEMU's `-icount shift=0` clock (`device.instructions`),
arena, firmware flash, and outputs against the host TFLM interpreter bit
for bit (`fidelity`). A model a core cannot hold is refused by the fit
report or the firmware build with the numbers; that line is kept as
<model>-<target>-<backend>.refused.txt, and a run that cannot finish (the
emulator stops) as .failed.txt, and the table says so.

The Markdown table is printed from those files. Without TFLM_DIR (or with
--backend aot) only the aot reports are measured again and the TFLM ones
already there are kept, so re-running the aot side after a kernel change
is one command:

    python bench/family.py [MODEL.tflite|DIR ...] [--target T ...] [--backend aot|tflm ...]
        [--runs 2] [--limit 20] [--out DIR] [--tables-only]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import report_files as rf
from firmware_qemu import SHORT, macs

SECTION = "family"
#: the emulated cores, smallest first: target -> core
TARGETS = {
    "microbit": "Cortex-M0",
    "mps2-an385": "Cortex-M3",
    "mps2-an386": "Cortex-M4",
    "mps2-an500": "Cortex-M7",
    "mps2-an505": "Cortex-M33",
    "mps3-an547": "Cortex-M55",
}
BACKENDS = ("aot", "tflm")
#: the kernels CMSIS-NN compiles for each core: its headers decide from the compiler's target flags
#: (arm_nn_math_types.h: ARM_MATH_DSP from __ARM_FEATURE_DSP, ARM_MATH_MVEI from __ARM_FEATURE_MVE)
CMSIS_NN_PATH = {
    "microbit": "C",
    "mps2-an385": "C",
    "mps2-an386": "DSP",
    "mps2-an500": "DSP",
    "mps2-an505": "DSP",
    "mps3-an547": "MVE",
}


def aot_path(report) -> str:
    """The kernels the aot bundle was generated with, from the features its conversion used."""
    features = report["artifact"]["info"].get("features") or []
    return "MVE" if "mve" in features else "DSP" if "dsp" in features else "C"


def report_path(out: Path, model: Path, target: str, backend: str) -> Path:
    return out / rf.file_name(model, target, backend)


def refusal_path(out: Path, model: Path, target: str, backend: str, kind: str = "refused") -> Path:
    """Where the one line goes when the fit report refuses the model ("refused") or the run fails ("failed")."""
    return report_path(out, model, target, backend).with_suffix(f".{kind}.txt")


def measure(models, target_names, backends, out: Path, runs: int, limit: int, registry_uri: str | None) -> None:
    from edgekit.errors import EdgekitError

    out.mkdir(parents=True, exist_ok=True)
    with rf.registry(registry_uri) as uri:
        for target in target_names:
            for model in models:
                for backend in backends:
                    path = report_path(out, model, target, backend)
                    lines = {kind: refusal_path(out, model, target, backend, kind) for kind in ("refused", "failed")}
                    for line in lines.values():
                        line.unlink(missing_ok=True)
                    settings = rf.settings(runs=runs, warmup=1, limit=limit, threads=None)
                    try:
                        report = rf.bench_to_file(model, target, path, registry_uri=uri, backend=backend,
                                                  quantization="int8", settings=settings)  # fmt: skip
                    except EdgekitError as exc:
                        # a model the core cannot hold is a result; so is a run the emulator
                        # cannot finish: both are kept, with the line that says why, and the rest go on
                        line = lines["refused" if "does not fit" in str(exc) else "failed"]
                        path.unlink(missing_ok=True)
                        line.write_text(" ".join(str(exc).split()) + "\n")
                        print(f"{line.name}: {exc}", flush=True)
                        continue
                    exact = "bit-exact" if report["fidelity"].get("bit_exact") else "NOT bit-exact"
                    print(f"{path.name}: {report['device']['instructions']:,.0f} instructions, {exact}", flush=True)


def _cell(out: Path, model: Path, target: str, backend: str):
    """(report, None), (None, "does not fit" or "failed") or (None, None) when neither was measured."""
    path = report_path(out, model, target, backend)
    if path.is_file():
        return rf.read(path), None
    for kind, says in (("refused", "does not fit"), ("failed", "failed")):
        if refusal_path(out, model, target, backend, kind).is_file():
            return None, says
    return None, None


def _instr(report) -> int:
    return int(report["device"]["instructions"])


def table(models, target_names, out: Path) -> str:
    lines = [
        "| model | core (target) | kernels aot / TFLM | aot instr. | aot instr./MAC | TFLM+CMSIS-NN instr. | TFLM instr./MAC "
        "| aot / TFLM | arena aot / TFLM (B) | flash aot / TFLM (B) | bit-exact aot, TFLM (against) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    cited = []
    for model in models:
        count = macs(model)
        label = f"{SHORT.get(model.stem, model.stem)} ({count / 1e6:.2f} M MACs)"
        for target in target_names:
            aot, aot_refused = _cell(out, model, target, "aot")
            tflm, tflm_refused = _cell(out, model, target, "tflm")
            cited += [p for p in (report_path(out, model, target, b) for b in BACKENDS) if p.is_file()]
            if aot is None and tflm is None and aot_refused is None and tflm_refused is None:
                continue

            def per(report, refused):
                if report is not None:
                    return f"{_instr(report):,}", f"{_instr(report) / count:.2f}"
                return (refused, "-") if refused else ("-", "-")

            aot_i, aot_m = per(aot, aot_refused)
            tflm_i, tflm_m = per(tflm, tflm_refused)
            ratio = f"{_instr(aot) / _instr(tflm):.2f}x" if aot and tflm else "-"

            def pair(field):
                a = f"{aot['memory'][field]:,}" if aot else "-"
                t = f"{tflm['memory'][field]:,}" if tflm else "-"
                return f"{a} / {t}"

            def exact(report):
                if report is None:
                    return "-"
                verdict = "yes" if report["fidelity"].get("bit_exact") else "NO"
                return f"{verdict} ({report['fidelity'].get('reference')})"

            lines.append(
                f"| {label} | {TARGETS.get(target, '?')} (`{target}`) | {aot_path(aot) if aot else '-'} / "
                f"{CMSIS_NN_PATH.get(target, '?') if tflm else '-'} | {aot_i} "
                f"| {aot_m} | {tflm_i} | {tflm_m} | {ratio} | {pair('arena_bytes')} | {pair('flash_bytes')} "
                f"| {exact(aot)}, {exact(tflm)} |"
            )
    refusals, failures = [], []
    for model in models:
        for target in target_names:
            for backend in BACKENDS:
                for kind, found in (("refused", refusals), ("failed", failures)):
                    path = refusal_path(out, model, target, backend, kind)
                    if path.is_file():
                        found.append(f"- {SHORT.get(model.stem, model.stem)} {backend} on `{target}`: {path.read_text().strip()}")
    n = sorted({r["fidelity"]["n"] for r in map(rf.read, cited)})
    lines += ["", f"Outputs compared on {', '.join(map(str, n))} inputs with the reference `bench()` gives each "
              "backend (in brackets: `tflm-host`, the host TFLM interpreter; `litert`, LiteRT)."]
    if refusals:
        lines += ["", "Refused (the fit report or the firmware build, with the numbers):", "", *refusals]
    if failures:
        lines += ["", "Failed (the run could not finish):", "", *failures]
    lines += ["", f"Reports: {rf.cite(cited)}.", ""]
    return "\n".join(lines)


def chosen_backends(requested: list[str] | None) -> list[str]:
    """The backends asked for, else aot and, when TFLM_DIR names a TFLM tree, tflm."""
    backends = requested or (["aot", "tflm"] if os.environ.get("TFLM_DIR") else ["aot"])
    if "tflm" in backends and not os.environ.get("TFLM_DIR"):
        raise SystemExit("--backend tflm needs TFLM_DIR (a TensorFlow Lite Micro tree, see firmware_templates/tflm-cmake)")
    return backends


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, help="model files or a folder of the MLPerf Tiny models")
    parser.add_argument("--target", action="append", choices=list(TARGETS), help="emulated core (default: all)")
    parser.add_argument("--backend", action="append", choices=BACKENDS,
                        help="what to measure (default: aot, and tflm when TFLM_DIR is set)")  # fmt: skip
    rf.add_emulator_options(parser, runs=2, out=rf.REPORTS / SECTION)
    args = parser.parse_args(argv)
    models = rf.models_from(args.models)
    target_names = args.target or list(TARGETS)
    backends = chosen_backends(args.backend)
    if not args.tables_only:
        measure(models, target_names, backends, args.out, args.runs, args.limit, args.registry)
    sys.stdout.write(table(models, target_names, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
