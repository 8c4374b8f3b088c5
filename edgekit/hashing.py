"""sha256 of files and folders, the identity of models, data sets and artifacts."""

from __future__ import annotations

import hashlib
from pathlib import Path

_CHUNK = 1 << 20


def sha256_file(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(_CHUNK):
            digest.update(chunk)
    return digest.hexdigest()


def sha256_tree(path: Path, exclude: frozenset[str] = frozenset()) -> str:
    """A file's sha256, or for a folder one hash over its relative paths and contents."""
    path = Path(path)
    if path.is_file():
        return sha256_file(path)
    digest = hashlib.sha256()
    for file in sorted(p for p in path.rglob("*") if p.is_file()):
        rel = file.relative_to(path).as_posix()
        if rel in exclude:
            continue
        digest.update(rel.encode() + b"\0" + sha256_file(file).encode() + b"\n")
    return digest.hexdigest()
