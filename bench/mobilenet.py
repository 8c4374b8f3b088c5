"""A MobileNet-style model on the emulated Cortex-M4: aot beside TFLM + CMSIS-NN, as report files.

The shared models have one depthwise-separable network (KWS, 64 channels
throughout). MobileNetV2 has the shapes they lack: inverted residual blocks
whose 1x1 convolutions expand 8 to 48 channels and project back, strided
depthwise layers and residual ADDs. This script writes the Keras application
as a new user would get it (MobileNetV2, alpha 0.35, 96x96x3, 10 classes,
random weights from a fixed seed: nothing is downloaded; no softmax, whose
input scale from random weights is below TFLM's limit), converted by the
official converter to int8 (calibrated on 20 seeded random images), into
build/bench-models/. Then `bench()` runs it on `mps2-an386` as
bench/family.py does: aot, and TFLM + CMSIS-NN when TFLM_DIR names a TFLM
tree (its library must hold MEAN, which the shared models do not use, so
TFLM_CACHE may need a library built for all operators). Reports go to
bench/reports/mobilenet/, and the table sets the aot / TFLM ratio beside
KWS's from bench/reports/family/.

    python bench/mobilenet.py [--backend aot|tflm ...] [--runs 2] [--limit 20] [--tables-only]
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path

import report_files as rf
from family import chosen_backends, measure, table

TARGET = "mps2-an386"
MODEL = rf.REPO / "build" / "bench-models" / "mobilenet_v2_035_96.tflite"
OUT = rf.REPORTS / "mobilenet"
KWS = rf.REPORTS / "family"


def write_model(path: Path) -> Path:
    """MobileNetV2 (alpha 0.35, 96x96, random weights from seed 0) converted to int8 by TFLite,
    TensorFlow's own log lines kept out of the output."""
    import warnings

    from edgekit._quiet import native_output_hidden

    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    with native_output_hidden(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        data = _converted()
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return path


def _converted() -> bytes:
    import numpy as np
    import tensorflow as tf

    tf.keras.utils.set_random_seed(0)
    model = tf.keras.applications.MobileNetV2(
        input_shape=(96, 96, 3), alpha=0.35, weights=None, classes=10, classifier_activation=None
    )

    def calibration():
        rng = np.random.default_rng(0)
        for _ in range(20):
            yield [rng.uniform(-1, 1, size=(1, 96, 96, 3)).astype(np.float32)]

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = calibration
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = tf.int8
    converter.inference_output_type = tf.int8
    return converter.convert()


def ratio(folder: Path, model_stem: str) -> str:
    """aot / TFLM instructions from a pair of reports, or '-'."""
    pair = [folder / rf.file_name(f"{model_stem}.tflite", TARGET, b) for b in ("aot", "tflm")]
    if not all(p.is_file() for p in pair):
        return "-"
    aot, tflm = (rf.read(p)["device"]["instructions"] for p in pair)
    return f"{aot / tflm:.2f}x"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--backend", action="append", choices=("aot", "tflm"),
                        help="what to measure (default: aot, and tflm when TFLM_DIR is set)")  # fmt: skip
    rf.add_emulator_options(parser, runs=2, out=None)
    args = parser.parse_args(argv)
    backends = chosen_backends(args.backend)
    if not args.tables_only or not MODEL.is_file():  # the table counts the model's MACs
        write_model(MODEL)
    if not args.tables_only:
        measure([MODEL], [TARGET], backends, OUT, args.runs, args.limit, args.registry)
    sys.stdout.write(table([MODEL], [TARGET], OUT))
    sys.stdout.write(f"\naot / TFLM + CMSIS-NN instructions on `{TARGET}`: MobileNetV2 {ratio(OUT, MODEL.stem)}, "
                     f"KWS {ratio(KWS, 'kws_ref_model')}.\n")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
