"""The model registry on real MLflow (sqlite): versions, lookups, the conversion cache, races."""

from __future__ import annotations

import hashlib
import json
import math
import os
import struct
import subprocess
import sys
import textwrap
import uuid
import zipfile
from pathlib import Path

import pytest

from edgekit import cli
from edgekit.core import Artifact, TensorSpec
from edgekit.errors import EdgekitError, InvalidModelError, UnknownChoiceError
from edgekit.models import SourceModel
from edgekit.registry import Registry, parse_ref
from edgekit.registry.location import locate
from edgekit.registry.signatures import check_signature
from edgekit.registry.tracking import report_metrics


def unique(prefix: str = "m") -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def model_file(folder: Path, payload: bytes, name: str = "model.tflite") -> Path:
    """Not a real model: the registry only reads the FlatBuffer header (identifier, root offset)."""
    path = folder / name
    path.write_bytes(struct.pack("<I", 8) + b"TFL3" + payload.ljust(16, b"\0"))
    return path


def mlflow_client(registry: Registry):
    from mlflow import MlflowClient

    uri = locate(registry.uri).tracking_uri
    return MlflowClient(tracking_uri=uri, registry_uri=uri)


def runs_tagged(registry: Registry, key: str, value: str, kind: str) -> list:
    client = mlflow_client(registry)
    experiment = client.get_experiment_by_name("edgekit")
    return client.search_runs(
        [experiment.experiment_id],
        filter_string=f"tags.`{key}` = '{value}' and tags.`edgekit.kind` = '{kind}'",
    )


def stage_artifact(registry: Registry, recipe_key: str, payload: bytes) -> tuple[Path, Artifact]:
    """What a converter leaves behind: files and a manifest in a staging folder."""
    staged = registry.staging_dir()
    (staged / "model.tflite").write_bytes(payload)
    artifact = Artifact(
        path=staged,
        backend="tflite",
        recipe={"backend": "tflite", "quantization": "int8", "toolchain": {"tensorflow": "2.19.0"}},
        recipe_key=recipe_key,
        primary="model.tflite",
        inputs=[TensorSpec("x", (-1, 4), "int8", 0.5, -3)],
        outputs=[TensorSpec("y", (-1, 2), "int8", 0.25, 0)],
        files=["model.tflite"],
        sha256=hashlib.sha256(payload).hexdigest(),
    )
    artifact.save()
    return staged, artifact


def staging_leftovers(registry: Registry) -> list[str]:
    return os.listdir(locate(registry.uri).store_dir / "staging")


@pytest.fixture(scope="module")
def registry(session_registry) -> Registry:
    return Registry()


@pytest.fixture(scope="module")
def registered(registry, tmp_path_factory) -> tuple[str, list[SourceModel], list[bytes]]:
    """One model registered twice, with different files: versions 1 and 2."""
    folder = tmp_path_factory.mktemp("models")
    name = unique("mnist-cnn")
    payloads = [b"first" * 50, b"second" * 50]
    sources = [
        registry.register(model_file(folder, payloads[0], "a.tflite"), name, dataset="digits"),
        registry.register(model_file(folder, payloads[1], "b.tflite"), name),
    ]
    contents = [(folder / n).read_bytes() for n in ("a.tflite", "b.tflite")]
    return name, sources, contents


def test_default_registry_is_the_session_folder(registry, session_registry):
    assert registry.uri == str(Path(session_registry).resolve())


def test_register_twice_gives_versions_1_and_2(registered, registry):
    name, (first, second), contents = registered
    assert (first.version, second.version) == ("1", "2")
    assert first.format == second.format == "tflite"
    assert first.dataset == "digits" and second.dataset is None
    for source, content in zip((first, second), contents):
        assert source.path.read_bytes() == content
        assert source.sha256 == hashlib.sha256(content).hexdigest()
        # the copy lives in the registry, not where the user's file was
        assert Path(registry.uri) in source.path.parents


