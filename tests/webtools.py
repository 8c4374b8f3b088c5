"""What the TF.js tests need from the machine, and the skips that say what is missing."""

from __future__ import annotations

import os
import shutil
import time
from pathlib import Path

import pytest

from edgekit.errors import EdgekitError
from edgekit.web import assets


def need_node() -> None:
    if shutil.which("node") is None:
        pytest.skip("Node.js is not installed (no `node` on PATH)")
    try:
        assets.js_folder()
    except EdgekitError as exc:
        pytest.skip(str(exc))


def need_chromium() -> None:
    need_node()  # the page's packages come from the same js/node_modules
    for check in (assets.chromium_binary, assets.playwright_sync):
        try:
            check()
        except EdgekitError as exc:
            pytest.skip(str(exc))


def web_copy(tmp_path: Path, replace: dict[str, str]) -> Path:
    """A copy of the js/ folder (its node_modules linked, not copied) with some files replaced."""
    source = assets.js_folder()
    folder = tmp_path / "js"
    folder.mkdir()
    for file in source.iterdir():
        if file.name == "node_modules":
            (folder / "node_modules").symlink_to(file)
        elif file.is_file():
            shutil.copy2(file, folder / file.name)
    for name, text in replace.items():
        (folder / name).write_text(text)
    return folder


def broken_wasm_dir(tmp_path: Path) -> Path:
    """tfjs-backend-wasm's binaries replaced by bytes that are not WebAssembly."""
    folder = tmp_path / "wasm"
    folder.mkdir()
    for name in assets.WASM_FILES:
        (folder / name).write_bytes(b"this is not a wasm module\n" * 64)
    return folder


def keras_top1(model_path: Path) -> float:
    """The Keras model's own top-1 on the mnist5k test split: what a converted model must match."""
    import numpy as np

    from edgekit import datasets
    from edgekit.models import open_source
    from edgekit.reference import source_runner

    data = datasets.load("mnist5k")
    runner = source_runner(open_source(model_path))
    probabilities = runner.infer({"input_0": data.x_test.astype(np.float32)})["output_0"]
    return float((probabilities.argmax(axis=1) == data.y_test).mean())


class Stopwatch:
    def __enter__(self):
        self.started = time.monotonic()
        return self

    def __exit__(self, *exc):
        self.seconds = time.monotonic() - self.started


def descendants(pid: int) -> list[int]:
    """Every process below `pid`, read from /proc (Linux)."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found, todo = [], [pid]
    while todo:
        for child in children.get(todo.pop(), []):
            found.append(child)
            todo.append(child)
    return found


def renderer_processes() -> list[int]:
    """The Chromium renderer processes this test process started."""
    pids = []
    for pid in descendants(os.getpid()):
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except OSError:
            continue
        if b"--type=renderer" in cmdline:  # Chromium rewrites its argv: one string, spaces between
            pids.append(pid)
    return pids
