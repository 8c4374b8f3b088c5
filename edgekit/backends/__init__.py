"""The backend registry: one module per backend, found by name.

A built-in backend is the module `edgekit/backends/<name>.py` that defines a
`Backend` subclass whose `name` is the module's name; a plugin registers a
`Backend` class under the entry-point group `edgekit.backends`. Names are
listed without importing anything heavy, so the CLI can offer them as choices
at startup. A name registered twice is an error.
"""

from __future__ import annotations

import importlib
from functools import cache
from importlib import metadata
from pathlib import Path

from edgekit.backends.base import Backend
from edgekit.errors import EdgekitError, UnknownChoiceError

ENTRY_POINT_GROUP = "edgekit.backends"
_NOT_BACKENDS = {"__init__", "base"}


def _builtin_names() -> list[str]:
    here = Path(__file__).parent
    return sorted(p.stem for p in here.glob("*.py") if p.stem not in _NOT_BACKENDS)


def _plugins() -> dict[str, metadata.EntryPoint]:
    return {ep.name: ep for ep in metadata.entry_points(group=ENTRY_POINT_GROUP)}


@cache
def names() -> tuple[str, ...]:
    """Every backend name, built-in and plugin, sorted."""
    builtin = _builtin_names()
    plugins = _plugins()
    twice = sorted(set(builtin) & set(plugins))
    if twice:
        raise EdgekitError(
            f"backend name registered twice: {', '.join(twice)} (a plugin reuses a built-in name)"
        )
    return tuple(sorted([*builtin, *plugins]))


@cache
def get(name: str) -> Backend:
    """The backend called `name`, instantiated once."""
    if name not in names():
        raise UnknownChoiceError("backend", name, names())
    if name in _builtin_names():
        module = importlib.import_module(f"edgekit.backends.{name}")
        classes = [
            obj
            for obj in vars(module).values()
            if isinstance(obj, type)
            and issubclass(obj, Backend)
            and obj.__module__ == module.__name__
            and getattr(obj, "name", None) == name
        ]
        if len(classes) != 1:
            raise RuntimeError(f"edgekit/backends/{name}.py must define one Backend named {name!r}")
        cls = classes[0]
    else:
        cls = _plugins()[name].load()
    return cls()
