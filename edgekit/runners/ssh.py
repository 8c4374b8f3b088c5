"""The `ssh` runner kind: a Linux device (Jetson, Raspberry Pi) running edgekit's device program over SSH.

    check:        is there an address? (--host, the devices file, a user's target file)
    open_runner:  connect (host key checked) -> copy the device program by content hash
                  -> start it on a channel -> edgekit.link/1 (files sent once into the
                  device's cache) -> a LinkRunner whose env and timings are the device's

The runtime follows the artifact: tflite -> LiteRT, onnx -> ONNX Runtime,
tensorrt -> TensorRT (built into an engine on the device), or with
`--fallback onnxruntime` its ONNX on ONNX Runtime where TensorRT is absent.
"""

from __future__ import annotations

import json

from edgekit.core import Artifact, RunOptions, Runner
from edgekit.errors import EdgekitError
from edgekit.link.host import LinkRunner
from edgekit.placement import PlacementError

#: backend -> the device program's runtime that runs its artifacts
RUNTIMES = {"tflite": "litert", "onnx": "onnxruntime", "tensorrt": "tensorrt"}
#: runtime -> what to install on the device when it is missing
INSTALL = {
    "litert": "pip install ai-edge-litert (or tflite-runtime)",
    "onnxruntime": "pip install onnxruntime",
    "tensorrt": "install JetPack's TensorRT with its Python bindings (python3-libnvinfer) and pycuda",
}


def check(target, options: RunOptions) -> None:
    from edgekit.remote.config import device_for, where_to_say

    if options.port:
        raise PlacementError(
            f"--port {options.port} names a serial board, but target {target.name} is reached over ssh: "
            f"{where_to_say(target)}"
        )
    if device_for(target, options) is None:
        raise PlacementError(
            f"target {target.name} is a device reached over ssh and no address was given: "
            f"{where_to_say(target)} (edgekit connects only where you say; nothing was run)"
        )


def open_runner(artifact: Artifact, target, options: RunOptions) -> Runner:
    from edgekit.link.host import Session
    from edgekit.remote.config import device_for
    from edgekit.remote.ssh import Connection

    device = device_for(target, options)
    if device is None:
        check(target, options)
    connection = Connection(device)
    session = None
    try:
        channel = connection.start_program(connection.install_program())
        session = Session(channel, timeout=device.timeout)
        available = session.call("hello")[0].get("runtimes", [])
        runtime, load_options, details = choose_runtime(artifact, available, options, connection.where)
        for key, name in list(load_options.get("files", {}).items()):
            load_options["files"][key] = session.send_file(str(artifact.path / name))
        return RemoteRunner(session, artifact, runtime, options.threads, load_options, connection, details)
    except BaseException:
        if session is not None:
            session.close()
        connection.close()
        raise


def choose_runtime(artifact: Artifact, available: list[str], options: RunOptions, where: str):
    """(runtime, load options, details for the report): the artifact's own runtime, or the fallback."""
    wanted = RUNTIMES.get(artifact.backend)
    if wanted is None:
        raise PlacementError(f"backend {artifact.backend} has no runtime on a device reached over ssh")
    load_options: dict = {}
    if artifact.backend == "tensorrt":
        load_options = {"recipe": json.loads((artifact.path / artifact.info["engine_recipe"]).read_text())}
        if load_options["recipe"].get("calibration"):
            load_options["files"] = {"calibration": load_options["recipe"]["calibration"]}
    if wanted in available:
        return wanted, load_options, {"link": "ssh", "device": where}
    have = ", ".join(available) or "none"
    if options.fallback and artifact.primary.endswith(".onnx"):
        if options.fallback not in available:
            raise EdgekitError(
                f"{where} has neither {wanted} nor the fallback {options.fallback} (it has: {have}): "
                f"{INSTALL[options.fallback]} on the device"
            )
        precision = (load_options.get("recipe") or {}).get("precision", "fp32")
        if precision != "fp32":
            raise EdgekitError(
                f"{where} has no {wanted}, and --fallback {options.fallback} runs the float ONNX, not this "
                f"{precision} recipe: convert with --quantize none, or install TensorRT on the device"
            )
        note = f"{wanted} is not on the device: its ONNX ran on {options.fallback} (--fallback)"
        return options.fallback, {}, {"link": "ssh", "device": where, "fallback": note}
    hint = ", or give --fallback onnxruntime to run the model's ONNX there" if artifact.primary.endswith(".onnx") else ""
    name = "TensorRT" if wanted == "tensorrt" else wanted
    raise EdgekitError(
        f"{name} is not on {where} (the device program found: {have}): {INSTALL[wanted]} on the device{hint}"
    )


class RemoteRunner(LinkRunner):
    """A LinkRunner over SSH that also closes the connection, and says where it ran."""

    def __init__(self, session, artifact, runtime, threads, load_options, connection, details):
        self.connection = connection
        try:
            super().__init__(session, artifact, runtime, threads, load_options)
        except BaseException:
            connection.close()
            raise
        self.details = {**self.details, **details}

    def close(self) -> None:
        try:
            super().close()
        finally:
            self.connection.close()
