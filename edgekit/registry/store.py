"""The local store: registered model files and converted artifacts on disk, with an index.

Everything here is plain files, so looking up a model version or a cached
conversion never imports MLflow. Entries appear atomically: they are built in
`staging/` (same filesystem) and published with one `os.rename`; a folder that
exists under `models/` or `artifacts/` is complete. `lock()` serialises writers
across processes (sqlite and version numbering need it).

Layout::

    .lock
    staging/<random>/                 private work folders
    models/<name>/<version>/entry.json + files/<original file or folder>
    artifacts/<recipe key>/           an artifact folder (artifact.json + files)
    conversions/<recipe key>.json     the MLflow run that recorded that conversion
    firmware/<firmware key>/          a rendered and built firmware project (edgekit.firmware)
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import os
import shutil
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from edgekit.core import Artifact
from edgekit.errors import EdgekitError

ENTRY = "entry.json"
ENTRY_SCHEMA = "edgekit.registry-entry/1"


class LocalStore:
    def __init__(self, root: Path):
        self.root = Path(root)
        self._held = threading.local()

    # --- folders and the writers' lock -------------------------------------------------

    def _ensure(self) -> None:
        for sub in ("staging", "models", "artifacts", "conversions", "firmware"):
            (self.root / sub).mkdir(parents=True, exist_ok=True)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """An exclusive lock across processes and threads; nesting it in one thread is fine."""
        if getattr(self._held, "depth", 0):
            self._held.depth += 1
            try:
                yield
            finally:
                self._held.depth -= 1
            return
        self._ensure()
        with open(self.root / ".lock", "a") as handle:
            # flock belongs to this open file, so other threads (with their own) wait too
            fcntl.flock(handle, fcntl.LOCK_EX)
            self._held.depth = 1
            try:
                yield
            finally:
                self._held.depth = 0
                fcntl.flock(handle, fcntl.LOCK_UN)

    def staging_dir(self) -> Path:
        """A new private work folder, named for the process that owns it.

        A process killed mid-conversion (a lost farm worker, an interrupted
        build) cannot clean up after itself; the next one to stage removes the
        folders of owners that no longer exist.
        """
        self._ensure()
        self._clear_abandoned()
        return Path(tempfile.mkdtemp(prefix=f"stage-{os.getpid()}-", dir=self.root / "staging"))

    def _clear_abandoned(self) -> None:
        for folder in (self.root / "staging").iterdir():
            owner = folder.name.split("-")[1] if folder.name.count("-") >= 2 else ""
            if owner.isdigit() and not _alive(int(owner)):
                discard(folder)

    def publish(self, staged: Path, final: Path) -> bool:
        """Move `staged` to `final` in one rename. False (and `staged` removed) if `final` exists."""
        final.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.rename(staged, final)
        except OSError as exc:
            if exc.errno not in (errno.ENOTEMPTY, errno.EEXIST):
                raise
            discard(staged)
            return False
        return True

    # --- registered model versions -------------------------------------------------------

    def version_dir(self, name: str, version: str) -> Path:
        return self.root / "models" / name / str(version)

    def model_names(self) -> list[str]:
        folder = self.root / "models"
        return sorted(p.name for p in folder.iterdir() if p.is_dir()) if folder.is_dir() else []

    def versions(self, name: str) -> list[str]:
        """Complete local versions of `name`, oldest first."""
        folder = self.root / "models" / name
        if not folder.is_dir():
            return []
        found = [p.name for p in folder.iterdir() if p.name.isdigit() and (p / ENTRY).is_file()]
        return sorted(found, key=int)

    def entry(self, name: str, version: str) -> dict[str, Any] | None:
        path = self.version_dir(name, version) / ENTRY
        try:
            data = json.loads(path.read_text())
        except FileNotFoundError:
            return None
        except ValueError as exc:
            raise EdgekitError(
                f"{path} is corrupt ({exc}): delete its folder to fetch it again from MLflow"
            ) from None
        return data

    def model_path(self, name: str, version: str, entry: dict[str, Any]) -> Path:
        return self.version_dir(name, version) / "files" / entry["filename"]

    @staticmethod
    def write_entry(staged: Path, entry: dict[str, Any]) -> None:
        (staged / ENTRY).write_text(json.dumps({"schema": ENTRY_SCHEMA, **entry}, indent=2) + "\n")

    def publish_version(self, staged: Path, name: str, version: str) -> Path:
        """Publish a staged model version under the number MLflow gave it. Hold the lock.

        A folder already under that number is left over from an earlier MLflow
        database (MLflow never hands out a number twice), so it is replaced.
        """
        final = self.version_dir(name, version)
        self._remove(final)
        if not self.publish(staged, final):
            raise EdgekitError(f"{final} appeared while the registry lock was held")
        return final

    def _remove(self, path: Path) -> None:
        """Take a folder out of the index in one rename, then delete it at leisure."""
        if path.exists():
            graveyard = self.staging_dir()
            os.rename(path, graveyard / "removed")
            discard(graveyard)

    def is_staging(self, path: Path) -> bool:
        """Whether `path` is one of our staging folders (so a rename into the store works)."""
        return Path(path).resolve().parent == (self.root / "staging").resolve()

    # --- converted artifacts ------------------------------------------------------------

    def artifact_dir(self, recipe_key: str) -> Path:
        return self.root / "artifacts" / recipe_key

    def find_artifact(self, recipe_key: str) -> Artifact | None:
        """The stored artifact, or None; one whose files were deleted by hand counts as absent."""
        folder = self.artifact_dir(recipe_key)
        if not Artifact.is_artifact(folder):
            return None
        artifact = Artifact.load(folder)
        if artifact.recipe_key != recipe_key:
            raise EdgekitError(
                f"{folder} holds recipe {artifact.recipe_key[:12]}, not {recipe_key[:12]}: "
                "delete that folder to convert again"
            )
        if not all((folder / name).is_file() for name in artifact.files):
            return None
        return artifact

    def clear_incomplete(self, recipe_key: str) -> None:
        """Remove an artifact folder that lost its manifest or files (hold the lock)."""
        folder = self.artifact_dir(recipe_key)
        if folder.exists() and self.find_artifact(recipe_key) is None:
            self._remove(folder)

    # --- built firmware -----------------------------------------------------------------

    def firmware_dir(self, key: str) -> Path:
        return self.root / "firmware" / key

    def conversion_run(self, recipe_key: str) -> str | None:
        try:
            return json.loads((self.root / "conversions" / f"{recipe_key}.json").read_text())["run_id"]
        except (OSError, ValueError, KeyError):
            return None

    def record_conversion_run(self, recipe_key: str, run_id: str) -> None:
        staged = self.staging_dir()
        (staged / "run.json").write_text(json.dumps({"run_id": run_id}) + "\n")
        os.replace(staged / "run.json", self.root / "conversions" / f"{recipe_key}.json")
        discard(staged)

    def forget_conversion_run(self, recipe_key: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            (self.root / "conversions" / f"{recipe_key}.json").unlink()


def copy_model(source: Path, into: Path) -> Path:
    """Copy a model file or SavedModel folder into `into`, keeping its name."""
    target = into / source.name
    if source.is_dir():
        shutil.copytree(source, target, symlinks=False)
    else:
        shutil.copy2(source, target)
    return target


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process: alive
        return True
    return True


def discard(path: Path) -> None:
    shutil.rmtree(path, ignore_errors=True)
