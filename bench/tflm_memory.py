"""Arena and flash as edgekit's tflm backend predicts them, beside what TFLM used on a Cortex-M4.

    .venv/bin/python bench/tflm_memory.py [MODEL.tflite|DIR ...] [--out DIR] [--tables-only]
    TFLM_DIR=... [TFLM_LIBRARY=...] .venv/bin/python bench/tflm_memory.py --firmware [MLPERF_DIR]

For each int8 MLPerf Tiny model: the tflm backend converts it for
`nucleo-l4r5zi` (a board on a serial port, so it cannot run here), and the
artifact is placed on `host-cpu`, where the harness benchmarks it in TFLM's
interpreter and leaves one `edgekit.report/1` file,
bench/reports/tflm/<model>-host-cpu-tflm-nucleo.json. Its `artifact.info`
carries what the conversion predicted for the board: the arena measured by
bisection with the host TFLM interpreter, the arena written into the
firmware (measured + alignment margin) and the flash estimate (model + TFLM
runtime with CMSIS-NN, `fit`). The table sets those beside the figures
measured on the emulated Cortex-M4 with TFLM + CMSIS-NN (from the models'
README). Prints Markdown.

With --firmware (needs TFLM_DIR, qemu-system-arm and arm-none-eabi-gcc): the
tflm-cmake firmware of each model is built and run on the emulated
Cortex-M4 (mps2-an386): its flash (text+data), its instructions per
inference, and whether its outputs equal the host TFLM interpreter's on
three seeded inputs, next to the README's count for the same kernels
(CMSIS-NN when the TFLM tree has third_party/cmsis_nn, else reference).
This part needs a TFLM tree outside the project and prints a table only.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import report_files as rf

from edgekit import targets

FOLDER = "tflm"
BOARD = "nucleo-l4r5zi"
TARGET = "host-cpu"

# measured on the emulated Cortex-M4 with TFLM + CMSIS-NN (MLPerf Tiny models' README)
ON_TARGET = {
    "kws_ref_model": {"arena": 22_820, "flash": 159_868},
    "pretrainedResnet_quant": {"arena": 54_996, "flash": 204_428},
    "ad01_int8": {"arena": 2_580, "flash": 382_892},
}


def report_path(out: Path, model: Path) -> Path:
    return out / rf.file_name(model, TARGET, "tflm", "nucleo")


def measure(models: list[Path], out: Path, runs: int, registry_uri: str | None) -> None:
    """Convert for the board, then benchmark the same artifact in the host interpreter."""
    from edgekit import pipeline

    with rf.registry(registry_uri) as uri:
        for model in models:
            conversion = pipeline.convert(rf.as_given(model), BOARD, backend="tflm", registry_uri=uri)
            artifact, source = conversion.artifact, conversion.source
            contender = rf.Contender(
                artifact, source, rf.settings(runs=runs, warmup=1), report_path(out, model),
                reference=pipeline.reference_runner(artifact, source),
            )  # fmt: skip
            (report,) = rf.interleaved([contender], TARGET, rounds=1)
            print(f"{model.name}: arena {report['artifact']['info']['arena_measured_bytes']:,} B", flush=True)


def table(models: list[Path], out: Path) -> str:
    lines = [
        "| model | arena measured (host) | arena in firmware | arena used on Cortex-M4 | host / target "
        "| flash estimate | flash measured | estimate / measured |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for model in models:
        path = report_path(out, model)
        info = rf.read(path)["artifact"]["info"]
        measured = ON_TARGET.get(model.stem)
        flash = info["fit"]["flash_bytes"]
        if measured:
            lines.append(
                f"| {model.name} | {info['arena_measured_bytes']:,} | {info['arena_bytes']:,} | {measured['arena']:,} "
                f"| {info['arena_measured_bytes'] / measured['arena']:.2f} | {flash:,} "
                f"| {measured['flash']:,} | {flash / measured['flash']:.3f} |"
            )
        else:
            lines.append(f"| {model.name} | {info['arena_measured_bytes']:,} | {info['arena_bytes']:,} | - | - "
                         f"| {flash:,} | - | - |")  # fmt: skip
    lines += ["", f"Reports: {rf.cite(report_path(out, m) for m in models)}."]
    return "\n".join(lines) + "\n"


# instructions per inference of TFLM on the emulated Cortex-M4 (README): reference kernels, CMSIS-NN
README_INSTRUCTIONS = {
    "kws_ref_model.tflite": {"reference": 43_045_360, "cmsis-nn": 7_700_400},
    "pretrainedResnet_quant.tflite": {"reference": 107_400_200, "cmsis-nn": 29_861_040},
    "ad01_int8.tflite": {"reference": 1_952_360, "cmsis-nn": 582_960},
}


def firmware_rows(mlperf: Path) -> None:
    import os

    import numpy as np

    from edgekit import firmware, pipeline, placement
    from edgekit.core import RunOptions

    if not os.environ.get("TFLM_DIR"):
        raise SystemExit("--firmware needs TFLM_DIR (a TensorFlow Lite Micro tree)")
    tree = Path(os.environ["TFLM_DIR"])
    kernels = "cmsis-nn" if (tree / "third_party" / "cmsis_nn").is_dir() else "reference"
    board, host_target = targets.get("mps2-an386"), targets.get(TARGET)
    print(f"| model | kernels | flash text+data (B) | instructions / inference | TFLM {kernels} (README) "
          "| ratio | outputs equal host TFLM |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, counts in README_INSTRUCTIONS.items():
        reference = counts[kernels]
        artifact = pipeline.convert(str(mlperf / name), board.name, backend="tflm").artifact
        host = placement.place(artifact, host_target, RunOptions())
        with placement.place(artifact, board, RunOptions()) as device:
            (spec,) = device.inputs
            pattern = ((np.arange(int(np.prod(spec.shape))) * 7) % 256 - 128).astype(np.int8)
            device.infer({spec.name: pattern.reshape(spec.shape)})
            instructions = int(device.device_timing()["instructions"])
            rng = np.random.default_rng(0)
            equal = True
            for _ in range(3):
                x = rng.integers(-128, 128, size=spec.shape, dtype=np.int8)
                ours, theirs = device.infer({spec.name: x}), host.infer({spec.name: x})
                equal &= all(np.array_equal(ours[k], theirs[k]) for k in theirs)
            sizes = firmware.elf_sizes(device.project.elf)
        print(f"| {name} | {kernels} | {sizes.text + sizes.data:,} | {instructions:,} | {reference:,} "
              f"| {instructions / reference:.2f} | {'yes' if equal else 'NO'} |")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, help="model files or a folder of the MLPerf Tiny models")
    parser.add_argument("--runs", type=int, default=20, help="timed runs in the host interpreter")
    parser.add_argument("--out", type=Path, default=rf.REPORTS / FOLDER, help="folder of the report files")
    parser.add_argument("--registry", help="registry to cache conversions in (default: a temporary one)")
    parser.add_argument("--tables-only", action="store_true", help="print the table from the reports already there")
    parser.add_argument("--firmware", action="store_true", help="build and run TFLM firmware (needs TFLM_DIR)")
    args = parser.parse_args(argv)
    if args.firmware:
        firmware_rows(args.models[0] if args.models else rf.MLPERF_DIR)
        return 0
    models = rf.models_from(args.models)
    if not args.tables_only:
        measure(models, args.out, args.runs, args.registry)
    sys.stdout.write(table(models, args.out))
    return 0


if __name__ == "__main__":
    sys.exit(main())
