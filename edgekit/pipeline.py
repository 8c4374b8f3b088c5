"""The pipeline's middle: resolve a model, pick backend and quantization, convert through the cache.

`convert` is what `edgekit convert`, `bench`, `predict` and `firmware` share:
a recipe (everything that decides the artifact) is hashed, the registry's
store is asked for that key, and only a miss runs the backend's converter,
in a private staging folder that is moved into the store whole or not at all.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from edgekit import backends, targets
from edgekit.backends.base import Backend
from edgekit.core import Artifact, RunOptions, Runner
from edgekit.errors import EdgekitError, InvalidModelError
from edgekit.hashing import sha256_tree
from edgekit.models import FORMATS, SourceModel, open_source
from edgekit.quantization import decide
from edgekit.recipes import Recipe

if TYPE_CHECKING:  # only for annotations: numpy is not imported to plan a conversion
    import numpy as np

_MODEL_SUFFIXES = (".keras", ".h5", ".hdf5", ".onnx", ".tflite")


@dataclass
class Conversion:
    artifact: Artifact
    source: SourceModel
    target: targets.Target
    cached: bool
    calibration: str | None


def open_registry(uri: str | None = None):
    from edgekit.registry import Registry

    return Registry(uri)


def resolve(ref: str, registry_uri: str | None = None) -> SourceModel | Artifact:
    """A model reference: an artifact folder, a model file or folder, or `name[:version]`."""
    path = Path(ref)
    if path.exists():
        return Artifact.load(path) if Artifact.is_artifact(path) else open_source(path)
    if path.suffix.lower() in _MODEL_SUFFIXES or os.sep in ref or ref.startswith("."):
        raise InvalidModelError(f"model file not found: {ref}")
    return open_registry(registry_uri).resolve(ref)


def source_of(artifact: Artifact) -> SourceModel | None:
    """The source model an artifact was converted from, if its file is still where it was."""
    info = artifact.source
    path = info.get("path")
    if not path or not Path(path).exists() or info.get("format") not in FORMATS:
        return None
    return SourceModel(
        path=Path(path),
        format=info["format"],
        sha256=info["sha256"],
        name=info.get("name", Path(path).stem),
        version=info.get("version"),
        dataset=info.get("dataset"),
    )


def choose_backend(target: targets.Target, name: str | None) -> Backend:
    if name is None:
        available = [b for b in target.backends if b in backends.names()]
        if not available:
            raise EdgekitError(
                f"target {target.name} supports backends {', '.join(target.backends)}, "
                "none of which is installed in this edgekit"
            )
        return backends.get(available[0])
    backend = backends.get(name)
    if name not in target.backends:
        raise EdgekitError(
            f"target {target.name} does not support backend '{name}': choose one of "
            f"{', '.join(target.backends)}"
        )
    return backend


def convert(
    ref: str | SourceModel,
    target: str,
    backend: str | None = None,
    quantization: str | None = None,
    calibration: str | None = None,
    registry_uri: str | None = None,
    out: Path | None = None,
    *,
    optimize: str | None = None,
) -> Conversion:
    """Convert a model for a target, reusing the stored artifact of an identical recipe.

    `optimize` (edgekit.core.OPTIMIZE_MODES) is for backends that offer the
    choice; it is part of the recipe, so each mode is cached on its own.
    """
    plan = plan_conversion(ref, target, backend, quantization, calibration, registry_uri, optimize=optimize)
    registry = open_registry(registry_uri)
    artifact = registry.find_artifact(plan.recipe.key())
    cached = artifact is not None
    if artifact is None:
        artifact = _convert_and_store(
            registry, plan.backend, plan.source, plan.recipe, plan.target, plan.samples, plan.calibration_name
        )
    if out is not None:
        export(artifact, Path(out))
    return Conversion(artifact, plan.source, plan.target, cached, plan.calibration_name)


@dataclass
class ConversionPlan:
    """Everything a conversion is decided by, known before anything is converted."""

    source: SourceModel
    target: targets.Target
    backend: Backend
    recipe: Recipe
    samples: np.ndarray | None
    calibration_name: str | None


def plan_conversion(
    ref: str | SourceModel,
    target: str,
    backend: str | None = None,
    quantization: str | None = None,
    calibration: str | None = None,
    registry_uri: str | None = None,
    *,
    optimize: str | None = None,
) -> ConversionPlan:
    """The recipe (and so the cache key) a conversion would have, without converting.

    Cheap: no converter runs and nothing heavy is imported, so a caller can
    learn every recipe of many conversions (a benchmark matrix) up front; a
    pair that cannot be converted raises the same error `convert` would.
    """
    the_target = targets.get(target)
    source = resolve(ref, registry_uri) if isinstance(ref, str) else ref
    if isinstance(source, Artifact):
        raise EdgekitError(f"{ref} is already a converted artifact: bench or predict it instead")
    the_backend = choose_backend(the_target, backend)
    if optimize is not None and optimize not in the_backend.optimize_modes:
        offering = [b for b in backends.names() if backends.get(b).optimize_modes]
        raise EdgekitError(
            f"backend {the_backend.name} has no --optimize choice (backends with one: {', '.join(offering)})"
        )
    decision = decide(the_backend, the_target, quantization, source, calibration)
    target_options = the_backend.recipe_options(the_target)
    if optimize is not None:
        target_options["optimize"] = optimize
    recipe = Recipe(
        source_sha256=source.sha256,
        backend=the_backend.name,
        quantization=decision.quantization,
        calibration_sha256=decision.calibration_sha256,
        target_options=target_options,
        toolchain=the_backend.toolchain(),
    )
    return ConversionPlan(source, the_target, the_backend, recipe, decision.samples, decision.calibration_name)


def _convert_and_store(registry, backend, source, recipe, target, samples, calibration_name) -> Artifact:
    staged = registry.staging_dir()
    try:
        result = backend.convert(source, recipe, target, samples, staged)
        files = sorted(p.relative_to(staged).as_posix() for p in staged.rglob("*") if p.is_file())
        info = dict(result.info)
        if calibration_name:
            info.setdefault("calibration", calibration_name)
        artifact = Artifact(
            path=staged,
            backend=backend.name,
            recipe=recipe.to_json(),
            recipe_key=recipe.key(),
            primary=result.primary,
            inputs=result.inputs,
            outputs=result.outputs,
            files=files,
            sha256=sha256_tree(staged),
            info=info,
            source={
                "name": source.name,
                "version": source.version,
                "format": source.format,
                "sha256": source.sha256,
                "path": str(Path(source.path).resolve()),
                "dataset": source.dataset,
            },
        )
        artifact.save()
        return registry.store_artifact(staged, artifact, source)
    except BaseException:
        shutil.rmtree(staged, ignore_errors=True)
        raise


def export(artifact: Artifact, out: Path) -> None:
    """Copy an artifact's files (and manifest) into `out`, whole or not at all."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        for rel in [*artifact.files, Artifact.MANIFEST]:
            (tmp / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(artifact.path / rel, tmp / rel)
        if not out.exists():
            tmp.rename(out)
            return
        for file in sorted(p for p in tmp.rglob("*") if p.is_file()):
            dest = out / file.relative_to(tmp)
            dest.parent.mkdir(parents=True, exist_ok=True)
            os.replace(file, dest)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def artifact_for(
    ref: str,
    target: str,
    backend: str | None = None,
    quantization: str | None = None,
    calibration: str | None = None,
    registry_uri: str | None = None,
    *,
    optimize: str | None = None,
) -> tuple[Artifact, SourceModel | None]:
    """The artifact to run: given directly, or converted (through the cache) from a model."""
    resolved = resolve(ref, registry_uri)
    if isinstance(resolved, Artifact):
        if backend and backend != resolved.backend:
            raise EdgekitError(f"{ref} was converted by backend {resolved.backend}, not {backend}")
        made = resolved.recipe.get("target_options", {}).get("optimize")
        if optimize and optimize != made:
            raise EdgekitError(f"{ref} was converted with --optimize {made or 'unset'}, not {optimize}")
        return resolved, source_of(resolved)
    conversion = convert(resolved, target, backend, quantization, calibration, registry_uri, optimize=optimize)
    return conversion.artifact, conversion.source


def open_runner(artifact: Artifact, target: str, threads: int | None = None, port: str | None = None) -> Runner:
    """A runner where the target says the artifact runs (see edgekit/placement.py)."""
    from edgekit.placement import place

    return place(artifact, targets.get(target), RunOptions(threads=threads, port=port))


def reference_runner(artifact: Artifact, source: SourceModel | None) -> Runner | None:
    """The runner fidelity is judged against: the backend's choice, else the source model."""
    backend = backends.get(artifact.backend)
    if source is not None:
        chosen = backend.reference(source, artifact)
        if chosen is not None:
            return chosen
        from edgekit.reference import source_runner

        return source_runner(source)
    return None
