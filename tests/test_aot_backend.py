"""The aot backend through edgekit's pipeline: convert, host runner, reference, errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

pytest.importorskip("tflite_micro", reason="tflite-micro not installed")

from edgekit import backends, pipeline, targets  # noqa: E402
from edgekit.aot.compiler import UnsupportedOpsError, compile_model  # noqa: E402
from edgekit.core import RunOptions  # noqa: E402
from edgekit.errors import EdgekitError  # noqa: E402
from tests.test_aot_builder import ModelBuilder, litert_outputs  # noqa: E402

import tinymodels  # noqa: E402


@pytest.fixture(scope="module")
def int8_conversion(tmp_path_factory):
    path = tmp_path_factory.mktemp("aot-int8") / "tiny_cnn.tflite"
    path.write_bytes(tinymodels.tiny_int8_cnn_bytes(seed=5))
    return pipeline.convert(str(path), "host-cpu", "aot", "int8")


def test_convert_writes_bundle_and_info(int8_conversion):
    artifact = int8_conversion.artifact
    info = artifact.info
    assert artifact.backend == "aot"
    assert artifact.primary == "tiny_cnn.c"
    assert {"tiny_cnn.c", "tiny_cnn.h", "tiny_cnn.tflite"} <= set(artifact.files)
    assert info["ops"] == compile_model(artifact.path / "tiny_cnn.tflite").ops
    assert info["arena_bytes"] > 0 and info["weights_bytes"] > 0 and info["int8"] is True
    # reported beside TFLM's measured arena for the same model; the bundle's plan is tighter
    assert 0 < info["arena_bytes"] <= info["tflm_arena_bytes"]
    # the planner's lower bound beside the plan, in the info and the summary
    assert 0 < info["arena_lower_bound_bytes"] <= info["arena_bytes"]
    assert any(f"lower bound {info['arena_lower_bound_bytes']:,} B" in line for line in info["summary"])
    # the model's own weights (int8 weights, int32 biases as the .tflite stores them) beside the bundle's
    from edgekit.aot.graph import graph_from_model
    from edgekit.tflite.reader import read_model

    graph = graph_from_model(read_model(artifact.path / "tiny_cnn.tflite"), "m")
    stored = [t for t in graph.tensors.values() if t.is_const]
    assert stored and info["model_weights_bytes"] == sum(int(t.data.nbytes) for t in stored)
    ratio = info["weights_bytes"] / info["model_weights_bytes"]
    assert any(f"constants {ratio:.3f}x the model's {info['model_weights_bytes']:,} B" in line for line in info["summary"])
    header = (artifact.path / "tiny_cnn.h").read_text()
    assert f"#define TINY_CNN_ACTIVATIONS_SIZE {info['arena_bytes']}" in header
    spec = artifact.inputs[0]
    assert spec.dtype == "int8" and spec.scale is not None
    assert f"#define TINY_CNN_INPUT_ZERO_POINT {spec.zero_point}" in header


def test_second_convert_is_cached(int8_conversion):
    again = pipeline.convert(str(int8_conversion.source.path), "host-cpu", "aot", "int8")
    assert again.cached and again.artifact.recipe_key == int8_conversion.artifact.recipe_key


def test_host_runner_is_bit_exact_with_its_reference(int8_conversion):
    artifact, source = int8_conversion.artifact, int8_conversion.source
    runner = pipeline.open_runner(artifact, "host-cpu")
    reference = pipeline.reference_runner(artifact, source)
    assert runner.name == "aot-host" and reference.name == "tflm-host"
    rng = np.random.default_rng(0)
    spec = runner.inputs[0]
    for _ in range(20):
        feed = {spec.name: rng.integers(-128, 128, size=spec.shape, dtype=np.int8)}
        ours, theirs = runner.infer(feed), reference.infer(feed)
        for name in theirs:
            assert np.array_equal(ours[name], theirs[name])
    assert runner.memory()["arena_bytes"] == artifact.info["arena_bytes"]


def test_host_runner_reads_the_feed_in_place_and_keeps_the_caller_results(int8_conversion):
    artifact, source = int8_conversion.artifact, int8_conversion.source
    runner = pipeline.open_runner(artifact, "host-cpu")
    reference = pipeline.reference_runner(artifact, source)
    spec, out = runner.inputs[0], runner.outputs[0].name
    rng = np.random.default_rng(3)
    first = rng.integers(-128, 128, size=spec.shape, dtype=np.int8)
    second = rng.integers(-128, 128, size=spec.shape, dtype=np.int8)
    feed = {spec.name: first.copy()}
    kept = runner.infer(feed)[out]
    # the timed path: the same array object, rewritten in place between calls, is read afresh
    feed[spec.name][...] = second
    timed = runner._infer(feed)[out]
    assert np.array_equal(timed, reference.infer({spec.name: second})[out])
    # infer's results are copies the next inference leaves alone; _infer's are the runner's own
    assert np.array_equal(kept, reference.infer({spec.name: first})[out])
    runner._infer({spec.name: first})
    assert np.array_equal(timed, kept)
    # a feed that is not C-contiguous goes through the runner's own input buffer
    wide = np.zeros((*spec.shape[:-1], 2 * spec.shape[-1]), np.int8)
    wide[..., ::2] = second
    assert np.array_equal(runner.infer({spec.name: wide[..., ::2]})[out], reference.infer({spec.name: second})[out])


def test_host_runner_checks_the_feed(int8_conversion):
    runner = pipeline.open_runner(int8_conversion.artifact, "host-cpu")
    spec = runner.inputs[0]
    with pytest.raises(EdgekitError, match="int8"):
        runner.infer({spec.name: np.zeros(spec.shape, np.float32)})


def test_float_model_runs_close_to_litert_and_uses_the_source_as_reference(tmp_path):
    path = tmp_path / "tiny_float.tflite"
    data = tinymodels.tiny_float_cnn_bytes(seed=2)
    path.write_bytes(data)
    conversion = pipeline.convert(str(path), "host-cpu", "aot", "none")
    backend = backends.get("aot")
    assert backend.reference(conversion.source, conversion.artifact) is None
    runner = pipeline.open_runner(conversion.artifact, "host-cpu")
    spec = runner.inputs[0]
    x = np.random.default_rng(1).uniform(-1, 1, size=spec.shape).astype(np.float32)
    (expected,) = litert_outputs(data, [[x]])
    got = runner.infer({spec.name: x})[runner.outputs[0].name]
    np.testing.assert_allclose(got, expected, rtol=1e-5, atol=1e-6)


def test_a_board_target_never_runs_the_bundle_on_this_host(int8_conversion):
    from edgekit.placement import place

    with pytest.raises(EdgekitError, match="serial port: give --port"):
        place(int8_conversion.artifact, targets.get("nucleo-l4r5zi"), RunOptions())


def test_recipe_options_pick_the_dsp_path_for_cortex_m4():
    backend = backends.get("aot")
    assert backend.recipe_options(targets.get("nucleo-l4r5zi"))["features"] == ["dsp"]
    assert backend.recipe_options(targets.get("host-cpu"))["features"] == []


def test_optimize_modes_are_recipes_of_their_own(tmp_path):
    """--optimize is part of the recipe: each mode is converted and cached on its own, named in the
    fit report, and on a DSP target `size` keeps int8 filters (less flash than the int16 of `speed`)."""
    path = tmp_path / "tiny_cnn.tflite"
    path.write_bytes(tinymodels.tiny_int8_cnn_bytes(seed=6))
    made = {m: pipeline.convert(str(path), "mps2-an386", "aot", "int8", optimize=m) for m in ("speed", "size")}
    default = pipeline.convert(str(path), "mps2-an386", "aot", "int8")
    assert default.artifact.info["optimize"] == "balanced"
    keys = {made[m].artifact.recipe_key for m in made} | {default.artifact.recipe_key}
    assert len(keys) == 3
    assert pipeline.convert(str(path), "mps2-an386", "aot", "int8", optimize="size").cached
    for mode, conversion in made.items():
        info = conversion.artifact.info
        assert info["optimize"] == mode and conversion.artifact.recipe["target_options"]["optimize"] == mode
        assert any(line.startswith(f"--optimize {mode}: ") for line in info["summary"])
    assert made["size"].artifact.info["weights_bytes"] < made["speed"].artifact.info["weights_bytes"]
    assert "int8 weights" in " ".join(made["size"].artifact.info["summary"])


def test_optimize_is_refused_by_a_backend_without_the_choice(tmp_path):
    path = tmp_path / "tiny_cnn.tflite"
    path.write_bytes(tinymodels.tiny_int8_cnn_bytes(seed=6))
    with pytest.raises(EdgekitError, match="backend tflite has no --optimize choice.*aot"):
        pipeline.convert(str(path), "host-cpu", "tflite", "int8", optimize="size")


def test_cli_optimize_takes_only_the_three_modes(tmp_path):
    from click.testing import CliRunner

    from edgekit.cli import cli

    result = CliRunner().invoke(cli, ["convert", "m.tflite", "--target", "mps2-an386", "--optimize", "fast"])
    assert result.exit_code == 2 and "speed" in result.output and "size" in result.output


def _model_with_unsupported_ops() -> bytes:
    b = ModelBuilder()
    x = b.tensor((1, 4), "float32")
    t = b.tensor((1, 4), "float32")
    f = b.tensor((1, 4), "float32")
    f2 = b.tensor((1, 4), "float32")
    b.op("TANH", [x], [t])
    b.op("FLOOR", [t], [f])
    b.op("FLOOR", [f], [f2])
    return b.build([x], [f2])


def test_unsupported_ops_are_named_together_with_the_alternatives(tmp_path):
    with pytest.raises(UnsupportedOpsError) as caught:
        compile_model(_model_with_unsupported_ops())
    message = str(caught.value)
    assert "FLOOR (x2)" in message and "TANH" in message
    assert "--backend tflite" in message and "--backend tflm" in message
    assert "\n" not in message


def test_unsupported_variant_says_why(mlperf_dir):
    # the "float32" KWS keeps int8 weights (hybrid): known opcode, unsupported variant
    with pytest.raises(UnsupportedOpsError, match=r"CONV_2D \(float32 input with int8 filter"):
        compile_model(mlperf_dir / "kws_ref_model_float32.tflite")


def test_cli_bench_through_aot_reports_bit_exact(int8_conversion, tmp_path):
    from click.testing import CliRunner

    from edgekit.cli import cli

    out = tmp_path / "bench.json"
    result = CliRunner().invoke(
        cli,
        ["bench", str(int8_conversion.artifact.path), "-t", "host-cpu", "-n", "5", "-w", "1",
         "--no-log", "-o", str(out)],
    )  # fmt: skip
    assert result.exit_code == 0, result.output
    report = json.loads(out.read_text())
    assert report["runner"] == "aot-host"
    assert report["fidelity"]["bit_exact"] is True
