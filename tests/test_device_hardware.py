"""The stand-in firmware on a real board: flashed with the target's tool, driven over its serial port.

Runs only when EDGEKIT_HW_PORT (e.g. /dev/ttyACM0) and EDGEKIT_HW_TARGET
(a target with a CMSDK UART, e.g. an MPS2 board) name a connected board.
"""

from __future__ import annotations

import os

import numpy as np
import pytest

from edgekit import targets
from edgekit.core import RunOptions
from edgekit.device.runner import open_runner
from test_firmware_standin import make_artifact, reference, sample

PORT = os.environ.get("EDGEKIT_HW_PORT")
TARGET = os.environ.get("EDGEKIT_HW_TARGET")

pytestmark = [
    pytest.mark.hardware,
    pytest.mark.skipif(not (PORT and TARGET), reason="set EDGEKIT_HW_PORT and EDGEKIT_HW_TARGET to test on a board"),
]


def test_a_real_board_runs_the_protocol_and_counts_cycles(tmp_path):
    target = targets.get(TARGET)
    artifact = make_artifact(tmp_path / "standin")
    with open_runner(artifact, target, RunOptions(port=PORT)) as runner:
        for seed in range(3):
            x = sample(seed)
            np.testing.assert_array_equal(runner.infer({"x": x})["y"], reference(x))
        timing = runner.device_timing()
    assert timing["cycles"] >= 60_000 and timing["ms"] > 0
