"""Arena and flash as edgekit's tflm backend predicts them, beside what TFLM used on a Cortex-M4.

    .venv/bin/python bench/tflm_memory.py [MLPERF_DIR]

For each int8 MLPerf Tiny model: the arena measured by bisection with the host
TFLM interpreter (and how long the measurement took), the arena written into
the firmware (measured + alignment margin), and the flash estimate (model +
TFLM runtime with CMSIS-NN) next to the figures measured on the emulated
Cortex-M4 with TFLM + CMSIS-NN (from the models' README). Prints Markdown.
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


def main(argv: list[str]) -> int:
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
