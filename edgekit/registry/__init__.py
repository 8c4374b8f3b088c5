"""The model registry: MLflow as the system of record, a local store as the fast path.

A registered source model is an MLflow registered-model version; each
conversion is an MLflow run carrying the recipe, linked to that version; each
benchmark is a run with the report's numbers as metrics. The local store
(`store.py`) mirrors model files and converted artifacts on disk, so that
`resolve("name:version")` and the conversion cache never import MLflow.
When the store misses (a version registered from another machine on a shared
server), the files are fetched from MLflow into the store.
"""

from __future__ import annotations

import os
import re
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from edgekit.core import Artifact
from edgekit.errors import EdgekitError, UnknownChoiceError
from edgekit.hashing import sha256_tree
from edgekit.models import SourceModel, detect_format
from edgekit.registry.location import Location, locate
from edgekit.registry.signatures import check_signature
from edgekit.registry.store import LocalStore, copy_model, discard
from edgekit.registry.tracking import Tracking

__all__ = ["Registry", "open_registry", "check_name", "parse_ref"]

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_name(name: str) -> str:
    if not _NAME.fullmatch(name or ""):
        raise EdgekitError(
            f"model name {name!r} is not valid: use letters, digits, '-', '_' and '.' "
            "(starting with a letter or digit, at most 128 characters)"
        )
    return name


def parse_ref(ref: str) -> tuple[str, str | None]:
    """`name` -> (name, None) for the latest version; `name:version` -> (name, version)."""
    name, sep, version = ref.rpartition(":")
    if not sep:
        name, version = ref, ""
    check_name(name)
    if version in ("", "latest"):
        return name, None
    if not version.isdigit() or int(version) < 1:
        raise EdgekitError(f"model reference {ref!r}: the version must be a number, as in {name}:1")
    return name, str(int(version))


def _dataset_value(dataset: str | None) -> str | None:
    """A built-in data set name stays as it is; an `.npz` path is checked and made absolute."""
    if not dataset:
        return None
    from edgekit.datasets import BUILTINS  # cheap: loads nothing until a set is used

    if dataset in BUILTINS:
        return dataset
    path = Path(dataset).expanduser()
    if path.suffix != ".npz":
        raise UnknownChoiceError("data set", dataset, [*BUILTINS, "<file>.npz"])
    if not path.is_file():
        raise EdgekitError(f"data set file not found: {dataset}")
    return str(path.resolve())