def test_resolve_by_name_and_version(registered, registry):
    name, (first, second), _ = registered
    assert registry.resolve(name) == second
    assert registry.resolve(f"{name}:latest") == second
    assert registry.resolve(f"{name}:1") == first
    assert registry.resolve(f"{name}:2").path == second.path


def test_resolve_unknown_lists_the_choices(registered, registry):
    name, _, _ = registered
    with pytest.raises(UnknownChoiceError) as unknown_name:
        registry.resolve(name + "-missing")
    assert name in unknown_name.value.choices
    with pytest.raises(UnknownChoiceError) as unknown_version:
        registry.resolve(f"{name}:7")
    assert unknown_version.value.choices == ["1", "2"]


@pytest.mark.parametrize("ref", ["", "has space", "a:b:c", "x:0", "x:-1", "../x"])
def test_bad_references_are_one_line_errors(ref):
    with pytest.raises(EdgekitError):
        parse_ref(ref)


def test_list_models_comes_from_mlflow(registered, registry):
    name, sources, _ = registered
    rows = registry.list_models(name)
    assert [(r["name"], r["version"], r["format"], r["sha256"], r["dataset"]) for r in rows] == [
        (name, s.version, "tflite", s.sha256, s.dataset) for s in sources
    ]
    assert all(r["created_at"].endswith("+00:00") for r in rows)
    # MLflow, not the local store, is what answers: ask it directly
    versions = mlflow_client(registry).search_model_versions(f"name = '{name}'")
    assert sorted(str(v.version) for v in versions) == ["1", "2"]
    assert {v.tags["edgekit.sha256"] for v in versions} == {s.sha256 for s in sources}
    assert {r["name"] for r in registry.list_models()} >= {name}


def test_a_version_missing_locally_is_fetched_from_mlflow(registered, registry, tmp_path, monkeypatch):
    """Another machine on the same server: same MLflow, empty local cache."""
    name, (first, second), contents = registered
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    remote = Registry(locate(registry.uri).tracking_uri)
    fetched = remote.resolve(f"{name}:1")
    assert tmp_path / "cache" in fetched.path.parents
    assert fetched.path.read_bytes() == contents[0]
    assert (fetched.sha256, fetched.format, fetched.dataset) == (first.sha256, "tflite", "digits")
    # a bare name asks MLflow which version is the latest
    assert remote.resolve(name).path.read_bytes() == contents[1]
    # now cached: served from the local store, same path
    assert remote.resolve(f"{name}:1").path == fetched.path


def test_model_files_deleted_from_the_store_are_fetched_again(registry, tmp_path):
    source = registry.register(model_file(tmp_path, b"deleted later"), unique("gone"))
    content = source.path.read_bytes()
    source.path.unlink()
    again = registry.resolve(source.ref)
    assert again == source and again.path.read_bytes() == content


def test_a_recipe_converted_elsewhere_keeps_one_run_and_its_bytes(
    registered, registry, tmp_path, monkeypatch
):
    """A second machine converts a recipe the server already has: it caches the server's files."""
    _, (_, source), _ = registered
    key = hashlib.sha256(b"shared-" + uuid.uuid4().bytes).hexdigest()
    first = registry.store_artifact(*stage_artifact(registry, key, b"made on machine 1"), source)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    remote = Registry(locate(registry.uri).tracking_uri)
    assert remote.find_artifact(key) is None
    stored = remote.store_artifact(*stage_artifact(remote, key, b"made on machine 2"), source)
    assert tmp_path / "cache" in stored.path.parents
    assert (stored.path / "model.tflite").read_bytes() == b"made on machine 1"
    assert stored.sha256 == first.sha256
    assert len(runs_tagged(registry, "edgekit.recipe_key", key, "convert")) == 1
    assert remote.find_artifact(key).path == stored.path


