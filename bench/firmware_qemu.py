"""Instructions per inference of aot firmware on the emulated Cortex-M4 (QEMU mps2-an386).

For each shared MLPerf Tiny int8 model: compile it with the aot compiler
twice (portable C, and the Cortex-M DSP path), build the aot-cortexm
firmware, run one inference after a warm-up through edgekit's protocol
(input int8 ((i*7)%256)-128, as the TFLM reference numbers), check the
output against the tflite-micro interpreter bit for bit, and print a
Markdown table beside TFLM's counts from the models' README.

    python bench/firmware_qemu.py [--models DIR] [--target mps2-an386]
"""

from __future__ import annotations

import argparse
import os
import tempfile
from pathlib import Path

import numpy as np

from edgekit import targets
from edgekit.core import Artifact, RunOptions, TensorSpec
from edgekit.errors import EdgekitError
from edgekit.hashing import sha256_tree

# TFLM (CMSIS-NN) on the same emulated board, from the MLPerf Tiny models' README
TFLM = {
    "kws_ref_model.tflite": {"instructions": 7_700_400, "arena": 22_820, "flash": 159_868},
    "pretrainedResnet_quant.tflite": {"instructions": 29_861_040, "arena": 54_996, "flash": 204_428},
    "ad01_int8.tflite": {"instructions": 582_960, "arena": 2_580, "flash": 382_892},
}
SHORT = {"kws_ref_model.tflite": "KWS", "pretrainedResnet_quant.tflite": "ResNet-8", "ad01_int8.tflite": "AD"}


def macs(graph) -> int:
    """Multiply-accumulates of the conv, depthwise conv and fully connected layers."""
    total = 0
    for node in graph.nodes:
        out = graph.tensors[node.outputs[0]]
        if node.opcode == "CONV_2D":
            weights = graph.tensors[node.inputs[1]].shape  # (out_ch, kh, kw, in_ch)
            total += out.size * weights[1] * weights[2] * weights[3]
        elif node.opcode == "DEPTHWISE_CONV_2D":
            weights = graph.tensors[node.inputs[1]].shape  # (1, kh, kw, ch)
            total += out.size * weights[1] * weights[2]
        elif node.opcode == "FULLY_CONNECTED":
            total += out.size * graph.tensors[node.inputs[1]].shape[-1]
    return total


def aot_artifact(model: Path, features: set[str], folder: Path):
    """Compile `model` into an aot artifact folder; (artifact, bundle)."""
    from edgekit.aot.compiler import compile_model

    folder.mkdir(parents=True)
    bundle = compile_model(model, name=model.stem.split("_")[0].lower(), features=frozenset(features))
    bundle.write(folder)

    def spec(t):
        return TensorSpec(t.name, tuple(t.shape), t.dtype, float(t.scale[0]), int(t.zero_point[0]))

    artifact = Artifact(
        path=folder,
        backend="aot",
        recipe={"features": sorted(features)},
        recipe_key=f"bench-{model.stem}-{'-'.join(sorted(features)) or 'c'}",
        primary=f"{bundle.name}.c",
        inputs=[spec(t) for t in bundle.inputs],
        outputs=[spec(t) for t in bundle.outputs],
        files=[f"{bundle.name}.c", f"{bundle.name}.h"],
        sha256=sha256_tree(folder),
        info={"c_name": bundle.name, "arena_bytes": bundle.arena_bytes},
        source={"name": model.stem},
    )
    artifact.save()
    return artifact, bundle


def reference_output(model: Path, x: np.ndarray) -> np.ndarray:
    from tflite_micro.python.tflite_micro import runtime

    interpreter = runtime.Interpreter.from_file(str(model))
    interpreter.set_input(x, 0)
    interpreter.invoke()
    return interpreter.get_output(0)


def measure(model: Path, features: set[str], target, work: Path) -> dict:
    from edgekit.aot.graph import graph_from_model
    from edgekit.device.runner import open_runner
    from edgekit.tflite.reader import read_model

    artifact, bundle = aot_artifact(model, features, work / f"{model.stem}-{'dsp' if features else 'c'}")
    spec = artifact.inputs[0]
    x = (((np.arange(int(np.prod(spec.shape))) * 7) % 256) - 128).astype(np.int8).reshape(spec.shape)
    row = {"macs": macs(graph_from_model(read_model(model), "m")), "arena": bundle.arena_bytes}
    try:
        with open_runner(artifact, target, RunOptions()) as runner:
            y = runner.infer({spec.name: x})[artifact.outputs[0].name]
            runner.measure({spec.name: x}, count=1, warmup=1)
            row["instructions"] = int(runner.device_timing()["instructions"])
            row["flash"] = runner.memory()["flash_bytes"]
    except EdgekitError as exc:
        row["error"] = str(exc).split("; full log")[0]
        return row
    row["bit_exact"] = bool(np.array_equal(y, reference_output(model, x)))
    return row


def table(results: dict) -> str:
    lines = [
        "| model | MACs | TFLM+CMSIS-NN instr. | aot portable C instr. | aot DSP instr. | aot DSP instr./MAC | vs TFLM | arena aot / TFLM | flash aot DSP | bit-exact vs TFLM |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for name, (c, dsp) in results.items():
        tflm = TFLM[name]

        def instr(row):
            return f"{row['instructions']:,}" if "instructions" in row else "failed: " + row["error"].split(" | ")[0].replace("|", "/")

        best = dsp if "instructions" in dsp else c
        ratio = f"{best['instructions'] / tflm['instructions']:.2f}x" if "instructions" in best else "-"
        per_mac = f"{dsp['instructions'] / dsp['macs']:.2f}" if "instructions" in dsp else "-"
        exact = ", ".join(f"{k}: {'yes' if r.get('bit_exact') else 'no'}" for k, r in (("C", c), ("DSP", dsp)) if "instructions" in r)
        lines.append(
            f"| {SHORT[name]} | {c['macs'] / 1e6:.3f} M | {tflm['instructions']:,} | {instr(c)} | {instr(dsp)} | {per_mac} | "
            f"{ratio} | {c['arena']:,} / {tflm['arena']:,} B ({c['arena'] / tflm['arena']:.2f}x) | "
            f"{dsp.get('flash', c.get('flash', 0)):,} B | {exact or '-'} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    default_models = Path(os.environ.get("EDGEKIT_MLPERF_DIR", Path(__file__).resolve().parents[2] / "shared/models/mlperf-tiny"))
    parser.add_argument("--models", type=Path, default=default_models, help="folder of the MLPerf Tiny .tflite files")
    parser.add_argument("--target", default="mps2-an386")
    args = parser.parse_args()
    target = targets.get(args.target)
    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name in TFLM:
            model = args.models / name
            results[name] = (measure(model, set(), target, Path(tmp)), measure(model, {"dsp"}, target, Path(tmp)))
            print(f"{name}: {results[name]}", flush=True)
    print()
    print(table(results))


if __name__ == "__main__":
    main()
