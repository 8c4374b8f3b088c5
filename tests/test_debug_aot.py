"""The aot debug build: the normal bundle plus per-operator copies, held against TFLM integer for integer."""

from __future__ import annotations

import re
import shutil
import subprocess

import numpy as np
import pytest

pytest.importorskip("tflite_micro", reason="tflite-micro not installed")
if shutil.which("gcc") is None and shutil.which("cc") is None:
    pytest.skip("no host C compiler (gcc) to build the debug bundle", allow_module_level=True)

from edgekit.aot.compiler import compile_model  # noqa: E402
from edgekit.debug.capture_aot import run_debug_build, write_debug_build  # noqa: E402
from edgekit.debug.capture_tflm import capture_tflm  # noqa: E402
from edgekit.debug.causes import bit_exactness  # noqa: E402

import tinymodels  # noqa: E402


@pytest.fixture(scope="module")
def tflite(tmp_path_factory):
    path = tmp_path_factory.mktemp("debug-aot") / "tiny_cnn.tflite"
    path.write_bytes(tinymodels.tiny_int8_cnn_bytes(seed=3))
    return path


@pytest.fixture(scope="module")
def samples():
    x = tinymodels.calibration_data((8, 8, 1), count=8, seed=11)
    return [[sample[None]] for sample in x]


def test_debug_option_only_adds_copies(tflite):
    normal = compile_model(tflite, name="net")
    debug = compile_model(tflite, name="net", debug=True)
    assert "debug" not in normal.source and "debug" not in normal.header and normal.debug_slots is None
    # the debug body, without its copies and under the normal name, is the normal body: same kernels, same calls
    body = re.sub(r"\n  if \(debug_outputs\) memcpy\([^\n]*", "", debug.source)
    body = body.replace(
        "int net_run_debug(const void *const *inputs, void *const *outputs, uint8_t *activations, "
        "void *const *debug_outputs) {",
        "int net_run_io(const void *const *inputs, void *const *outputs, uint8_t *activations) {",
    )
    wrapper = (
        "int net_run_io(const void *const *inputs, void *const *outputs, uint8_t *activations) {\n"
        "  return net_run_debug(inputs, outputs, activations, NULL);\n}\n\n"
    )
    assert wrapper in body
    assert body.replace(wrapper, "") == normal.source
    assert [s.node for s in debug.debug_slots] == list(range(len(normal.ops)))
    assert f"#define NET_DEBUG_SLOTS {len(normal.ops)}" in debug.header


def test_debug_build_matches_tflm_operator_by_operator(tflite, samples, tmp_path):
    build = write_debug_build(tflite, tmp_path, name="net")
    ours = run_debug_build(build, samples)
    theirs = capture_tflm(tflite, samples)
    verdict = bit_exactness(ours, theirs)
    assert verdict.exact, verdict.describe()
    assert verdict.compared == len(build.bundle.ops)
    # the last copy is the model output the normal entry point writes
    from edgekit.aot.hostbuild import load_bundle

    normal = compile_model(tflite, name="plain")
    normal.write(tmp_path)
    runner = load_bundle(normal, tmp_path)
    last = ours.tensors[-1]
    for k, sample in enumerate(ours.tensors[0].values):
        np.testing.assert_array_equal(runner.run(sample)[0].reshape(last.values.shape[1:]), last.values[k])


def test_debug_build_compiles_without_warnings(tflite, tmp_path):
    build = write_debug_build(tflite, tmp_path, name="net")
    cc = shutil.which("gcc") or shutil.which("cc")
    flags = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic", "-c"]
    result = subprocess.run([cc, *flags, "-o", str(tmp_path / "net.o"), str(build.source_path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_changed_operator_is_named_as_the_first_that_differs(tflite, samples, tmp_path):
    build = write_debug_build(tflite, tmp_path, name="net")
    ops = build.bundle.ops
    target = ops.index("AVERAGE_POOL_2D")
    source = build.source_path.read_text()
    # the pooling call's activation minimum (its last two arguments): -128 becomes -100,
    # so every average below -100 comes out wrong and nothing before this operator changes
    lines = source.splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith(f"/* {target}: AVERAGE_POOL_2D"))
    call = next(i for i in range(start, len(lines)) if "ek_average_pool_s8(" in lines[i])
    assert lines[call].endswith(", -128, 127);")
    lines[call] = lines[call][: -len(", -128, 127);")] + ", -100, 127);"
    build.source_path.write_text("\n".join(lines) + "\n")

    verdict = bit_exactness(run_debug_build(build, samples), capture_tflm(tflite, samples))
    assert not verdict.exact
    assert verdict.first.position == target and verdict.first.op == "AVERAGE_POOL_2D"
    assert verdict.differing > 0 and verdict.max_lsb >= 1
    assert f"operator {target} (AVERAGE_POOL_2D)" in verdict.describe()
