"""Arena and flash as edgekit's tflm backend predicts them, beside what TFLM used on a Cortex-M4.

    .venv/bin/python bench/tflm_memory.py [MLPERF_DIR]
    TFLM_DIR=... [TFLM_LIBRARY=...] .venv/bin/python bench/tflm_memory.py --firmware [MLPERF_DIR]

For each int8 MLPerf Tiny model: the arena measured by bisection with the host
TFLM interpreter (and how long the measurement took), the arena written into
the firmware (measured + alignment margin), and the flash estimate (model +
TFLM runtime with CMSIS-NN) next to the figures measured on the emulated
Cortex-M4 with TFLM + CMSIS-NN (from the models' README). Prints Markdown.

With --firmware (needs TFLM_DIR, qemu-system-arm and arm-none-eabi-gcc): the
tflm-cmake firmware of each model is built and run on the emulated
Cortex-M4 (mps2-an386): its flash (text+data), its instructions per
inference, and whether its outputs equal the host TFLM interpreter's on
three seeded inputs, next to the README's count for the same kernels
(CMSIS-NN when the TFLM tree has third_party/cmsis_nn, else reference).
"""

from __future__ import annotations

import sys
import tempfile
import time
from pathlib import Path

from edgekit import backends, targets
from edgekit.models import open_source
from edgekit.recipes import Recipe

REPO = Path(__file__).resolve().parents[1]
DEFAULT_MLPERF_DIR = REPO.parent / "shared" / "models" / "mlperf-tiny"

# measured on the emulated Cortex-M4 with TFLM + CMSIS-NN (MLPerf Tiny models' README)
ON_TARGET = {
    "kws_ref_model.tflite": {"arena": 22_820, "flash": 159_868},
    "pretrainedResnet_quant.tflite": {"arena": 54_996, "flash": 204_428},
    "ad01_int8.tflite": {"arena": 2_580, "flash": 382_892},
}


def convert(path: Path, target_name: str):
    backend = backends.get("tflm")
    target = targets.get(target_name)
    source = open_source(path)
    recipe = Recipe(source.sha256, "tflm", "int8", target_options=backend.recipe_options(target))
    with tempfile.TemporaryDirectory() as out:
        started = time.perf_counter()
        result = backend.convert(source, recipe, target, None, Path(out))
        return result.info, time.perf_counter() - started


# instructions per inference of TFLM on the emulated Cortex-M4 (README): reference kernels, CMSIS-NN
README_INSTRUCTIONS = {
    "kws_ref_model.tflite": {"reference": 43_045_360, "cmsis-nn": 7_700_400},
    "pretrainedResnet_quant.tflite": {"reference": 107_400_200, "cmsis-nn": 29_861_040},
    "ad01_int8.tflite": {"reference": 1_952_360, "cmsis-nn": 582_960},
}


def firmware_rows(mlperf: Path) -> None:
    import os

    import numpy as np

    from edgekit import firmware, pipeline
    from edgekit.core import RunOptions

    if not os.environ.get("TFLM_DIR"):
        raise SystemExit("--firmware needs TFLM_DIR (a TensorFlow Lite Micro tree)")
    tree = Path(os.environ["TFLM_DIR"])
    kernels = "cmsis-nn" if (tree / "third_party" / "cmsis_nn").is_dir() else "reference"
    backend = backends.get("tflm")
    board, host_target = targets.get("mps2-an386"), targets.get("nucleo-l4r5zi")
    print(f"| model | kernels | flash text+data (B) | instructions / inference | TFLM {kernels} (README) "
          "| ratio | outputs equal host TFLM |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name, counts in README_INSTRUCTIONS.items():
        reference = counts[kernels]
        artifact = pipeline.convert(str(mlperf / name), board.name, backend="tflm").artifact
        host = backend.load(artifact, host_target, RunOptions())
        with backend.load(artifact, board, RunOptions()) as device:
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


def main(argv: list[str]) -> int:
    if "--firmware" in argv:
        argv = [a for a in argv if a != "--firmware"]
        firmware_rows(Path(argv[0]) if argv else DEFAULT_MLPERF_DIR)
        return 0
    mlperf = Path(argv[0]) if argv else DEFAULT_MLPERF_DIR
    print("| model | arena measured (host) | arena in firmware | arena used on Cortex-M4 | host / target "
          "| flash estimate | flash measured | estimate / measured | convert time (s) |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for name, measured in ON_TARGET.items():
        info, seconds = convert(mlperf / name, "nucleo-l4r5zi")
        fit = info["fit"]
        print(
            f"| {name} | {info['arena_measured_bytes']:,} | {info['arena_bytes']:,} | {measured['arena']:,} "
            f"| {info['arena_measured_bytes'] / measured['arena']:.2f} | {fit['flash_bytes']:,} "
            f"| {measured['flash']:,} | {fit['flash_bytes'] / measured['flash']:.3f} | {seconds:.1f} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
