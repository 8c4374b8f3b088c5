"""What every backend provides: a converter (recipe -> files) and a runner (files -> outputs).

Converting and running are separate, as in Polygraphy's loaders and runners:
`Backend.convert` writes an artifact folder; `Backend.load` opens a `Runner`
on it, and `Runner.infer` checks the feed before the backend's own `_infer`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

from edgekit.core import Artifact, RunOptions, Runner, TensorSpec

if TYPE_CHECKING:  # only for annotations: keeps heavy imports out of startup
    from edgekit.models import SourceModel
    from edgekit.recipes import Recipe
    from edgekit.targets import Target


@dataclass
class ConversionResult:
    """What a converter hands back: the main file and the model's interface.

    `info` carries backend-specific facts that belong in the artifact manifest
    and in reports (arena bytes, op list, fit report, ...).
    """

    primary: str
    inputs: list[TensorSpec]
    outputs: list[TensorSpec]
    info: dict[str, Any] = field(default_factory=dict)


class Backend:
    """A backend: one module in `edgekit/backends/`, registered by name."""

    name: ClassVar[str]
    quantizations: ClassVar[tuple[str, ...]] = ("none",)
    #: the pip extra that installs what this backend needs
    extra: ClassVar[str] = ""
    #: the runner kinds (a target's `runner`) this backend's artifacts can run on; see placement.py
    runs_on: ClassVar[tuple[str, ...]] = ("host",)
    #: the runtime library `load` imports: imported before a benchmark's memory window opens
    runtime_modules: ClassVar[tuple[str, ...]] = ()

    def toolchain(self) -> dict[str, str]:
        """Versions of every tool that decides this backend's output.

        Part of the recipe, so upgrading a converter invalidates the cache.
        Must not import heavy modules (use `edgekit._lazy.version_of`).
        """
        return {}

    #: `--optimize` modes this backend's code generation offers (edgekit.core.OPTIMIZE_MODES), if any
    optimize_modes: tuple[str, ...] = ()

    def recipe_options(self, target: Target) -> dict[str, Any]:
        """Target facts that change the artifact (e.g. the CPU for the aot backend)."""
        return {}

    def convert(
        self,
        source: SourceModel,
        recipe: Recipe,
        target: Target,
        calibration: np.ndarray | None,
        out_dir: Path,
    ) -> ConversionResult:
        """Write the converted files into `out_dir` (empty, private to this call).

        `recipe.quantization` and `calibration` (the samples, or None when the
        conversion does not calibrate) were decided by
        `edgekit.quantization.decide`, which owns their errors; the source
        model is opened through `edgekit.sources.loader_for`.
        """
        raise NotImplementedError

    def load(self, artifact: Artifact, target: Target, options: RunOptions) -> Runner:
        """Open a runner on a converted artifact in this process (the `host` runner kind).

        Runners elsewhere (a board, a device over SSH, a browser) are opened by
        placement (edgekit/placement.py), never from here.
        """
        raise NotImplementedError

    def reference(self, source: SourceModel, artifact: Artifact) -> Runner | None:
        """The runner whose outputs judge this artifact's fidelity.

        None means the source model itself (float outputs, tolerance-based).
        A backend that must match an interpreter bit for bit (int8 code that
        mirrors the TFLM reference kernels) returns that interpreter here; the
        harness then compares raw integer outputs and reports `bit_exact`.
        """
        return None
