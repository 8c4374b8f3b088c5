"""Where a registry lives: an embedded folder, or an MLflow tracking URI plus a local cache.

An embedded registry is a folder holding MLflow's sqlite database, MLflow's
artifact root and edgekit's local store side by side, so one folder (the
default `./.edgekit`) is the whole registry. A remote registry (an MLflow
server, or any other tracking URI) keeps the system of record there and a
local store in the user's cache folder, one per URI.
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlparse

ENV_VAR = "EDGEKIT_REGISTRY"
DEFAULT_FOLDER = ".edgekit"


@dataclass(frozen=True)
class Location:
    uri: str
    tracking_uri: str
    #: where MLflow keeps run artifacts of our experiment; None lets the server decide
    artifact_root: str | None
    store_dir: Path
    embedded: bool
    #: the embedded registry's sqlite file (None for a remote one)
    database: Path | None = None

    def has_records(self) -> bool:
        """False when an embedded registry has no database yet: nothing to ask MLflow then."""
        return self.database is None or self.database.is_file()


def locate(uri: str | None = None) -> Location:
    """The registry named by `uri`, $EDGEKIT_REGISTRY, or `./.edgekit`, in that order."""
    uri = uri or os.environ.get(ENV_VAR) or DEFAULT_FOLDER
    folder = _as_folder(uri)
    if folder is not None:
        folder = folder.expanduser().resolve()
        database = folder / "mlflow.db"
        return Location(
            uri=str(folder),
            tracking_uri=f"sqlite:///{database}",
            artifact_root=(folder / "mlartifacts").as_uri(),
            store_dir=folder / "store",
            embedded=True,
            database=database,
        )
    if urlparse(uri).scheme in ("http", "https"):
        uri = uri.rstrip("/")  # one server, one cache folder, however it is spelt
    return Location(
        uri=uri,
        tracking_uri=uri,
        artifact_root=None,
        store_dir=cache_root() / "registries" / hashlib.sha256(uri.encode()).hexdigest()[:16],
        embedded=False,
    )


def cache_root() -> Path:
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "edgekit"


def _as_folder(uri: str) -> Path | None:
    """The folder an embedded registry URI names (a plain path or file://), else None."""
    parsed = urlparse(uri)
    if parsed.scheme == "file":
        return Path(unquote(parsed.path))
    if "://" in uri:
        return None
    return Path(uri)
