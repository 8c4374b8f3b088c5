"""What a source loader offers every consumer of a source model.

A loader opens one source model in the framework it was written in, once,
and hands it on in the forms edgekit needs: a runner on the model as it is
(the fidelity reference), a .tflite (the front half of the tflite, tflm and
aot backends), an ONNX model (the onnx backend) and a TensorFlow SavedModel
(the tfjs backend's converter). A format that cannot become one of them says
so in one line.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any, ClassVar

from edgekit._quiet import native_output_hidden
from edgekit.core import Runner, TensorSpec
from edgekit.errors import EdgekitError
from edgekit.models import SourceModel

#: sets up a TFLiteConverter (quantization, calibration) given the model's per-sample input shape
Configure = Callable[[Any, "tuple | None"], None]


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


class SourceLoader:
    """One source model, loaded on first use and kept for every later step."""

    format: ClassVar[str]

    def __init__(self, source: SourceModel):
        self.source = source
        self.path = Path(source.path)

    def fixed_quantization(self) -> str | None:
        """The quantization an already-converted model has and keeps; None when it can be chosen."""
        return None

    def reference_runner(self) -> Runner:
        """A runner on the model as it is, in its own framework."""
        raise NotImplementedError

    def interface(self) -> tuple[list[TensorSpec], list[TensorSpec]]:
        """The model's own inputs and outputs (with int8 scales where the format has them)."""
        with self.reference_runner() as runner:
            return list(runner.inputs), list(runner.outputs)

    def write_tflite(self, out_path: Path, quantization: str, configure: Configure) -> Path:
        """The model as a .tflite at `out_path`, converted with `quantization` as `configure` sets it up."""
        raise NotImplementedError

    def write_onnx(self, out_path: Path, opset: int) -> Path:
        """The model as an ONNX file at `out_path`."""
        raise NotImplementedError

    def check_saved_model(self) -> None:
        """Refuse, in one line and before any work, a format that cannot become a SavedModel."""
        raise EdgekitError(
            f"{self.path}: a {self.format} model is not a TensorFlow graph and cannot become a SavedModel "
            "(give the Keras or SavedModel source)"
        )

    def saved_model(self, workdir: Path) -> Path:
        """The model as a TensorFlow SavedModel folder (written under `workdir` when it is not one already).

        Its serving signature takes any batch size; inputs are named input_0.. and
        outputs output_0.. unless the model names its own.
        """
        self.check_saved_model()
        raise NotImplementedError


class TensorFlowLoader(SourceLoader):
    """A model TensorFlow loads (Keras, SavedModel): TFLiteConverter makes its .tflite."""

    def check_saved_model(self) -> None:
        return None

    def input_shape(self) -> tuple | None:
        """The per-sample shape of the first input (calibration samples are fitted to it)."""
        raise NotImplementedError

    def tflite_converter(self, workdir: Path):
        """A TFLiteConverter on the model; `workdir` is a private folder for intermediate files."""
        raise NotImplementedError

    def write_tflite(self, out_path: Path, quantization: str, configure: Configure) -> Path:
        out_path = Path(out_path)
        with tempfile.TemporaryDirectory(prefix="edgekit-tflite-") as tmp:
            converter = self.tflite_converter(Path(tmp))
            configure(converter, self.input_shape())
            try:
                with native_output_hidden():
                    flatbuffer = converter.convert()
            except Exception as exc:  # the converter raises many types, each with a useful first line
                raise EdgekitError(
                    f"TFLiteConverter failed on {self.source.ref} ({quantization}): {first_line(exc)}"
                ) from None
        out_path.write_bytes(flatbuffer)
        return out_path
