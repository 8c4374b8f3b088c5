"""The demo's web step: the registered float CNN in TF.js, under Node.js and in headless Chromium.

`make demo` calls `web_step` after the host benchmarks: the same model is
converted by the tensorflowjs converter and benchmarked on node-wasm and
browser-wasm on the mnist5k test split, then compared with the host's float
LiteRT report. `run` is the demo's way of running an `edgekit` command.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path


def web_step(run: Callable[..., None], out: Path, model: str = "mnist-cnn", host_report: Path | None = None) -> list[Path]:
    """Benchmark `model` on node-wasm and browser-wasm (one thread each); the reports written.

    A machine without Node.js or Chromium skips what it cannot run, saying
    why, instead of failing the demo.
    """
    from edgekit.errors import EdgekitError
    from edgekit.web import assets

    reports = []
    for target, needs in (("node-wasm", (assets.node_binary, assets.js_folder)),
                          ("browser-wasm", (assets.js_folder, assets.chromium_binary, assets.playwright_sync))):
        try:
            for check in needs:
                check()
        except EdgekitError as missing:
            print(f"skipping {target}: {missing}", flush=True)
            continue
        report = out / f"{target}.json"
        run("bench", model, "--target", target, "--threads", "1", "--out", str(report))
        reports.append(report)
    if reports:
        run("compare", *(str(p) for p in ([host_report] if host_report else []) + reports))
    return reports
