"""The benchmark matrix: suite checks, expansion, the local executor, and a real local Ray cluster.

The Ray tests start a head (no CPUs) and two workers of one CPU each with
Ray's own `ray.cluster_utils.Cluster`, so every node is on 127.0.0.1 and the
dashboard is off. The emulated Cortex-M boards stand in for attached
devices: a worker advertises `device:mps2-an386` as `edgekit agent` would.
"""

from __future__ import annotations

import io
import os
import shutil
import threading
import time
from pathlib import Path

import numpy as np
import pytest
import yaml

from clitools import run_cli_here

TOOLS = ("arm-none-eabi-gcc", "cmake", "qemu-system-arm")
needs_emulator = pytest.mark.skipif(
    any(shutil.which(t) is None for t in TOOLS), reason=f"needs {', '.join(TOOLS)} to build and emulate firmware"
)


# ---------------------------------------------------------------- fixtures


def _dense_model(path: Path, seed: int) -> None:
    """A tiny seeded classifier (8 features -> 4 classes): converting it takes a moment."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    from edgekit.sources.tensorflow import load_tensorflow

    load_tensorflow()
    import tf_keras as keras

    keras.utils.set_random_seed(seed)
    model = keras.Sequential(
        [keras.layers.Input((8,), batch_size=1), keras.layers.Dense(4), keras.layers.Softmax()]
    )
    rng = np.random.default_rng(seed)
    model.set_weights([(rng.standard_normal(w.shape) * 0.5).astype(np.float32) for w in model.get_weights()])
    model.save(path)


@pytest.fixture(scope="module")
def lab(tmp_path_factory) -> Path:
    """A folder with three tiny models and a small labelled data set."""
    folder = tmp_path_factory.mktemp("lab")
    for seed in range(3):
        _dense_model(folder / f"m{seed}.keras", seed)
    rng = np.random.default_rng(5)
    np.savez(folder / "data.npz", x=rng.uniform(-1, 1, (12, 8)).astype(np.float32), y=rng.integers(0, 4, 12))
    return folder


def write_suite(folder: Path, name: str, **fields) -> Path:
    suite = {
        "models": ["m0.keras"],
        "targets": ["host-cpu"],
        "backends": ["aot"],
        "quantizations": ["none", "int8"],
        "calibration": "data.npz",
        "bench": {"runs": 2, "warmup": 1, "dataset": "data.npz", "limit": 2},
    } | fields
    path = folder / name
    path.write_text(yaml.safe_dump(suite))
    return path


def cell_runs(registry, ids) -> list[dict]:
    from edgekit.farm.matrix import CELL_TAG

    return [run for run in registry.benchmarks_tagged(CELL_TAG) if run["tags"][CELL_TAG] in set(ids)]


# ---------------------------------------------------------------- suite checks


@pytest.mark.parametrize(
    "fields, expected",
    [
        ({"quantisations": ["int8"]}, "key 'quantisations': unknown (did you mean 'quantizations'?)"),
        ({"targets": ["mps2-an368"]}, "targets[0]: unknown target 'mps2-an368' (did you mean 'mps2-an386'?)"),
        ({"models": ["m0.keras", "m9.keras"]}, "models[1]: model file not found"),
        ({"bench": {"run": 3}}, "bench.run: unknown key (did you mean 'runs'?)"),
        ({"backends": ["aott"]}, "backends[0]: unknown backend 'aott' (did you mean 'aot'?)"),
        ({"retries": -1}, "retries: must be an integer >= 0"),
    ],
)
def test_a_bad_suite_is_one_clear_line(lab, capsys, fields, expected):
    suite = write_suite(lab, "bad.yaml", **fields)
    code, out, err = run_cli_here(capsys, "bench", "--matrix", str(suite))
    assert code == 1, (out, err)
    assert expected in err
    assert len(err.strip().splitlines()) == 1, err
    assert str(suite) in err


def test_an_unknown_registry_model_names_the_nearest(lab):
    from edgekit.farm import suite as suites
    from edgekit.pipeline import open_registry

    registry = open_registry()
    registry.register(lab / "m0.keras", "keyword-spotter")
    path = write_suite(lab, "names.yaml", models=["keyword-spoter"])
    with pytest.raises(suites.SuiteError, match=r"models\[0\]: unknown model 'keyword-spoter' \(did you mean 'keyword-spotter'\?\)"):
        suites.load(path, registry.uri)


def test_matrix_flags_do_not_mix_with_single_bench_flags(lab, capsys):
    suite = write_suite(lab, "mix.yaml")
    code, _, err = run_cli_here(capsys, "bench", "--matrix", str(suite), "--runs", "5")
    assert code == 2 and "--runs" in err
    code, _, err = run_cli_here(capsys, "bench", "m0", "--target", "host-cpu", "--resume")
    assert code == 2 and "--matrix" in err


def test_expansion_drops_impossible_cells_with_the_placement_reason(lab):
    from edgekit.farm import suite as suites
    from edgekit.farm.matrix import expand

    path = write_suite(
        lab, "expand.yaml", targets=["host-cpu", "mps2-an386", "nucleo-l4r5zi"], backends=["aot", "tflite"],
        quantizations=["int8"],
    )
    suite = suites.load(path)
    cells, dropped = expand(suite, None)  # the local executor: everything runs here
    assert sorted((c.target, c.backend) for c in cells) == [("host-cpu", "aot"), ("host-cpu", "tflite"), ("mps2-an386", "aot")]
    reasons = {(d.target, d.backend): d.reason for d in dropped}
    assert "does not support backend 'tflite'" in reasons[("mps2-an386", "tflite")]
    assert "give --port" in reasons[("nucleo-l4r5zi", "aot")]
    # on Ray the board is found where an agent advertises it: the cell stays, pinned to that device
    cells, dropped = expand(suite, None, advertised=set())
    pinned = [c for c in cells if c.target == "nucleo-l4r5zi"]
    assert len(pinned) == 1 and pinned[0].needs_device
    assert [c.needs_device for c in cells if c.target != "nucleo-l4r5zi"] == [False, False, False]
    # identity: same recipe, target and options, same id; other options, another id
    again, _ = expand(suite, None, advertised=set())
    assert [c.id for c in again] == [c.id for c in cells]
    suite.bench = suites.BenchOptions(runs=3)
    other, _ = expand(suite, None, advertised=set())
    assert not {c.id for c in other} & {c.id for c in cells}


def test_agent_device_arguments(capsys):
    from edgekit.farm import devices

    args = devices.node_args(["nucleo-l4r5zi:/dev/ttyACM0", "nucleo-l4r5zi:/dev/ttyACM1", "mps2-an386"], 2)
    assert args["resources"] == {"device:nucleo-l4r5zi": 2, "device:mps2-an386": 1}
    code, out, err = run_cli_here(capsys, "agent", "--ray", "127.0.0.1:6379", "--device", "nucleo-l4r5zi", "--dry-run")
    assert code == 1 and "give nucleo-l4r5zi:/dev/ttyACM0" in err
    code, out, err = run_cli_here(
        capsys, "agent", "--ray", "127.0.0.1:6379", "--device", "nucleo-l4r5zi:/dev/ttyACM0", "--num-cpus", "1", "--dry-run"
    )
    assert code == 0, err
    assert "--resources '{\"device:nucleo-l4r5zi\": 1}'" in out and "--num-cpus 1" in out
    assert 'EDGEKIT_FARM_DEVICES={"nucleo-l4r5zi": ["/dev/ttyACM0"]}' in out


def test_a_board_is_held_by_one_cell_at_a_time(monkeypatch):
    from edgekit import targets
    from edgekit.errors import EdgekitError
    from edgekit.farm import devices

    monkeypatch.setenv(devices.ENV, '{"nucleo-l4r5zi": ["socket://127.0.0.1:1"], "mps2-an386": [""]}')
    board = targets.get("nucleo-l4r5zi")
    with devices.claim(board) as where:
        assert where == "socket://127.0.0.1:1"
        with pytest.raises(EdgekitError, match="every nucleo-l4r5zi on this node is busy"):
            with devices.claim(board):
                pass
    with devices.claim(board) as where:  # released
        assert where == "socket://127.0.0.1:1"
    # an emulated board: every cell starts its own
    emulated = targets.get("mps2-an386")
    with devices.claim(emulated) as first, devices.claim(emulated) as second:
        assert first == second == ""


# ---------------------------------------------------------------- local executor


def test_local_matrix_runs_every_cell_once_and_resume_runs_none(lab, capsys):
    from edgekit.farm.matrix import expand
    from edgekit.farm import suite as suites
    from edgekit.pipeline import open_registry

    suite = write_suite(lab, "local.yaml", html="local.html", bench={"runs": 3, "warmup": 1, "limit": 2})
    code, out, err = run_cli_here(capsys, "bench", "--matrix", str(suite))
    assert code == 0, err
    assert out.count("] done ") == 2
    assert "2 cells: 2 done" in out
    assert "host-cpu aot none (baseline)" in out and "host-cpu aot int8" in out  # the compare table
    assert (lab / "local.html").read_text().startswith("<!DOCTYPE html>")

    registry = open_registry()
    cells, _ = expand(suites.load(suite), registry.uri)
    runs = cell_runs(registry, [c.id for c in cells])
    assert sorted(r["tags"]["edgekit.cell"] for r in runs) == sorted(c.id for c in cells)

    code, out, err = run_cli_here(capsys, "bench", "--matrix", str(suite), "--resume")
    assert code == 0, err
    assert out.count("skipped") == 2 and "] done " not in out
    assert len(cell_runs(registry, [c.id for c in cells])) == 2


# ---------------------------------------------------------------- a Ray cluster


@pytest.fixture(scope="module")
def cluster():
    """A head with no CPUs and two one-CPU workers, all on 127.0.0.1, dashboard off."""
    # read when Ray is imported: without it Ray on Linux puts every node on the interface address
    os.environ["RAY_ENABLE_WINDOWS_OR_OSX_CLUSTER"] = "0"
    ray = pytest.importorskip("ray", reason="ray is not installed (pip install 'edgekit[farm]')")
    pytest.importorskip("psutil", reason="psutil (a Ray dependency) is not installed")
    from ray.cluster_utils import Cluster

    from edgekit.farm import devices

    loopback = {"node_ip_address": "127.0.0.1"}
    cluster = Cluster(initialize_head=True, head_node_args={"num_cpus": 0, "include_dashboard": False, **loopback})
    # the driver joins through the head's raylet (the only one yet): killing a worker must not cut it off
    ray.init(address=cluster.address, log_to_driver=False)
    # worker A has both emulated boards "attached", worker B only the M7: A can finish B's work
    a = cluster.add_node(**devices.node_args(["mps2-an386", "mps2-an500"], 1), **loopback)
    b = cluster.add_node(**devices.node_args(["mps2-an500"], 1), **loopback)
    cluster.wait_for_nodes()
    assert {node.node_ip_address for node in cluster.list_all_nodes()} == {"127.0.0.1"}
    try:
        yield cluster, a, b
    finally:
        ray.shutdown()
        cluster.shutdown()


class _KillHalfway(io.StringIO):
    """The progress stream: once `after` cells are done, removes a worker (no goodbye) mid-cell.

    It waits until one of the node's worker processes is running a cell (Ray
    titles a busy worker `ray::run_json`), so the worker dies with a cell in hand.
    """

    def __init__(self, cluster, node, after: int):
        super().__init__()
        self.cluster, self.node, self.after = cluster, node, after
        self.killed = threading.Event()
        self._thread = None

    def write(self, text):
        if "] done " in text and self.getvalue().count("] done ") + 1 >= self.after and self._thread is None:
            self._thread = threading.Thread(target=self._kill, daemon=True)
            self._thread.start()
        return super().write(text)

    def _busy_worker(self):
        import psutil

        raylet = psutil.Process(self.node.all_processes["raylet"][0].process.pid)
        for child in raylet.children(recursive=True):
            try:
                if "run_json" in " ".join(child.cmdline()):
                    return child
            except psutil.Error:
                continue
        return None

    def _freeze_mid_cell(self) -> bool:
        """Stop a worker that is running a cell, then kill it: the cell dies in its hands."""
        import psutil

        worker = self._busy_worker()
        if worker is None:
            return False
        try:
            worker.suspend()
            if "run_json" in " ".join(worker.cmdline()):
                worker.kill()  # a stopped process only dies to SIGKILL, and removing the node waits for it
                return True
            worker.resume()  # it finished between the look and the stop: wait for the next cell
        except psutil.Error:
            pass
        return False

    def _kill(self):
        deadline = time.monotonic() + 60
        while not self._freeze_mid_cell() and time.monotonic() < deadline:
            time.sleep(0.05)
        self.cluster.remove_node(self.node, allow_graceful=False)
        self.killed.set()


@needs_emulator
def test_ray_matrix_survives_a_dead_worker_and_resume_does_nothing(lab, cluster):
    from edgekit.farm import suite as suites
    from edgekit.farm.executors import RayExecutor
    from edgekit.farm.matrix import expand
    from edgekit.farm.run import run_matrix
    from edgekit.pipeline import open_registry

    head, a, b = cluster
    registry = open_registry()
    suite = write_suite(
        lab, "farm.yaml", models=["m0.keras", "m1.keras", "m2.keras"], targets=["host-cpu", "mps2-an386", "mps2-an500"],
        retries=2,
    )
    stream = _KillHalfway(head, b, after=9)
    started = time.monotonic()
    result = run_matrix(suite, RayExecutor(registry.uri, head.address), registry_uri=registry.uri, stream=stream)
    elapsed = time.monotonic() - started
    log = stream.getvalue()
    assert stream.killed.is_set(), log
    assert "retry" in log or "lost after logging" in log, log  # the worker died holding a cell
    assert result.count("done") == 18 and not result.failed, log
    cells, _ = expand(suites.load(suite), registry.uri, advertised={"mps2-an386", "mps2-an500"})
    runs = cell_runs(registry, [c.id for c in cells])
    ids = [r["tags"]["edgekit.cell"] for r in runs]
    assert len(ids) == 18 and set(ids) == {c.id for c in cells}, log  # every cell once, none twice
    assert all(r["status"] == "FINISHED" for r in runs)
    # the M4 board is only on worker A: its cells ran there, pinned by the device resource
    m4_nodes = {r.node.rsplit("/", 1)[-1] for r in result.results if r.cell.target == "mps2-an386" and r.node}
    assert m4_nodes == {a.node_id}, log
    print(f"18 cells with a worker killed after 9 in {elapsed:.0f} s\n{log}")

    stream = io.StringIO()
    result = run_matrix(suite, RayExecutor(registry.uri, head.address), resume=True, registry_uri=registry.uri, stream=stream)
    assert result.count("skipped") == 18 and result.count("done") == 0, stream.getvalue()
    assert len(cell_runs(registry, [c.id for c in cells])) == 18


def test_a_board_no_node_has_is_unschedulable_within_the_bound(lab, cluster):
    from edgekit.farm.executors import RayExecutor
    from edgekit.farm.run import run_matrix
    from edgekit.pipeline import open_registry

    head, _, _ = cluster
    registry = open_registry()
    suite = write_suite(lab, "nowhere.yaml", targets=["nucleo-l4r5zi"], quantizations=["int8"], unschedulable_after=3)
    stream = io.StringIO()
    started = time.monotonic()
    result = run_matrix(suite, RayExecutor(registry.uri, head.address), registry_uri=registry.uri, stream=stream)
    elapsed = time.monotonic() - started
    assert [r.status for r in result.results] == ["unschedulable"], stream.getvalue()
    assert "no node advertises device:nucleo-l4r5zi" in result.results[0].reason
    assert elapsed < 30, elapsed
