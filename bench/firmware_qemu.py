"""Instructions per inference of aot firmware on the emulated Cortex-M4 and M7, as report files.

For each shared MLPerf Tiny int8 model and each target (mps2-an386, a
Cortex-M4; mps2-an500, a Cortex-M7), `bench()` runs two aot bundles on the
emulated board: the target's own conversion (the Cortex-M DSP path,
`__smlad`/`__sxtb16`, `--optimize balanced`) and the portable C bundle (the
same compiler without the target's `dsp` feature); on mps2-an386 also the
DSP path with `--optimize speed` and `--optimize size`. Each writes one
`edgekit.report/1` file,
bench/reports/firmware/<model>-<target>-aot-<dsp|c|dsp-speed|dsp-size>.json: instructions per
inference from QEMU's `-icount shift=0` clock (`device.instructions`),
firmware flash and RAM, and outputs against the tflite-micro interpreter bit
for bit (`fidelity`). The Markdown tables for BENCHMARKS.md are printed from
those files, beside TFLM + CMSIS-NN's counts from the models' README.

    python bench/firmware_qemu.py [MODEL.tflite|DIR ...] [--target mps2-an386 ...]
        [--runs 3] [--limit 20] [--out DIR] [--tables-only]
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
import tempfile
from pathlib import Path

import report_files as rf

SECTION = "firmware"
TARGETS = ("mps2-an386", "mps2-an500")
VARIANTS = ("c", "dsp")
#: the other --optimize modes of the DSP path ("dsp" is the default, balanced), measured on this target
MODES = {"dsp-speed": "speed", "dsp-size": "size"}
MODES_TARGET = "mps2-an386"

# TFLM + CMSIS-NN on the emulated Cortex-M4 (mps2-an386, the same counting), from the MLPerf
# Tiny models' README: not something edgekit runs, so these are figures, not reports
TFLM = {
    "kws_ref_model": {"instructions": 7_700_400, "arena": 22_820, "flash": 159_868},
    "pretrainedResnet_quant": {"instructions": 29_861_040, "arena": 54_996, "flash": 204_428},
    "ad01_int8": {"instructions": 582_960, "arena": 2_580, "flash": 382_892},
}
SHORT = {"kws_ref_model": "KWS", "pretrainedResnet_quant": "ResNet-8", "ad01_int8": "AD"}


def macs(model: Path) -> int:
    """Multiply-accumulates of the conv, depthwise conv and fully connected layers (from the model)."""
    from edgekit.aot.graph import graph_from_model
    from edgekit.tflite.reader import read_model

    graph = graph_from_model(read_model(model), "m")
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


def portable_c_artifact(model: Path, target_name: str, folder: Path) -> Path:
    """The aot backend's conversion of `model` for `target_name` with its `dsp` feature off.

    A target's own conversion always uses the DSP path it has; to measure
    what that path is worth, the same backend converts for the same board
    without the feature, into an artifact folder that `bench()` accepts.
    """
    from edgekit import backends, targets
    from edgekit.core import Artifact
    from edgekit.hashing import sha256_tree
    from edgekit.models import open_source
    from edgekit.recipes import Recipe

    target = targets.get(target_name)
    plain = dataclasses.replace(target, features=tuple(f for f in target.features if f != "dsp"))
    backend = backends.get("aot")
    source = open_source(Path(rf.as_given(model)))
    recipe = Recipe(source.sha256, "aot", "int8", target_options=backend.recipe_options(plain),
                    toolchain=backend.toolchain())  # fmt: skip
    folder.mkdir(parents=True)
    result = backend.convert(source, recipe, plain, None, folder)
    artifact = Artifact(
        path=folder,
        backend="aot",
        recipe=recipe.to_json(),
        recipe_key=recipe.key(),
        primary=result.primary,
        inputs=result.inputs,
        outputs=result.outputs,
        files=sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()),
        sha256=sha256_tree(folder),
        info=dict(result.info),
        source={"name": source.name, "version": None, "format": source.format, "sha256": source.sha256,
                "path": str(source.path), "dataset": None},
    )  # fmt: skip
    artifact.save()
    return folder


def measure(models: list[Path], target_names, out: Path, runs: int, limit: int, registry_uri: str | None) -> None:
    with rf.registry(registry_uri) as uri, tempfile.TemporaryDirectory(prefix="edgekit-aot-c-") as tmp:
        for target in target_names:
            for model in models:
                settings = rf.settings(runs=runs, warmup=1, limit=limit, threads=None)
                path = out / rf.file_name(model, target, "aot", "dsp")
                report = rf.bench_to_file(model, target, path, registry_uri=uri, backend="aot",
                                          quantization="int8", settings=settings)  # fmt: skip
                print(f"{path.name}: {report['device']['instructions']:,.0f} instructions", flush=True)
                folder = portable_c_artifact(model, target, Path(tmp) / f"{model.stem}-{target}-c")
                settings = rf.settings(runs=runs, warmup=1, limit=limit, threads=None)
                path = out / rf.file_name(model, target, "aot", "c")
                report = rf.bench_to_file(str(folder), target, path, registry_uri=uri, settings=settings)
                print(f"{path.name}: {report['device']['instructions']:,.0f} instructions", flush=True)
                if target != MODES_TARGET:
                    continue
                for variant, mode in MODES.items():
                    settings = rf.settings(runs=runs, warmup=1, limit=limit, threads=None)
                    path = out / rf.file_name(model, target, "aot", variant)
                    report = rf.bench_to_file(model, target, path, registry_uri=uri, backend="aot",
                                              quantization="int8", settings=settings, optimize=mode)  # fmt: skip
                    print(f"{path.name}: {report['device']['instructions']:,.0f} instructions", flush=True)


def instructions(report: dict) -> int:
    return int(report["device"]["instructions"])


def exact(reports: dict) -> str:
    return ", ".join(
        f"{label}: {'yes' if reports[v]['fidelity'].get('bit_exact') else 'NO'}"
        for label, v in (("C", "c"), ("DSP", "dsp"))
    )


def tables(models: list[Path], target_names, out: Path) -> str:
    text = []
    for target in target_names:
        rows = {}
        for model in models:
            rows[model] = {v: rf.read(out / rf.file_name(model, target, "aot", v)) for v in VARIANTS}
        files = [out / rf.file_name(m, target, "aot", v) for m in models for v in VARIANTS]
        n = {r[v]["fidelity"]["n"] for r in rows.values() for v in VARIANTS}
        text.append(f"`{target}`, outputs compared on {', '.join(map(str, sorted(n)))} inputs:")
        text.append("")
        with_tflm = target == "mps2-an386"
        if with_tflm:
            text += [
                "| model | MACs | TFLM+CMSIS-NN instr. | aot portable C instr. | aot DSP instr. | aot DSP instr./MAC "
                "| aot DSP vs TFLM | arena aot / TFLM | flash (text+data) aot DSP / TFLM | bit-exact vs TFLM |",
                "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
            ]
        else:
            text += [
                "| model | aot portable C instr. | aot DSP instr. | aot DSP instr./MAC | bit-exact vs TFLM |",
                "| --- | --- | --- | --- | --- |",
            ]
        for model, r in rows.items():
            name = model.stem
            label = SHORT.get(name, name)
            c, dsp = instructions(r["c"]), instructions(r["dsp"])
            count = macs(model)
            if with_tflm and name in TFLM:
                tflm = TFLM[name]
                arena = r["dsp"]["memory"]["arena_bytes"]
                text.append(
                    f"| {label} | {count / 1e6:.3f} M | {tflm['instructions']:,} | {c:,} | {dsp:,} | {dsp / count:.2f} "
                    f"| {dsp / tflm['instructions']:.2f}x | {arena:,} / {tflm['arena']:,} B ({arena / tflm['arena']:.2f}x) "
                    f"| {r['dsp']['memory']['flash_bytes']:,} / {tflm['flash']:,} B | {exact(r)} |"
                )
            elif with_tflm:
                text.append(f"| {label} | {count / 1e6:.3f} M | - | {c:,} | {dsp:,} | {dsp / count:.2f} | - "
                            f"| {r['dsp']['memory']['arena_bytes']:,} / - B | {r['dsp']['memory']['flash_bytes']:,} / - B "
                            f"| {exact(r)} |")  # fmt: skip
            else:
                text.append(f"| {label} | {c:,} | {dsp:,} | {dsp / count:.2f} | {exact(r)} |")
        text += ["", f"Reports: {rf.cite(files)}.", ""]
    return "\n".join(text)


def weight_bytes(model: Path) -> int:
    """Bytes of the model's constant tensors (weights and biases) as the .tflite stores them."""
    from edgekit.aot.fit import model_weight_bytes

    return model_weight_bytes(model)


