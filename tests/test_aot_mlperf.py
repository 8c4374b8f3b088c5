"""The MLPerf Tiny int8 models through the aot compiler: bit-identical to TFLM on 100+ inputs each."""

from __future__ import annotations

import numpy as np
import pytest

from tests.test_aot_builder import compile_and_load

MODELS = {
    "kws_ref_model.tflite": 13,
    "pretrainedResnet_quant.tflite": 16,
    "ad01_int8.tflite": 10,
}
COUNT = 100


@pytest.mark.slow
@pytest.mark.parametrize("filename", sorted(MODELS))
def test_mlperf_int8_model_bit_exact_with_tflm(filename, mlperf_dir, tmp_path):
    runtime = pytest.importorskip("tflite_micro.python.tflite_micro.runtime")
    model = (mlperf_dir / filename).read_bytes()
    bundle, host = compile_and_load(model, tmp_path, name="mlperf")
    assert len(bundle.ops) == MODELS[filename]
    interp = runtime.Interpreter.from_bytes(model)
    rng = np.random.default_rng(123)
    shape = bundle.inputs[0].shape
    mismatches = 0
    for i in range(COUNT):
        # uniform noise, plus the extremes (all -128, all 127) to drive saturation
        if i == 0:
            x = np.full(shape, -128, np.int8)
        elif i == 1:
            x = np.full(shape, 127, np.int8)
        else:
            x = rng.integers(-128, 128, size=shape, dtype=np.int8)
        interp.set_input(x, 0)
        interp.invoke()
        expected = interp.get_output(0)
        got = host.run(x)[0].reshape(expected.shape)
        mismatches += int(not np.array_equal(got, expected))
    assert mismatches == 0, f"{mismatches} of {COUNT} inputs differ from TFLM"


def test_mlperf_arena_is_no_larger_than_tflm(mlperf_dir):
    from edgekit.aot.compiler import compile_model

    # TFLM's measured arenas on the target (README of the models): 22,820 / 54,996 / 2,580 bytes
    tflm = {"kws_ref_model.tflite": 22820, "pretrainedResnet_quant.tflite": 54996, "ad01_int8.tflite": 2580}
    for filename, tflm_bytes in tflm.items():
        bundle = compile_model(mlperf_dir / filename)
        assert 0 < bundle.arena_bytes <= tflm_bytes, filename


@pytest.mark.slow
@pytest.mark.parametrize("filename", ["ad01_fp32.tflite", "pretrainedResnet.tflite"])
def test_mlperf_float_model_within_1e5_of_litert(filename, mlperf_dir, tmp_path):
    """float32: within 1e-5 of LiteRT relative to the output's magnitude.

    (Element by element, an output near zero can differ more: the sums run in
    another order than XNNPACK's, so cancellation leaves different last bits.)
    """
    from tests.test_aot_builder import litert_outputs

    model = (mlperf_dir / filename).read_bytes()
    bundle, host = compile_and_load(model, tmp_path, name="mlperf_float")
    rng = np.random.default_rng(7)
    feeds = [[rng.uniform(-1, 1, size=bundle.inputs[0].shape).astype(np.float32)] for _ in range(20)]
    for feed, expected in zip(feeds, litert_outputs(model, feeds)):
        got = host.run(*feed)[0].reshape(expected.shape)
        assert np.max(np.abs(got - expected)) <= 1e-5 * np.max(np.abs(expected))
