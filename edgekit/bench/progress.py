"""A progress bar that appears only when a loop takes more than a moment, and only on a terminal."""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator

DELAY_S = 1.0
WIDTH = 30


def progress(items: Iterable, label: str = "", stream=None) -> Iterator:
    stream = stream or sys.stderr
    items = list(items) if not hasattr(items, "__len__") else items
    total = len(items)
    interactive = getattr(stream, "isatty", lambda: False)()
    started = time.monotonic()
    shown = False
    last_draw = 0.0
    for done, item in enumerate(items):
        yield item
        now = time.monotonic()
        if interactive and total and now - started >= DELAY_S and now - last_draw >= 0.1:
            filled = int(WIDTH * (done + 1) / total)
            stream.write(f"\r{label:<12} [{'#' * filled}{'.' * (WIDTH - filled)}] {done + 1}/{total}")
            stream.flush()
            shown, last_draw = True, now
    if shown:
        stream.write("\r" + " " * (WIDTH + 40) + "\r")
        stream.flush()