def test_register_copies_a_savedmodel_folder(registry, tmp_path):
    folder = tmp_path / "saved"
    (folder / "variables").mkdir(parents=True)
    (folder / "saved_model.pb").write_bytes(b"graph" * 20)
    (folder / "variables" / "variables.index").write_bytes(b"index")
    source = registry.register(folder, unique("saved"))
    assert source.format == "savedmodel"
    assert (source.path / "variables" / "variables.index").read_bytes() == b"index"
    assert registry.resolve(source.ref).sha256 == source.sha256


def bad_input(folder: Path, kind: str) -> Path:
    contents = {"empty.tflite": b"", "model.pkl": b"pickle"}
    if kind in contents:
        (folder / kind).write_bytes(contents[kind])
    return folder / kind


# absent file, empty file, unknown suffix, a folder that is not a SavedModel
@pytest.mark.parametrize("kind", ["absent.tflite", "empty.tflite", "model.pkl", ""])
def test_bad_input_registers_nothing(registry, tmp_path, kind):
    name = unique("bad")
    with pytest.raises(InvalidModelError):
        registry.register(bad_input(tmp_path, kind), name)
    with pytest.raises(EdgekitError):
        registry.list_models(name)
    assert not (locate(registry.uri).store_dir / "models" / name).exists()
    assert staging_leftovers(registry) == []