def bundle_flash(report: dict) -> int | None:
    """Flash of the bundle alone (its code, weights and parameters, from the firmware's linker map)."""
    return report["memory"].get("firmware", {}).get("model_flash_bytes")


def modes_table(models: list[Path], out: Path) -> str:
    """Instructions, bundle and firmware flash of the DSP path in each --optimize mode (mps2-an386)."""
    order = (("speed", "dsp-speed"), ("balanced", "dsp"), ("size", "dsp-size"))
    text = [
        f"\n`{MODES_TARGET}`, DSP path, by `--optimize`: instructions; the bundle's own flash (its code, "
        "weights and requantization parameters: what the linker kept from the bundle's object file) as a "
        "multiple of the model's weight bytes; and the whole firmware's flash (the bundle plus edgekit's "
        "protocol, startup and UART driver):",
        "",
        "| model | model weights (B) | "
        + " | ".join(f"{m} instr. | {m} bundle flash (B) | {m} bundle / weights | {m} firmware flash (B)" for m, _ in order)
        + " | bit-exact |",
        "| --- | --- | " + " | ".join("--- | --- | --- | ---" for _ in order) + " | --- |",
    ]
    files = []
    for model in models:
        reports = {}
        for mode, variant in order:
            path = out / rf.file_name(model, MODES_TARGET, "aot", variant)
            if not path.is_file():
                return ""
            files.append(path)
            reports[mode] = rf.read(path)
        wb = weight_bytes(model)
        cells = []
        for mode, _ in order:
            r = reports[mode]
            flash, own = r["memory"]["flash_bytes"], bundle_flash(r)
            cells += [f"{instructions(r):,}", f"{own:,}" if own else "-", f"{own / wb:.3f}" if own else "-", f"{flash:,}"]
        ok = all(r["fidelity"].get("bit_exact") for r in reports.values())
        text.append(f"| {SHORT.get(model.stem, model.stem)} | {wb:,} | " + " | ".join(cells) + f" | {'yes' if ok else 'NO'} |")
    text += ["", f"Reports: {rf.cite(files)}.", ""]
    return "\n".join(text)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("models", nargs="*", type=Path, help="model files or a folder of the MLPerf Tiny models")
    parser.add_argument("--target", action="append", help=f"emulated board (default: {', '.join(TARGETS)})")
    rf.add_emulator_options(parser, runs=3, out=rf.REPORTS / SECTION)
    args = parser.parse_args(argv)
    models = rf.models_from(args.models)
    target_names = args.target or list(TARGETS)
    if not args.tables_only:
        measure(models, target_names, args.out, args.runs, args.limit, args.registry)
    sys.stdout.write(tables(models, target_names, args.out))
    if MODES_TARGET in target_names:
        sys.stdout.write(modes_table(models, args.out))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
