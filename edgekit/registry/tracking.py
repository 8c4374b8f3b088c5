"""MLflow, the registry's system of record: model versions, conversion runs, benchmark runs.

MLflow is imported on first use (it costs seconds), never by the cache lookup.
Callers hold the store's lock (and `guard()`) around every method that touches
the database: sqlite does not like two writers, and the first access creates
the tables.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import re
import tempfile
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ContextManager

from edgekit._lazy import require
from edgekit.errors import EdgekitError
from edgekit.registry.location import Location

EXPERIMENT = "edgekit"
MODEL_SUBDIR = "model"
ARTIFACT_SUBDIR = "artifact"
# MLflow keys allow letters, digits, `_-. /`; anything else becomes `_`
_UNSAFE_KEY = re.compile(r"[^A-Za-z0-9_\-. /]")
_MAX_PARAM = 6000
_BATCH = 1000


class Tracking:
    def __init__(self, location: Location, lock: Callable[[], ContextManager]):
        self._location = location
        self._lock = lock
        self._mlflow = None
        self._client = None
        self._experiment_id: str | None = None

    def prepare(self) -> None:
        """Import MLflow (slow) and open the client; call it before taking the lock.

        The import happens outside the lock, so other processes are not held up
        by it; opening the client is inside it, because for sqlite that creates
        or migrates the database, which two processes must not do at once.
        """
        if self._mlflow is not None:
            return
        mlflow = require("mlflow", "mlflow")
        # MLflow talks to a notebook user: run URLs on stdout (where our commands
        # print their results), progress bars, INFO lines about creating tables and
        # waiting for versions. Quiet by default; a user's own setting wins.
        os.environ.setdefault("MLFLOW_SUPPRESS_PRINTING_URL_TO_STDOUT", "true")
        os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
        # MLflow's HTTP defaults (7 retries, doubling backoff) make a stopped server
        # look like a hang of four minutes; a command line should fail in seconds
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_MAX_RETRIES", "3")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_BACKOFF_FACTOR", "1")
        os.environ.setdefault("MLFLOW_HTTP_REQUEST_TIMEOUT", "30")
        for logger in ("mlflow.store.db.utils", "mlflow.store.model_registry", "alembic"):
            logging.getLogger(logger).setLevel(logging.WARNING)
        if self._location.embedded:
            self._location.store_dir.parent.mkdir(parents=True, exist_ok=True)
        with self._lock():
            self._client = mlflow.MlflowClient(
                tracking_uri=self._location.tracking_uri, registry_uri=self._location.tracking_uri
            )
        self._mlflow = mlflow

    @property
    def client(self):
        self.prepare()
        return self._client

    def _experiment(self) -> str:
        if self._experiment_id is None:
            client = self.client
            experiment = client.get_experiment_by_name(EXPERIMENT)
            if experiment is None:
                self._experiment_id = client.create_experiment(
                    EXPERIMENT, artifact_location=self._location.artifact_root
                )
            else:
                if experiment.lifecycle_stage == "deleted":
                    client.restore_experiment(experiment.experiment_id)
                self._experiment_id = experiment.experiment_id
        return self._experiment_id

    @contextlib.contextmanager
    def guard(self) -> Iterator[None]:
        """Turn MLflow's errors (server down, bad URI, ...) into one-line EdgekitErrors."""
        self.prepare()
        try:
            yield
        except self._mlflow.exceptions.MlflowException as exc:
            message = (getattr(exc, "message", None) or str(exc)).strip().splitlines()[0]
            raise EdgekitError(f"MLflow registry {self._location.uri}: {message}") from exc

    def _new_run(self, kind: str, run_name: str, tags: dict[str, str]) -> str:
        run = self.client.create_run(
            self._experiment(), run_name=run_name, tags={"edgekit.kind": kind, **tags}
        )
        return run.info.run_id

    def delete_run(self, run_id: str) -> None:
        try:
            self.client.delete_run(run_id)
        except Exception:  # cleanup after another failure: report that one, not this
            logging.getLogger(__name__).warning("could not delete MLflow run %s", run_id)

    def _finish(self, run_id: str, work) -> str:
        """Run `work(run_id)`, then end the run; on failure delete the run and re-raise."""
        try:
            work(run_id)
            self.client.set_terminated(run_id, "FINISHED")
        except BaseException:
            self.delete_run(run_id)
            raise
        return run_id

    # --- model versions ------------------------------------------------------------------

    def register_version(self, name: str, files: Path, tags: dict[str, str]) -> tuple[str, str]:
        """Log the folder `files` as a "register" run and make it a new version of `name`.

        Returns (version, run_id). Hold the lock: MLflow numbers versions by reading the last one.
        """
        client = self.client
        run_id = self._new_run("register", f"register {name}", {"edgekit.model": name})
        version_holder: list[str] = []
        created: list[str] = []

        def work(run_id: str) -> None:
            client.log_artifacts(run_id, str(files), MODEL_SUBDIR)
            try:
                client.create_registered_model(name)
                created.append(name)
            except self._mlflow.exceptions.MlflowException as exc:
                if exc.error_code != "RESOURCE_ALREADY_EXISTS":
                    raise
            artifact_uri = client.get_run(run_id).info.artifact_uri
            version = client.create_model_version(
                name, f"{artifact_uri}/{MODEL_SUBDIR}", run_id=run_id, tags=tags
            )
            version_holder.append(str(version.version))
            client.set_tag(run_id, "edgekit.model_version", str(version.version))

        try:
            self._finish(run_id, work)
        except BaseException:
            # the run is gone: take back what points at it
            if version_holder:
                client.delete_model_version(name, version_holder[0])
            if created:
                client.delete_registered_model(name)
            raise
        return version_holder[0], run_id

    def _versions(self, name: str | None) -> list:
        query = f"name = '{_quote(name)}'" if name else None
        found, token = [], None
        while True:
            page = self.client.search_model_versions(query, page_token=token)
            found.extend(page)
            token = page.token
            if not token:
                return found

    def list_versions(self, name: str | None = None) -> list[dict[str, Any]]:
        rows = [_version_row(v) for v in self._versions(name)]
        return sorted(rows, key=lambda r: (r["name"], int(r["version"])))

    def model_names(self) -> list[str]:
        return sorted({v.name for v in self._versions(None)})

    def version_numbers(self, name: str) -> list[str]:
        return sorted((str(v.version) for v in self._versions(name)), key=int)

    def download_version(self, name: str, version: str, into: Path) -> tuple[Path, dict[str, str]]:
        """Download a model version's files into `into`; returns (folder holding them, its tags)."""
        model_version = self.client.get_model_version(name, version)
        into.mkdir(parents=True, exist_ok=True)
        folder = self._mlflow.artifacts.download_artifacts(
            artifact_uri=model_version.source,
            dst_path=str(into),
            tracking_uri=self._location.tracking_uri,
        )
        return Path(folder), dict(model_version.tags or {})

    # --- conversions and benchmarks ------------------------------------------------------

    def log_conversion(self, staged: Path, recipe: dict, tags: dict[str, str], run_name: str) -> str:
        """One run per stored artifact: the recipe as params, the files as artifacts."""
        client = self.client
        run_id = self._new_run("convert", run_name, tags)
        params = _flatten_strings(recipe)

        def work(run_id: str) -> None:
            self._log_batch(run_id, params=params)
            client.log_artifacts(run_id, str(staged), ARTIFACT_SUBDIR)

        return self._finish(run_id, work)

    def find_conversion(self, recipe_key: str) -> str | None:
        """The run that already recorded this recipe's conversion (another machine's), if any."""
        runs = self.client.search_runs(
            [self._experiment()],
            filter_string=f"tags.`edgekit.recipe_key` = '{_quote(recipe_key)}' "
            "and tags.`edgekit.kind` = 'convert'",
            max_results=1,
        )
        return runs[0].info.run_id if runs else None

    def download_conversion(self, run_id: str, into: Path) -> Path:
        """The artifact folder a conversion run logged, downloaded into `into`."""
        into.mkdir(parents=True, exist_ok=True)
        folder = self._mlflow.artifacts.download_artifacts(
            run_id=run_id,
            artifact_path=ARTIFACT_SUBDIR,
            dst_path=str(into),
            tracking_uri=self._location.tracking_uri,
        )
        return Path(folder)

    def log_benchmark(self, report: dict, tags: dict[str, str], run_name: str) -> str:
        client = self.client
        run_id = self._new_run("bench", run_name, tags)
        metrics = report_metrics(report)

        def work(run_id: str) -> None:
            self._log_batch(run_id, metrics=metrics)
            client.log_text(run_id, json.dumps(report, indent=2, default=str) + "\n", "report.json")

        return self._finish(run_id, work)

    def _bench_runs(self, query: str) -> list:
        """Every bench run matching `query`, oldest first, across MLflow's result pages."""
        found, token = [], None
        query = f"tags.`edgekit.kind` = 'bench' and {query}"
        while True:
            page = self.client.search_runs(
                [self._experiment()], filter_string=query, order_by=["attributes.start_time ASC"],
                max_results=_BATCH, page_token=token,
            )
            found.extend(page)
            token = page.token
            if not token:
                return found

    def benchmark_runs(self, name: str, version: str | None = None) -> list:
        """The finished bench runs of model `name` (of one version, if given), oldest first."""
        query = f"tags.`edgekit.model` = '{_quote(name)}'"
        if version is not None:
            query += f" and tags.`edgekit.model_version` = '{_quote(str(version))}'"
        return [run for run in self._bench_runs(query) if run.info.status == "FINISHED"]

    def benchmarks_tagged(self, tag: str) -> list[dict[str, Any]]:
        """Bench runs that carry `tag`, finished or not: {run_id, status, tags}, oldest first."""
        return [
            {"run_id": run.info.run_id, "status": run.info.status, "tags": dict(run.data.tags)}
            for run in self._bench_runs(f"tags.`{_quote(tag)}` LIKE '%'")
        ]

    def benchmark_report(self, run_id: str) -> dict:
        """The report a bench run logged (its `report.json` artifact)."""
        with tempfile.TemporaryDirectory(prefix="edgekit-report-") as folder:
            path = self.client.download_artifacts(run_id, "report.json", folder)
            return json.loads(Path(path).read_text(encoding="utf-8"))

    def _log_batch(self, run_id: str, params: dict[str, str] = {}, metrics: dict[str, float] = {}):
        entities = self._mlflow.entities
        now = int(time.time() * 1000)
        items = [entities.Param(k, v) for k, v in params.items()]
        items += [entities.Metric(k, v, now, 0) for k, v in metrics.items()]
        for start in range(0, len(items), _BATCH):
            chunk = items[start : start + _BATCH]
            self.client.log_batch(
                run_id,
                params=[i for i in chunk if isinstance(i, entities.Param)],
                metrics=[i for i in chunk if isinstance(i, entities.Metric)],
            )

    def run_metrics(self, run_id: str) -> dict[str, float]:
        return dict(self.client.get_run(run_id).data.metrics)


