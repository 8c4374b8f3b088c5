"""The `node` runner kind: a TF.js graph model under Node.js on this machine (edgekit/web/runner.py)."""

from __future__ import annotations

from edgekit.core import Artifact, RunOptions, Runner


def check(target, options: RunOptions) -> None:
    from edgekit.web.runner import check_node

    check_node(target, options)


def open_runner(artifact: Artifact, target, options: RunOptions) -> Runner:
    from edgekit.web.runner import open_node

    return open_node(artifact, target, options)
