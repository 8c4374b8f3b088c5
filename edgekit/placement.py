"""Where a model runs: the one decision every command that runs a model goes through.

    place(artifact, target, options) -> Runner
        target.runner      the kind of place: host, qemu, serial, ssh, node, browser
        backend.runs_on    the kinds a backend's artifacts can run on
        RUNNER_KINDS       kind -> the module that opens a runner there

A report is only worth something if it was measured on the device it names,
so a target whose runner is not `host` never runs on this host: an
unsupported pair, a kind this edgekit cannot reach, or a device with no way
to reach it is refused with one line that says what would work.
"""

from __future__ import annotations

import importlib

from edgekit import backends
from edgekit.core import Artifact, RunOptions, Runner
from edgekit.errors import EdgekitError

#: runner kind -> module under edgekit.runners with `open_runner(artifact, target, options)`
RUNNER_KINDS = {
    "host": "host",
    "qemu": "board",
    "serial": "board",
    "ssh": "ssh",
    "node": "node",
    "browser": "browser",
}


class PlacementError(EdgekitError):
    """The artifact cannot run where the target says, or the device cannot be reached."""


def runs_on(backend_name: str) -> tuple[str, ...]:
    return tuple(backends.get(backend_name).runs_on)


def targets_for(backend_name: str) -> list[str]:
    """Targets whose runner kind this backend can serve and that list the backend."""
    from edgekit import targets

    kinds = runs_on(backend_name)
    return [t.name for t in targets.all_targets() if t.runner in kinds and backend_name in t.backends]


def check(artifact: Artifact, target) -> str:
    """The runner kind for this artifact on this target, or PlacementError listing what would work."""
    kind = target.runner
    kinds = runs_on(artifact.backend)
    if kind not in kinds:
        where = ", ".join(targets_for(artifact.backend)) or "none"
        raise PlacementError(
            f"backend {artifact.backend} cannot run on {target.name} (runner '{kind}'): it runs on "
            f"{', '.join(kinds)} runners; targets that would work: {where}"
        )
    return kind


def _module(kind: str):
    try:
        return importlib.import_module(f"edgekit.runners.{RUNNER_KINDS[kind]}")
    except ModuleNotFoundError as exc:
        if exc.name != f"edgekit.runners.{RUNNER_KINDS[kind]}":
            raise
        return None


def reachable(target, options: RunOptions | None = None):
    """The runner-kind module for `target`, once it is known the device can be reached.

    Cheap (no conversion, no connection): commands call it before converting,
    so a device that cannot be reached costs nothing and writes nothing.
    """
    options = options or RunOptions()
    kind = target.runner
    if options.serve and kind != "browser":
        raise PlacementError(
            f"--serve serves a page for a browser to run the model, but target {target.name} runs on a "
            f"'{kind}' runner: choose a browser target (browser-wasm, browser-webgl)"
        )
    module = _module(kind)
    if module is None:
        raise PlacementError(
            f"target {target.name} runs models through a '{kind}' runner, which this edgekit "
            f"does not have: nothing was run (this host is not {target.name})"
        )
    precheck = getattr(module, "check", None)
    if precheck is not None:
        precheck(target, options)
    return module


def place(artifact: Artifact, target, options: RunOptions | None = None) -> Runner:
    """Open a runner for `artifact` where `target` says it runs, or refuse."""
    options = options or RunOptions()
    check(artifact, target)
    return reachable(target, options).open_runner(artifact, target, options)