def report_metrics(report: dict) -> dict[str, float]:
    """Numeric leaves of a report keyed by their dotted path (`latency_ms.p50`).

    Per-sample lists (`samples`) and other lists are left out: they belong in
    the report JSON, not in one metric each. Booleans become 0/1 so flags such
    as `bit_exact` can be charted; None and NaN are skipped.
    """
    found: dict[str, float] = {}

    def walk(value: Any, path: str) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                if key == "samples":
                    continue
                walk(inner, f"{path}.{key}" if path else str(key))
        elif isinstance(value, (bool, int, float)) and not (
            isinstance(value, float) and math.isnan(value)
        ):
            found[_safe_key(path)] = float(value)

    walk(report, "")
    return found


def _flatten_strings(data: dict, prefix: str = "") -> dict[str, str]:
    flat: dict[str, str] = {}
    for key, value in data.items():
        path = f"{prefix}.{key}" if prefix else str(key)
        if isinstance(value, dict):
            flat.update(_flatten_strings(value, path))
        else:
            text = value if isinstance(value, str) else json.dumps(value)
            flat[_safe_key(path)] = text[:_MAX_PARAM]
    return flat


def _safe_key(key: str) -> str:
    return _UNSAFE_KEY.sub("_", key)


def _quote(name: str) -> str:
    return name.replace("'", "\\'")


def _version_row(version) -> dict[str, Any]:
    tags = dict(version.tags or {})
    created = datetime.fromtimestamp(version.creation_timestamp / 1000, tz=timezone.utc)
    return {
        "name": version.name,
        "version": str(version.version),
        "format": tags.get("edgekit.format"),
        "sha256": tags.get("edgekit.sha256"),
        "dataset": tags.get("edgekit.dataset"),
        "created_at": created.isoformat(timespec="seconds"),
    }
