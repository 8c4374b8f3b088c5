"""Harness overhead: edgekit's LiteRT runner against the bare LiteRT calls, same .tflite, as report files.

    .venv/bin/python bench/harness_overhead.py [MODEL.tflite|DIR ...] [--runs 200] [--rounds 20]
        [--out DIR] [--tables-only]

Two runners of the same model, one thread, same input, timed by the same
harness loop in alternating rounds of one process, so that drift (turbo,
other load) hits both alike: the `litert` runner `edgekit bench` places on
`host-cpu`, and a baseline whose inference is nothing but the three LiteRT
calls a bare loop makes (`set_tensor`, `invoke`, `get_tensor`). Each leaves
one `edgekit.report/1` file, bench/reports/harness/<model>-host-cpu-tflite.json
and ...-tflite-bare.json; the ratio of their p50s is the runner's overhead
(aim: under 1.03). Without arguments it measures the MLPerf Tiny int8 models
beside the repository.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import report_files as rf

FOLDER = "harness"
TARGET = "host-cpu"


def bare_runner(artifact):
    """A runner whose `_infer` is a bare LiteRT loop's body and nothing else."""
    from edgekit.backends.tflite import load_interpreter
    from edgekit.core import Runner

    class BareLiteRT(Runner):
        name = "litert-bare"

        def __init__(self):
            interpreter = load_interpreter(artifact.primary_path, threads=1)
            self.inputs, self.outputs = list(artifact.inputs), list(artifact.outputs)
            self._in = interpreter.get_input_details()[0]["index"]
            self._out = interpreter.get_output_details()[0]["index"]
            self._name = self.inputs[0].name
            self._set, self._invoke, self._get = interpreter.set_tensor, interpreter.invoke, interpreter.get_tensor

        def _infer(self, feed):
            # what the harness times: exactly the three calls of a bare loop
            self._set(self._in, feed[self._name])
            self._invoke()
            return self._get(self._out)

        def infer(self, feed):
            # the evaluation pass (untimed) wants outputs by name
            self.check_feed(feed)
            return {self.outputs[0].name: self._infer(feed)}

    return BareLiteRT()


def measure(models: list[Path], out: Path, runs: int, rounds: int, registry_uri: str | None) -> None:
    from edgekit.pipeline import artifact_for

    with rf.registry(registry_uri) as uri:
        for model in models:
            artifact, source = artifact_for(rf.as_given(model), TARGET, "tflite", None, None, uri)
            settings = rf.settings(runs=runs, warmup=max(1, runs // 4))
            contenders = [
                rf.Contender(artifact, source, settings, out / rf.file_name(model, TARGET, "tflite", "bare"),
                             runner=bare_runner(artifact)),
                rf.Contender(artifact, source, settings, out / rf.file_name(model, TARGET, "tflite")),
            ]  # fmt: skip
            bare, ours = rf.interleaved(contenders, TARGET, rounds)
            ratio = ours["latency_ms"]["p50"] / bare["latency_ms"]["p50"]
            print(f"{model.name}: ratio {ratio:.3f}", flush=True)


def table(models: list[Path], out: Path) -> str:
    lines = [
        "| model | bare LiteRT p50 (ms) | edgekit runner p50 (ms) | ratio | timed runs each |",
        "| --- | --- | --- | --- | --- |",
    ]
    cited = []
    for model in models:
        files = [out / rf.file_name(model, TARGET, "tflite", "bare"), out / rf.file_name(model, TARGET, "tflite")]
        bare, ours = (rf.read(f)["latency_ms"] for f in files)
        lines.append(
            f"| {model.name} | {bare['p50']:.4f} | {ours['p50']:.4f} | {ours['p50'] / bare['p50']:.3f} "
            f"| {ours['count']} |"
        )
        cited += files
    lines += ["", f"Reports: {rf.cite(cited)}."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, help="model files or a folder of the MLPerf Tiny models")
    parser.add_argument("--runs", type=int, default=200, help="timed runs per round")
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--out", type=Path, default=rf.REPORTS / FOLDER, help="folder of the report files")
    parser.add_argument("--registry", help="registry to cache conversions in (default: a temporary one)")
    parser.add_argument("--tables-only", action="store_true", help="print the table from the reports already there")
    args = parser.parse_args(argv)
    models = rf.models_from(args.models)
    if not args.tables_only:
        measure(models, args.out, args.runs, args.rounds, args.registry)
    sys.stdout.write(table(models, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
