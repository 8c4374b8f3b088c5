"""The measured arena: TFLM's own interpreter allocates and invokes with it, and not with less."""

from __future__ import annotations

import numpy as np
import pytest

from edgekit.errors import EdgekitError
from edgekit.tflm.arena import ALIGNMENT, alignment_margin, measure_arena

runtime = pytest.importorskip(
    "tflite_micro.python.tflite_micro.runtime", reason="tflite-micro not installed"
)


def runs_in(model_path, arena_size: int) -> bool:
    """Independent of the code under test: build TFLM's interpreter and invoke it once."""
    try:
        interpreter = runtime.Interpreter.from_file(str(model_path), arena_size=arena_size)
        details = interpreter.get_input_details(0)
        interpreter.set_input(np.zeros(details["shape"], details["dtype"]), 0)
        interpreter.invoke()
    except RuntimeError:
        return False
    return True


def test_margin_aligns_and_pads():
    for measured in (1, 15, 16, 17, 24272, 4632):
        margin = alignment_margin(measured)
        assert (measured + margin) % ALIGNMENT == 0
        assert ALIGNMENT <= margin < 2 * ALIGNMENT


def test_kws_minimum_arena_is_the_minimum(mlperf_dir):
    model = mlperf_dir / "kws_ref_model.tflite"
    arena = measure_arena(model)
    assert runs_in(model, arena.measured_bytes)
    assert not runs_in(model, arena.measured_bytes - 1024)
    assert not runs_in(model, arena.measured_bytes - 1)
    assert runs_in(model, arena.arena_bytes)
    # TFLM's own breakdown: planned activations (head) + persistent data (tail)
    assert arena.nonpersistent_bytes + arena.persistent_bytes <= arena.measured_bytes
    # the largest activation pair of the DS-CNN: two 25x5x64 int8 tensors
    assert arena.nonpersistent_bytes >= 2 * 25 * 5 * 64


def test_ad01_minimum_arena(mlperf_dir):
    model = mlperf_dir / "ad01_int8.tflite"
    arena = measure_arena(model)
    assert runs_in(model, arena.measured_bytes)
    assert not runs_in(model, arena.measured_bytes - 1)


def test_a_model_tflm_cannot_prepare_is_one_clear_error(tmp_path):
    # a valid flatbuffer header with nothing TFLM can allocate: measurement must fail cleanly
    bogus = tmp_path / "bogus.tflite"
    bogus.write_bytes(b"\x18\x00\x00\x00TFL3" + bytes(64))
    with pytest.raises(EdgekitError) as caught:
        measure_arena(bogus)
    message = str(caught.value)
    assert "bogus.tflite" in message and "\n" not in message