class Registry:
    def __init__(self, uri: str | None = None):
        self._location: Location = locate(uri)
        self.uri: str = self._location.uri
        self._store = LocalStore(self._location.store_dir)
        self._tracking = Tracking(self._location, self._store.lock)

    def __repr__(self) -> str:
        return f"Registry({self.uri!r})"

    # --- source models -------------------------------------------------------------------

    def register(self, path: Path, name: str, dataset: str | None = None) -> SourceModel:
        """Copy a model into the store and make it the next MLflow version of `name`."""
        check_name(name)
        path = Path(path)
        fmt = detect_format(path)
        check_signature(path, fmt)
        dataset = _dataset_value(dataset)
        staged = self._store.staging_dir()
        try:
            files = staged / "files"
            files.mkdir()
            copied = copy_model(path, files)
            # hash the copy, not the original: it is what the store will serve
            sha256 = sha256_tree(copied)
            tags = {"edgekit.format": fmt, "edgekit.sha256": sha256, "edgekit.filename": copied.name}
            if dataset:
                tags["edgekit.dataset"] = dataset
            self._tracking.prepare()
            with self._store.lock(), self._tracking.guard():
                version, run_id = self._tracking.register_version(name, files, tags)
                entry = _entry(name, version, fmt, sha256, dataset, copied.name, run_id)
                self._store.write_entry(staged, entry)
                self._store.publish_version(staged, name, version)
        except BaseException:
            discard(staged)
            raise
        return self.resolve(f"{name}:{version}")

    def resolve(self, ref: str) -> SourceModel:
        """`name` (latest version) or `name:version`; the store answers without MLflow when it can."""
        name, version = parse_ref(ref)
        if version is None and self._location.embedded:
            # everything registered here went through this store, so its newest is the newest
            local = self._store.versions(name)
            version = local[-1] if local else None
        if version is not None:
            entry = self._store.entry(name, version)
            if entry is not None and self._complete(entry):
                return self._source(entry)
        return self._fetch(name, version)

    def _complete(self, entry: dict[str, Any]) -> bool:
        """Whether the entry's files are still there (someone may have deleted them by hand)."""
        return self._store.model_path(entry["name"], entry["version"], entry).exists()

    def _fetch(self, name: str, version: str | None) -> SourceModel:
        """Ask MLflow for a version the store lacks, and download its files into the store."""
        if not self._location.has_records():
            self._unknown_model(name)
        self._tracking.prepare()
        with self._store.lock(), self._tracking.guard():
            versions = self._tracking.version_numbers(name)
            if not versions:
                self._unknown_model(name)
            version = version or versions[-1]
            if version not in versions:
                raise UnknownChoiceError("version", f"{name}:{version}", versions)
            entry = self._store.entry(name, version)
            if entry is None or not self._complete(entry):  # unless fetched while we waited
                entry = self._download(name, version)
        return self._source(entry)

    def _download(self, name: str, version: str) -> dict[str, Any]:
        staged = self._store.staging_dir()
        try:
            folder, tags = self._tracking.download_version(name, version, staged / "download")
            files = staged / "files"
            os.rename(folder, files)
            filename = tags.get("edgekit.filename") or _only_child(files, f"{name}:{version}")
            model = files / filename
            fmt = detect_format(model)
            sha256 = sha256_tree(model)
            if tags.get("edgekit.sha256", sha256) != sha256:
                raise EdgekitError(
                    f"{name}:{version} downloaded from MLflow does not match its sha256 tag: "
                    "its files were changed after registration"
                )
            entry = _entry(name, version, fmt, sha256, tags.get("edgekit.dataset"), filename, None)
            discard(staged / "download")
            self._store.write_entry(staged, entry)
            self._store.publish_version(staged, name, version)
        except BaseException:
            discard(staged)
            raise
        return entry

    def _unknown_model(self, name: str):
        known = set(self._store.model_names())
        if self._location.has_records():
            known |= set(self._tracking.model_names())
        if not known:
            raise EdgekitError(
                f"no model '{name}' in registry {self.uri}: it is empty; "
                "add one with `edgekit register PATH --name NAME`"
            )
        raise UnknownChoiceError("model", name, known)

    def _source(self, entry: dict[str, Any]) -> SourceModel:
        name, version = entry["name"], entry["version"]
        return SourceModel(
            path=self._store.model_path(name, version, entry),
            format=entry["format"],
            sha256=entry["sha256"],
            name=name,
            version=version,
            dataset=entry.get("dataset"),
        )

    def list_models(self, name: str | None = None) -> list[dict]:
        """Every version (of `name`, or of all models) as MLflow records it."""
        if name is not None:
            check_name(name)
        if not self._location.has_records():  # do not create a database just to list nothing
            if name is not None:
                self._unknown_model(name)
            return []
        self._tracking.prepare()
        with self._store.lock(), self._tracking.guard():
            rows = self._tracking.list_versions(name)
            if name is not None and not rows:
                self._unknown_model(name)
        return rows

    # --- converted artifacts -------------------------------------------------------------

    def find_artifact(self, recipe_key: str) -> Artifact | None:
        """The cached artifact for this recipe, from the local store only (no MLflow)."""
        return self._store.find_artifact(recipe_key)

    def staging_dir(self) -> Path:
        """A fresh private folder on the store's filesystem, for a converter to write into."""
        return self._store.staging_dir()

    def store_artifact(self, staged: Path, artifact: Artifact, source: SourceModel) -> Artifact:
        """Publish a staged artifact under its recipe key; the first of racing writers wins.

        The winner logs the one MLflow conversion run, then renames its folder
        into place; a loser (or a writer that finds the key already stored)
        discards its folder and returns the stored artifact.
        """
        staged = Path(staged)
        key = artifact.recipe_key
        if not self._store.is_staging(staged):
            raise ValueError(f"{staged} is not a folder from Registry.staging_dir()")
        if Path(artifact.path).resolve() != staged.resolve():
            raise ValueError(f"artifact.path {artifact.path} is not the staged folder {staged}")
        try:
            if not Artifact.is_artifact(staged):
                artifact.save()
            stored = self._store.find_artifact(key)
            if stored is None:
                self._tracking.prepare()
                with self._store.lock(), self._tracking.guard():
                    stored = self._store.find_artifact(key)
                    if stored is None:
                        stored = self._publish_artifact(staged, artifact, source)
        finally:
            if staged.exists():
                discard(staged)
        return stored

    def _publish_artifact(self, staged: Path, artifact: Artifact, source: SourceModel) -> Artifact:
        """Log the conversion run, then rename into place; undo the run if the rename fails.

        On a shared server another machine may have converted this recipe
        already: then its files are downloaded and cached instead of ours, so
        every machine benchmarks the same bytes and the recipe keeps one run.
        (The lock is per machine, so two machines converting in the same
        second can still both log a run.)
        """
        key = artifact.recipe_key
        run_id = None if self._location.embedded else self._tracking.find_conversion(key)
        logged = run_id is None
        downloads = None
        if logged:
            tags = self._conversion_tags(artifact, source)
            run_name = _run_name("convert", source, artifact)
            run_id = self._tracking.log_conversion(staged, artifact.recipe, tags, run_name)
        else:
            downloads = self._store.staging_dir()
            theirs = self._tracking.download_conversion(run_id, downloads)
            if Artifact.is_artifact(theirs):
                staged = theirs
        try:
            self._store.record_conversion_run(key, run_id)
            final = self._store.artifact_dir(key)
            self._store.clear_incomplete(key)
            if not self._store.publish(staged, final):
                raise EdgekitError(f"{final} appeared while the registry lock was held")
        except BaseException:
            if logged:
                self._tracking.delete_run(run_id)
            self._store.forget_conversion_run(key)
            raise
        finally:
            if downloads is not None:
                discard(downloads)
        return Artifact.load(final)

    @staticmethod
    def _conversion_tags(artifact: Artifact, source: SourceModel | None) -> dict[str, str]:
        tags = _source_tags(source) if source is not None else {}
        return tags | {
            "edgekit.recipe_key": artifact.recipe_key,
            "edgekit.artifact_sha256": artifact.sha256,
            "edgekit.backend": artifact.backend,
        }

    # --- benchmarks ----------------------------------------------------------------------

    def log_benchmark(
        self,
        report: dict,
        source: SourceModel | None,
        artifact: Artifact | None,
        extra_tags: dict[str, str] | None = None,
    ) -> str:
        """One MLflow run per report: numeric leaves as metrics, the JSON as an artifact.

        `extra_tags` are the caller's own (a benchmark matrix tags each run with its cell).
        """
        tags: dict[str, str] = _source_tags(source) if source is not None else {}
        if artifact is not None:
            tags = self._conversion_tags(artifact, source)
        tags |= extra_tags or {}
        self._tracking.prepare()
        with self._store.lock(), self._tracking.guard():
            if artifact is not None:
                # an artifact folder given by path may come from elsewhere: ask MLflow
                conversion = self._store.conversion_run(artifact.recipe_key) or (
                    self._tracking.find_conversion(artifact.recipe_key)
                )
                if conversion:
                    tags["edgekit.conversion_run_id"] = conversion
            return self._tracking.log_benchmark(report, tags, _run_name("bench", source, artifact))


    def benchmark_reports(self, ref: str) -> list[tuple[str, dict]]:
        """(run id, report) of every benchmark logged for `name` or `name:version`, oldest first."""
        name, version = parse_ref(ref)
        check_name(name)
        if not self._location.has_records():
            self._unknown_model(name)
        self._tracking.prepare()
        with self._store.lock(), self._tracking.guard():
            runs = self._tracking.benchmark_runs(name, version)
            if not runs and not self._tracking.version_numbers(name):
                self._unknown_model(name)
            return [(run.info.run_id, self._tracking.benchmark_report(run.info.run_id)) for run in runs]

    def benchmarks_tagged(self, tag: str) -> list[dict[str, Any]]:
        """Benchmark runs that carry `tag`: {run_id, status, tags}, oldest first."""
        if not self._location.has_records():
            return []
        self._tracking.prepare()
        with self._store.lock(), self._tracking.guard():
            return self._tracking.benchmarks_tagged(tag)

    def benchmark_report(self, run_id: str) -> dict:
        """The report JSON a benchmark run logged."""
        self._tracking.prepare()
        with self._tracking.guard():
            return self._tracking.benchmark_report(run_id)

    def delete_benchmark(self, run_id: str) -> None:
        """Delete a benchmark run (one left unfinished by a process that died while logging it)."""
        self._tracking.prepare()
        with self._store.lock(), self._tracking.guard():
            self._tracking.delete_run(run_id)


