"""Memory in reports: the model's own cost on a host, the board's own figures on a board."""

from __future__ import annotations

import resource

import numpy as np
import pytest

from edgekit.bench.memory import MemoryWindow
from edgekit.bench.report import problems


def test_the_window_sees_what_is_allocated_inside_it_and_not_before():
    before = np.ones(64 * 2**20 // 8)  # 64 MiB touched before the window: not the model's
    window = MemoryWindow.open()
    inside = np.ones(32 * 2**20 // 8)  # 32 MiB touched inside it
    del inside  # freed again: a peak, not an end state, is what a deployment must provision
    facts = window.close()
    assert before.sum() > 0
    assert facts["model_rss_basis"] == "peak"
    assert 30 * 2**20 <= facts["model_rss_bytes"] < 40 * 2**20


def test_a_host_report_gives_the_model_megabytes_not_the_harness_gigabyte(digits_model, tmp_path):
    pytest.importorskip("ai_edge_litert")
    from edgekit.bench.harness import BenchSettings
    from edgekit.bench.run import bench

    report = bench(str(digits_model), "host-cpu", backend="tflite", quantization="int8", calibration="digits",
                   settings=BenchSettings(runs=20, warmup=2, dataset="digits", limit=50), log=False)
    memory = report["memory"]
    process_peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024  # TensorFlow is loaded here
    assert memory["scope"] == "host-process" and "peak_rss_bytes" not in memory
    assert 0 < memory["model_rss_bytes"] < 32 * 2**20
    assert process_peak > 10 * memory["model_rss_bytes"]
    assert not problems(report)


def test_reports_say_where_memory_was_measured_and_old_ones_stay_readable():
    base = {"schema": "edgekit.report/1", "latency_ms": {}, "target": {"kind": "host"}}
    old = base | {"memory": {"peak_rss_bytes": 1 << 30}}
    assert not [p for p in problems(old) if p.startswith("memory")]
    assert "memory: missing 'scope'" in problems(base | {"memory": {}})
    board = base | {"target": {"kind": "mcu"}, "memory": {"scope": "device", "peak_rss_bytes": 1 << 30}}
    assert "memory: a device report carries this host's 'peak_rss_bytes'" in problems(board)
    assert any("scope 'moon'" in p for p in problems(base | {"memory": {"scope": "moon"}}))


def test_the_demo_says_which_way_int8_moved():
    from edgekit.demo import accuracy_sentence

    assert accuracy_sentence(0.9610, 0.9620).endswith("int8 gains 0.10 points")
    assert accuracy_sentence(0.9620, 0.9610).endswith("int8 loses 0.10 points")
    assert accuracy_sentence(0.9610, 0.9610).endswith("the same top-1")