def corrupt_model(folder: Path, kind: str) -> Path:
    if kind == "tflite-garbage":
        (path := folder / "garbage.tflite").write_bytes(b"this is not a flatbuffer at all")
    elif kind == "tflite-truncated":  # identifier intact, root table beyond the end
        (path := folder / "cut.tflite").write_bytes(struct.pack("<I", 4096) + b"TFL3" + b"\0" * 100)
    elif kind == "keras-truncated":
        whole = folder / "whole.keras"
        with zipfile.ZipFile(whole, "w") as archive:
            archive.writestr("config.json", "{}" * 500)
            archive.writestr("model.weights.h5", b"\0" * 5000)
        (path := folder / "cut.keras").write_bytes(whole.read_bytes()[: whole.stat().st_size // 2])
    else:  # an .h5 that is not HDF5
        (path := folder / "model.h5").write_bytes(b"PK\x03\x04 but not hdf5" * 40)
    return path


@pytest.mark.parametrize("kind", ["tflite-garbage", "tflite-truncated", "keras-truncated", "h5-not-hdf5"])
def test_corrupt_files_are_refused_and_register_nothing(registry, tmp_path, kind):
    name = unique("corrupt")
    with pytest.raises(InvalidModelError, match="give the file as saved"):
        registry.register(corrupt_model(tmp_path, kind), name)
    assert not (locate(registry.uri).store_dir / "models" / name).exists()
    assert staging_leftovers(registry) == []


def test_real_models_pass_the_signature_checks(mlperf_dir):
    for model in sorted(mlperf_dir.glob("*.tflite")):
        check_signature(model, "tflite")


@pytest.mark.parametrize("name", ["has space", "slash/name", "-dash-first", "", "x" * 129, "a:1"])
def test_bad_names_are_refused_before_anything_is_written(registry, tmp_path, name):
    with pytest.raises(EdgekitError, match="not valid"):
        registry.register(model_file(tmp_path, b"x"), name)
    assert staging_leftovers(registry) == []


def test_dataset_paths_are_stored_absolute(registry, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    Path("calib.npz").write_bytes(b"npz")
    source = registry.register(model_file(tmp_path, b"d"), unique("ds"), dataset="calib.npz")
    assert source.dataset == str(tmp_path / "calib.npz")
    with pytest.raises(EdgekitError, match="not found"):
        registry.register(model_file(tmp_path, b"d"), unique("ds"), dataset="missing.npz")
    with pytest.raises(UnknownChoiceError, match="digits"):
        registry.register(model_file(tmp_path, b"d"), unique("ds"), dataset="digts")


def test_store_artifact_then_cache_hit(registered, registry):
    _, (_, source), _ = registered
    key = hashlib.sha256(b"recipe-" + uuid.uuid4().bytes).hexdigest()
    assert registry.find_artifact(key) is None
    staged, artifact = stage_artifact(registry, key, b"converted")
    stored = registry.store_artifact(staged, artifact, source)
    assert not staged.exists()
    assert stored.path != staged and (stored.path / "model.tflite").read_bytes() == b"converted"
    assert registry.find_artifact(key).path == stored.path
    (run,) = runs_tagged(registry, "edgekit.recipe_key", key, "convert")
    assert run.data.tags["edgekit.artifact_sha256"] == artifact.sha256
    assert run.data.tags["edgekit.model_version"] == source.version
    assert run.data.params["quantization"] == "int8"
    assert run.data.params["toolchain.tensorflow"] == "2.19.0"
    # storing the same recipe again keeps the first artifact and logs nothing
    again, artifact2 = stage_artifact(registry, key, b"converted again")
    assert registry.store_artifact(again, artifact2, source).path == stored.path
    assert (stored.path / "model.tflite").read_bytes() == b"converted"
    assert len(runs_tagged(registry, "edgekit.recipe_key", key, "convert")) == 1


def test_an_artifact_with_files_deleted_by_hand_is_converted_again(registered, registry):
    _, (_, source), _ = registered
    key = hashlib.sha256(b"damaged-" + uuid.uuid4().bytes).hexdigest()
    stored = registry.store_artifact(*stage_artifact(registry, key, b"original"), source)
    (stored.path / "model.tflite").unlink()
    assert registry.find_artifact(key) is None
    repaired = registry.store_artifact(*stage_artifact(registry, key, b"again"), source)
    assert (repaired.path / "model.tflite").read_bytes() == b"again"
    assert registry.find_artifact(key).path == stored.path


def test_cache_hit_in_a_fresh_process_needs_no_mlflow(registered, registry):
    name, (first, source), _ = registered
    key = hashlib.sha256(b"fresh-" + uuid.uuid4().bytes).hexdigest()
    stored = registry.store_artifact(*stage_artifact(registry, key, b"cached"), source)
    code = textwrap.dedent(
        f"""
        import json, sys, time
        started = time.perf_counter()
        from edgekit.registry import Registry
        registry = Registry()
        artifact = registry.find_artifact({key!r})
        elapsed = time.perf_counter() - started
        models = [str(registry.resolve(ref).path) for ref in ({name!r}, {name + ":1"!r})]
        print(json.dumps({{"path": str(artifact.path), "seconds": elapsed, "models": models,
                           "mlflow": "mlflow" in sys.modules}}))
        """
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    result = json.loads(out.stdout)
    assert result["path"] == str(stored.path)
    assert result["models"] == [str(source.path), str(first.path)]
    assert result["mlflow"] is False
    assert result["seconds"] < 1.0


RACER = textwrap.dedent(
    """
    import json, sys, time
    from pathlib import Path
    from edgekit.models import SourceModel
    from edgekit.registry import Registry
    sys.path.insert(0, sys.argv[4])
    from test_registry import stage_artifact
    registry = Registry()
    registry._tracking.prepare()  # both pay for `import mlflow` before the start line
    go = Path(sys.argv[1])
    while not go.exists():
        time.sleep(0.005)
    source = SourceModel(**json.loads(sys.argv[3]))
    stored = registry.store_artifact(*stage_artifact(registry, sys.argv[2], sys.argv[5].encode()), source)
    print(json.dumps({"path": str(stored.path),
                      "content": (stored.path / "model.tflite").read_text()}))
    """
)


def test_two_processes_storing_the_same_recipe_leave_one_artifact(registered, registry, tmp_path):
    _, (_, source), _ = registered
    key = hashlib.sha256(b"race-" + uuid.uuid4().bytes).hexdigest()
    go = tmp_path / "go"
    source_json = json.dumps({**source.__dict__, "path": str(source.path)})
    here = str(Path(__file__).parent)
    racers = [
        subprocess.Popen(
            [sys.executable, "-c", RACER, str(go), key, source_json, here, f"racer {i}"],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for i in range(2)
    ]
    go.touch()
    results = []
    for racer in racers:
        out, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err
        results.append(json.loads(out))
    assert results[0] == results[1]  # the loser got the winner's artifact
    assert results[0]["content"] in ("racer 0", "racer 1")
    artifacts = locate(registry.uri).store_dir / "artifacts"
    assert [p.name for p in artifacts.iterdir() if p.name == key] == [key]
    assert len(runs_tagged(registry, "edgekit.recipe_key", key, "convert")) == 1
    assert staging_leftovers(registry) == []


def test_two_processes_registering_in_a_new_registry_get_distinct_versions(tmp_path):
    """Both race to create the database and to number the version: neither may fail."""
    folder = tmp_path / "fresh-registry"
    model = model_file(tmp_path, b"same bytes")
    go = tmp_path / "go"
    code = textwrap.dedent(
        """
        import sys, time
        from pathlib import Path
        import mlflow  # paid before the start line, so the race is on the database
        from edgekit.registry import Registry
        registry = Registry(sys.argv[4])
        while not Path(sys.argv[1]).exists():
            time.sleep(0.005)
        print(registry.register(Path(sys.argv[2]), sys.argv[3]).version)
        """
    )
    racers = [
        subprocess.Popen([sys.executable, "-c", code, str(go), str(model), "raced", str(folder)],
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(2)
    ]
    go.touch()
    versions = []
    for racer in racers:
        out, err = racer.communicate(timeout=120)
        assert racer.returncode == 0, err
        versions.append(out.strip())
    assert sorted(versions) == ["1", "2"]
    assert [r["version"] for r in Registry(str(folder)).list_models("raced")] == ["1", "2"]


def test_a_conversion_that_fails_leaves_nothing(registered, registry):
    _, (_, source), _ = registered
    key = hashlib.sha256(b"fail-" + uuid.uuid4().bytes).hexdigest()
    # the converter fails before storing: the caller drops its staging folder
    staged = registry.staging_dir()
    (staged / "half.tflite").write_bytes(b"half")
    try:
        raise RuntimeError("converter crashed")
    except RuntimeError:
        import shutil

        shutil.rmtree(staged)
    assert registry.find_artifact(key) is None
    # storing fails half-way (a file MLflow cannot copy): no artifact, no run, no staging
    staged, artifact = stage_artifact(registry, key, b"ok")
    (staged / "dangling.bin").symlink_to(staged / "nowhere")
    with pytest.raises(Exception):
        registry.store_artifact(staged, artifact, source)
    assert registry.find_artifact(key) is None
    assert not (locate(registry.uri).store_dir / "artifacts" / key).exists()
    assert runs_tagged(registry, "edgekit.recipe_key", key, "convert") == []
    assert staging_leftovers(registry) == []
    # and the key is not poisoned: a good conversion stores normally
    stored = registry.store_artifact(*stage_artifact(registry, key, b"ok"), source)
    assert registry.find_artifact(key).path == stored.path


def test_a_benchmark_of_an_artifact_from_elsewhere_links_its_conversion(
    registered, registry, tmp_path, monkeypatch
):
    _, (_, source), _ = registered
    key = hashlib.sha256(b"elsewhere-" + uuid.uuid4().bytes).hexdigest()
    artifact = registry.store_artifact(*stage_artifact(registry, key, b"elsewhere"), source)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    other = Registry(locate(registry.uri).tracking_uri)  # its store has never seen the artifact
    run_id = other.log_benchmark({"latency_ms": {"p50": 3.0}}, None, artifact)
    (conversion,) = runs_tagged(registry, "edgekit.recipe_key", key, "convert")
    tags = mlflow_client(registry).get_run(run_id).data.tags
    assert tags["edgekit.conversion_run_id"] == conversion.info.run_id
    assert "edgekit.model_version" not in tags


def test_log_benchmark_writes_metrics_mlflow_returns(registered, registry):
    _, (_, source), _ = registered
    key = hashlib.sha256(b"bench-" + uuid.uuid4().bytes).hexdigest()
    artifact = registry.store_artifact(*stage_artifact(registry, key, b"benched"), source)
    report = {
        "schema": "edgekit.report/1",
        "latency_ms": {"p50": 1.25, "p90": 2.5, "count": 100, "samples": [1.0, 1.5, 2.0]},
        "fidelity": {"bit_exact": True, "max_abs_err": 0.0},
        "accuracy": {"metric": "top1", "value": 0.875},
        "target": {"name": "host-cpu"},
    }
    run_id = registry.log_benchmark(report, source, artifact)
    run = mlflow_client(registry).get_run(run_id)
    assert run.data.metrics == {
        "latency_ms.p50": 1.25,
        "latency_ms.p90": 2.5,
        "latency_ms.count": 100.0,
        "fidelity.bit_exact": 1.0,
        "fidelity.max_abs_err": 0.0,
        "accuracy.value": 0.875,
    }
    tags = run.data.tags
    assert tags["edgekit.model"] == source.name and tags["edgekit.model_version"] == "2"
    assert tags["edgekit.artifact_sha256"] == artifact.sha256
    (conversion,) = runs_tagged(registry, "edgekit.recipe_key", key, "convert")
    assert tags["edgekit.conversion_run_id"] == conversion.info.run_id
    import mlflow

    folder = mlflow.artifacts.download_artifacts(
        run_id=run_id, artifact_path="report.json", tracking_uri=locate(registry.uri).tracking_uri
    )
    assert json.loads(Path(folder).read_text()) == report


def test_report_metrics_flattens_numeric_leaves():
    report = {
        "a": {"b": 1, "c": {"d": 2.5}, "samples": [9, 9]},
        "ok": False,
        "name": "x",
        "missing": None,
        "nan": math.nan,
        "list": [1, 2],
        "odd key!": 3,
    }
    assert report_metrics(report) == {"a.b": 1.0, "a.c.d": 2.5, "ok": 0.0, "odd key_": 3.0}


def test_an_empty_registry_answers_without_creating_anything(tmp_path):
    folder = tmp_path / "never-used"
    empty = Registry(str(folder))
    assert empty.list_models() == []
    with pytest.raises(EdgekitError, match="empty"):
        empty.resolve("anything")
    assert empty.find_artifact("0" * 64) is None
    assert not (folder / "mlflow.db").exists()


def test_locations(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    folder = locate(str(tmp_path / "reg"))
    assert folder.embedded and folder.tracking_uri == f"sqlite:///{tmp_path}/reg/mlflow.db"
    assert locate((tmp_path / "reg").as_uri()) == folder
    server = locate("http://mlflow.example:5000")
    other = locate("http://mlflow.example:5001")
    assert not server.embedded and server.tracking_uri == "http://mlflow.example:5000"
    assert tmp_path / "cache" in server.store_dir.parents and server.store_dir != other.store_dir
    assert locate("http://mlflow.example:5000/") == server
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("EDGEKIT_REGISTRY")
    assert locate(None).store_dir == tmp_path / ".edgekit" / "store"


def run_cli(args: list[str], capsys) -> tuple[int, str, str]:
    try:
        cli.main(args)
        code = 0
    except SystemExit as exc:
        code = exc.code
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_cli_register_and_models(registry, tmp_path, capsys):
    name = unique("cli")
    model = model_file(tmp_path, b"cli model")
    code, out, _ = run_cli(["register", str(model), "--name", name, "--dataset", "digits"], capsys)
    digest = hashlib.sha256(model.read_bytes()).hexdigest()
    assert code == 0
    assert out == f"registered {name} version 1 (tflite, sha256 {digest[:8]}...)\n"
    code, out, _ = run_cli(["models", name], capsys)
    header, row = out.splitlines()
    assert header.split() == ["NAME", "VERSION", "FORMAT", "DATASET", "SHA256", "CREATED"]
    assert row.split()[:5] == [name, "1", "tflite", "digits", digest[:12]]


@pytest.mark.parametrize(
    "args, message",
    [
        (["register", "{model}", "--name", "bad name"], "not valid"),
        (["register", "{missing}", "--name", "{name}"], "not found"),
        (["models", "{name}"], "{name}"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, args, message):
    name = unique("clierr")
    fill = {"model": str(model_file(tmp_path, b"m")), "missing": str(tmp_path / "no.tflite"), "name": name}
    code, out, err = run_cli([a.format(**fill) for a in args], capsys)
    assert code == 1 and out == ""
    assert len(err.strip().splitlines()) == 1 and message.format(**fill) in err


@pytest.fixture
def mlflow_server(tmp_path):
    """A real MLflow tracking server on localhost, with its own database and artifact store."""
    import signal
    import socket
    import time
    import urllib.request

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "mlflow", "server", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--backend-store-uri", f"sqlite:///{tmp_path / 'server.db'}",
         "--artifacts-destination", str(tmp_path / "server-artifacts")],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 90
        while True:
            try:
                urllib.request.urlopen(f"{url}/health", timeout=2)
                break
            except OSError:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.skip("could not start an MLflow server on localhost")
                time.sleep(0.5)
        yield url
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


@pytest.mark.slow
def test_a_shared_mlflow_server_serves_two_machines(mlflow_server, tmp_path, monkeypatch):
    """Machine 1 registers over HTTP; machine 2 (another cache) resolves and gets the same bytes."""
    model = model_file(tmp_path, b"served")
    machine1 = {**os.environ, "XDG_CACHE_HOME": str(tmp_path / "one"), "EDGEKIT_REGISTRY": mlflow_server}
    out = subprocess.run(
        [sys.executable, "-m", "edgekit", "register", str(model), "--name", "served"],
        env=machine1, capture_output=True, text=True, check=True,
    )
    # MLflow's own chatter (run URLs, progress bars) stays out of our output
    assert out.stdout.startswith("registered served version 1 (tflite, sha256 ")
    assert len(out.stdout.splitlines()) == 1
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "two"))
    machine2 = Registry(mlflow_server)
    fetched = machine2.resolve("served")
    assert tmp_path / "two" in fetched.path.parents
    assert fetched.version == "1" and fetched.path.read_bytes() == model.read_bytes()
    assert [r["version"] for r in machine2.list_models("served")] == ["1"]


def test_a_process_killed_mid_conversion_leaves_nothing_behind(tmp_path):
    import subprocess
    import sys

    from edgekit.registry.store import LocalStore

    store = LocalStore(tmp_path / "store")
    # a process that stages a folder and is killed before it can publish or discard it
    child = subprocess.Popen(
        [sys.executable, "-c", "import sys, time; from edgekit.registry.store import LocalStore; "
         f"print(LocalStore({str(tmp_path / 'store')!r}).staging_dir(), flush=True); time.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    abandoned = child.stdout.readline().strip()
    mine = store.staging_dir()  # the owner is alive: its folder stays
    assert sorted(os.listdir(tmp_path / "store" / "staging")) == sorted([os.path.basename(abandoned), mine.name])
    child.kill()
    child.wait()
    child.stdout.close()
    store.staging_dir()  # the next one to stage clears what the dead owner left
    assert os.path.basename(abandoned) not in os.listdir(tmp_path / "store" / "staging")
    assert mine.is_dir(), "a living owner's folder is never taken"