def open_registry(uri: str | None = None) -> Registry:
    return Registry(uri)


def _source_tags(source: SourceModel) -> dict[str, str]:
    tags = {"edgekit.model": source.name, "edgekit.source_sha256": source.sha256}
    if source.version:
        tags["edgekit.model_version"] = str(source.version)
    return tags


def _run_name(kind: str, source: SourceModel | None, artifact: Artifact | None) -> str:
    """`convert mnist:2 tflite int8`: what an MLflow UI user scans the run list for."""
    parts = [kind]
    if source is not None:
        parts.append(source.ref if source.version else source.name)
    if artifact is not None:
        parts += [artifact.backend, str(artifact.recipe.get("quantization", ""))]
    return " ".join(p for p in parts if p)


def _entry(name, version, fmt, sha256, dataset, filename, run_id) -> dict[str, Any]:
    return {
        "name": name,
        "version": str(version),
        "format": fmt,
        "sha256": sha256,
        "dataset": dataset,
        "filename": filename,
        "register_run_id": run_id,
        "stored_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
    }


def _only_child(folder: Path, ref: str) -> str:
    children = sorted(p.name for p in folder.iterdir())
    if len(children) != 1:
        raise EdgekitError(
            f"{ref} was not registered by edgekit and holds {len(children)} files "
            f"({', '.join(children[:5])}): register the model file itself with `edgekit register`"
        )
    return children[0]
