"""bench/aot_op_profile.py: instructions per operator on the emulated Cortex-M4 add up to the firmware's count.

The profile runs the bundle in its own bare-metal program with a SysTick read
before each operator; `edgekit bench` runs the same bundle inside the protocol
firmware and times the whole inference. Both count with QEMU's -icount, so
the operators' sum must equal the firmware's figure to a tick or two.
"""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.slow,
    pytest.mark.skipif(
        not all(shutil.which(t) for t in ("qemu-system-arm", "arm-none-eabi-gcc", "cmake")),
        reason="qemu-system-arm, arm-none-eabi-gcc and cmake are needed for the emulated board",
    ),
]

REPO = Path(__file__).resolve().parents[1]


def test_operator_profile_adds_up_to_the_firmware_count(tmp_path):
    pytest.importorskip("tflite_micro")
    from edgekit.bench.harness import BenchSettings
    from edgekit.bench.run import bench
    from tinymodels import tiny_int8_cnn_bytes

    model = tmp_path / "tiny.tflite"
    model.write_bytes(tiny_int8_cnn_bytes(seed=3))
    spec = importlib.util.spec_from_file_location("aot_op_profile", REPO / "bench" / "aot_op_profile.py")
    profiler = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(profiler)
    rows = profiler.profile(model, "balanced", tmp_path / "profile")
    assert [label.split()[1] for label, _ in rows[:2]] == ["CONV_2D", "DEPTHWISE_CONV_2D"]
    assert all(n >= 0 for _, n in rows) and sum(n > 0 for _, n in rows) >= 4
    report = bench(str(model), "mps2-an386", backend="aot", quantization="int8",
                   settings=BenchSettings(runs=2, warmup=0, limit=2), log=False)  # fmt: skip
    firmware = report["device"]["instructions"]
    assert abs(sum(n for _, n in rows) - firmware) <= 2 * profiler.TICK, (rows, firmware)
