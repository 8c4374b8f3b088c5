"""`make demo`: train a small CNN on mnist5k, then take it through edgekit as a user would.

Every step after training runs the real `edgekit` command, so what the demo
shows is what a user gets: register -> convert (float, int8) -> bench on the
test split -> compare; then the microcontroller story: TFLite Micro arrays with
a measured arena and a fit report, and the model compiled to C, built into
firmware and benchmarked on the emulated Cortex-M4 (QEMU); last, one HTML page
comparing every report. Outputs go to demo-out/.
"""

from __future__ import annotations

import shlex
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

OUT = Path("demo-out")
SEED = 1234
EPOCHS = 4


def step(title: str) -> None:
    print(f"\n== {title}", flush=True)


def edgekit(*args: str) -> None:
    print("$ edgekit " + " ".join(shlex.quote(a) for a in args), flush=True)
    result = subprocess.run([sys.executable, "-m", "edgekit", *args])
    if result.returncode != 0:
        sys.exit(f"demo: `edgekit {' '.join(args)}` failed with exit code {result.returncode}")


def train(path: Path) -> None:
    """A small seeded CNN on the mnist5k training split (about 20 s on 2 cores)."""
    from edgekit._quiet import native_output_hidden
    from edgekit.sources.tensorflow import load_tensorflow

    tf = load_tensorflow()  # imported with TF's native log lines hidden
    import tf_keras as keras

    from edgekit import datasets

    keras.utils.set_random_seed(SEED)
    tf.config.experimental.enable_op_determinism()
    data = datasets.load("mnist5k")
    model = keras.Sequential(
        [
            keras.layers.Input((28, 28, 1)),
            keras.layers.Conv2D(8, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Conv2D(16, 3, activation="relu"),
            keras.layers.MaxPooling2D(),
            keras.layers.Flatten(),
            keras.layers.Dense(32, activation="relu"),
            keras.layers.Dense(10, activation="softmax"),
        ]
    )
    model.compile(optimizer=keras.optimizers.Adam(2e-3), loss="sparse_categorical_crossentropy", metrics=["accuracy"])
    started = time.perf_counter()
    with native_output_hidden():  # the first fit logs a NodeDef note from TF's C++ side
        model.fit(data.x_train, data.y_train, epochs=EPOCHS, batch_size=32, verbose=0, shuffle=True)
        _, acc = model.evaluate(data.x_test, data.y_test, verbose=0)
        model.save(path)
    print(f"trained in {time.perf_counter() - started:.1f} s; Keras top-1 on the test split: {acc * 100:.2f}%")


def main() -> None:
    OUT.mkdir(exist_ok=True)
    model_path = OUT / "mnist_cnn.keras"
    step("1. train a small CNN on mnist5k (seeded)")
    train(model_path)

    step("2. register it")
    edgekit("register", str(model_path), "--name", "mnist-cnn", "--dataset", "mnist5k")

    step("3. convert for host-cpu: float and int8")
    edgekit("convert", "mnist-cnn", "--target", "host-cpu", "--quantize", "none")
    edgekit("convert", "mnist-cnn", "--target", "host-cpu", "--quantize", "int8")

    step("4. benchmark both on the mnist5k test split")
    float_report, int8_report = OUT / "host-float.json", OUT / "host-int8.json"
    edgekit("bench", "mnist-cnn", "--target", "host-cpu", "--quantize", "none", "--threads", "1", "--out", str(float_report))
    edgekit("bench", "mnist-cnn", "--target", "host-cpu", "--quantize", "int8", "--threads", "1", "--out", str(int8_report))

    step("5. compare")
    edgekit("compare", str(float_report), str(int8_report))
    _check_int8_accuracy(float_report, int8_report)

    step("6. microcontroller: int8 for TFLite Micro, with the measured arena and the fit report")
    edgekit("convert", "mnist-cnn", "--target", "mcu", "--backend", "tflm", "--out", str(OUT / "tflm-nucleo-l4r5zi"))

    step("7. the emulated Cortex-M4 board: compile to C, build the firmware, run it on QEMU")
    edgekit("firmware", "mnist-cnn", "--target", "mps2-an386", "--backend", "aot", "--out", str(OUT / "fw-mps2-an386"), "--build")
    board_report = OUT / "mps2-an386-aot.json"
    edgekit("bench", "mnist-cnn", "--target", "mps2-an386", "--backend", "aot", "--runs", "10", "--warmup", "1",
            "--out", str(board_report))

    step("8. the host and the board, side by side")
    edgekit("compare", str(int8_report), str(board_report))

    step("9. every report of this demo on one page")
    page = OUT / "compare.html"
    edgekit("compare", str(float_report), str(int8_report), str(board_report), "--html", str(page))
    print(f"\nthe comparison page, every target this demo ran: {page.resolve()} (opens offline in any browser)")


def _check_int8_accuracy(float_report: Path, int8_report: Path) -> None:
    import json

    a = json.loads(float_report.read_text())["accuracy"]["value"]
    b = json.loads(int8_report.read_text())["accuracy"]["value"]
    print(f"\n{accuracy_sentence(a, b)}")
    np.testing.assert_array_less((a - b) * 100, 1.5, err_msg="int8 lost more than 1.5 points of top-1")


def accuracy_sentence(float_top1: float, int8_top1: float) -> str:
    """How int8 did against float, in words that read right whichever way it went."""
    points = round((int8_top1 - float_top1) * 100, 2)
    head = f"int8 top-1 {int8_top1 * 100:.2f}% vs float {float_top1 * 100:.2f}%"
    if points == 0:
        return f"{head}: the same top-1"
    return f"{head}: int8 {'gains' if points > 0 else 'loses'} {abs(points):.2f} points"


if __name__ == "__main__":
    main()
