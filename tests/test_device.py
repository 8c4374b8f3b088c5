"""The benchmark protocol against real firmware on the emulated Cortex-M4 (QEMU).

The stand-in bundle (test_firmware_standin.py) is built once per module;
each test boots its own emulated board. A TCP relay between the host and
QEMU damages chosen frames to show the CRC catches it and the resend
completes the run with nothing lost.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import threading
import time
import zlib

import numpy as np
import pytest

from edgekit import targets
from edgekit.core import RunOptions
from edgekit.device.protocol import Device, DeviceError, frame, parse_reply
from edgekit.device.qemu import QemuBoard
from edgekit.device.runner import DeviceRunner, open_runner
from edgekit.firmware import built_firmware as firmware_for
from edgekit.device.serial_link import SerialLink
from edgekit.errors import EdgekitError
from test_firmware_standin import FAULT, HANG, make_artifact, reference, sample

needs_qemu = pytest.mark.skipif(
    not all(shutil.which(t) for t in ("qemu-system-arm", "arm-none-eabi-gcc", "cmake")),
    reason="qemu-system-arm, arm-none-eabi-gcc and cmake are needed for the emulated board",
)


# ---------------------------------------------------------------- framing, no board


def test_frames_carry_zlib_crc32_of_their_text():
    line = frame("7", "db 0 00ff")
    text, crc = line[:-11], line[-9:-1]
    assert line[-11:-9] == b" *"
    assert text == b"7 db 0 00ff" and int(crc, 16) == zlib.crc32(text) and line.endswith(b"\n")


def test_parse_reply_accepts_a_good_line_and_rejects_any_single_damage():
    good = frame("12", "ok infer n=1 w=0 ticks=40")
    reply = parse_reply(good)
    assert (reply.seq, reply.status, reply.fields["ticks"]) == ("12", "ok", "40")
    for i in range(len(good) - 1):
        flipped = good[:i] + bytes([good[i] ^ 0x04]) + good[i + 1 :]
        dropped = good[:i] + good[i + 1 :]
        assert parse_reply(flipped) is None, f"flip at {i} passed the CRC"
        assert parse_reply(dropped) is None, f"drop at {i} passed the CRC"


# ---------------------------------------------------------------- on the emulated board


@pytest.fixture(scope="module")
def an386():
    return targets.get("mps2-an386")


@pytest.fixture(scope="module")
def standin(tmp_path_factory, an386):
    if not all(shutil.which(t) for t in ("qemu-system-arm", "arm-none-eabi-gcc", "cmake")):
        pytest.skip("qemu-system-arm, arm-none-eabi-gcc and cmake are needed for the emulated board")
    artifact = make_artifact(tmp_path_factory.mktemp("device") / "artifact")
    firmware_for(artifact, an386)  # build once; every runner below reuses it
    return artifact


@needs_qemu
def test_outputs_on_the_board_equal_the_host_reference(standin, an386):
    with open_runner(standin, an386, RunOptions()) as runner:
        assert runner.name == "device-qemu"
        for seed in range(3):
            x = sample(seed)
            y = runner.infer({"x": x})["y"]
            np.testing.assert_array_equal(y, reference(x))
        timing = runner.device_timing()
        assert runner.device.resends == 0
    # 60,000 multiply-accumulates cost at least one instruction each, and not twenty
    assert 60_000 <= timing["instructions"] <= 1_200_000
    assert timing["ms"] == pytest.approx(timing["instructions"] / 25e6 * 1e3)
    assert runner.board.problem() is not None, "closing the runner kills QEMU"


@needs_qemu
@pytest.mark.slow
def test_instruction_count_is_identical_across_boots(standin, an386):
    counts = []
    for _ in range(2):
        with open_runner(standin, an386, RunOptions()) as runner:
            runner.infer({"x": sample(5)})
            counts.append(runner.device_timing()["instructions"])
            result = runner.measure({"x": sample(5)}, count=3, warmup=1)
            assert result.min_ticks == result.max_ticks  # the timer restarts for every run
    assert counts[0] == counts[1]


@needs_qemu
def test_a_batch_runs_sample_by_sample(standin, an386):
    # a dynamic batch: the same artifact seen as taking (-1, 300)
    with open_runner(standin, an386, RunOptions()) as runner:
        runner.inputs = [type(s)(s.name, (-1, s.shape[1]), s.dtype, s.scale, s.zero_point) for s in runner.inputs]
        runner.outputs = [type(s)(s.name, (-1, s.shape[1]), s.dtype, s.scale, s.zero_point) for s in runner.outputs]
        x = np.concatenate([sample(1), sample(2)])
        y = runner.infer({"x": x})["y"]
    np.testing.assert_array_equal(y, np.concatenate([reference(sample(1)), reference(sample(2))]))


class Relay:
    """host <-> relay <-> QEMU, forwarding whole lines; `damage(direction, index, line)` may alter one.

    Lines are counted per direction, empty lines (the host's leading newline) not counted.
    """

    def __init__(self, qemu_port: int, damage):
        self.damage = damage
        self.damaged = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self.url = f"socket://127.0.0.1:{self._server.getsockname()[1]}"
        self._qemu_port = qemu_port
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        host, _ = self._server.accept()
        qemu = socket.create_connection(("127.0.0.1", self._qemu_port))
        for sock in (host, qemu):
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        threading.Thread(target=self._pump, args=(host, qemu, "to_device"), daemon=True).start()
        threading.Thread(target=self._pump, args=(qemu, host, "to_host"), daemon=True).start()

    def _pump(self, src, dst, direction):
        pending, index = b"", 0
        while True:
            try:
                data = src.recv(4096)
            except OSError:
                return
            if not data:
                dst.close()
                return
            pending += data
            while b"\n" in pending:
                line, pending = pending.split(b"\n", 1)
                line += b"\n"
                if line.strip():
                    changed = self.damage(direction, index, line)
                    if changed != line:
                        self.damaged.append((direction, index, line, changed))
                    line = changed
                    index += 1
                dst.sendall(line)


def flip(line: bytes, at: int) -> bytes:
    return line[:at] + bytes([line[at] ^ 0x01]) + line[at + 1 :]


def drop(line: bytes, at: int) -> bytes:
    return line[:at] + line[at + 1 :]


DAMAGE = {
    # the first db payload frame (frame 0 is name, 1 is db load)
    "flip a byte of an input payload": lambda d, i, line: flip(line, 20) if (d, i) == ("to_device", 2) else line,
    "drop a byte of an input payload": lambda d, i, line: drop(line, 30) if (d, i) == ("to_device", 3) else line,
    # the line end lost: the device sees this frame glued to the next
    "drop the newline of a frame": lambda d, i, line: line[:-1] if (d, i) == ("to_device", 4) else line,
    # replies: 0 is the boot banner, 1 name, 2 db load, 3-5 db, 6 infer, 7-8 results
    "drop a byte of the infer reply": lambda d, i, line: drop(line, 12) if (d, i) == ("to_host", 6) else line,
    "flip a byte of an output payload": lambda d, i, line: flip(line, 40) if (d, i) == ("to_host", 7) else line,
}


@needs_qemu
@pytest.mark.parametrize("case", list(DAMAGE))
def test_damage_on_the_wire_is_caught_by_the_crc_and_resent(standin, an386, case):
    project = firmware_for(standin, an386)
    with QemuBoard(project.elf, "mps2-an386") as board:
        relay = Relay(board.port, DAMAGE[case])
        device = Device(SerialLink(relay.url, open_timeout=2), timeout=0.5, alive=board.problem)
        runner = DeviceRunner(standin, an386, device, board=board, project=project)
        x = sample(7)
        y = runner.infer({"x": x})["y"]
        np.testing.assert_array_equal(y, reference(x))
        assert len(relay.damaged) == 1, "the damage happened"
        assert device.resends >= 1, "and was repaired by resending"
        runner.close()


@needs_qemu
def test_damage_beyond_the_retry_budget_is_one_clear_error(standin, an386):
    project = firmware_for(standin, an386)
    with QemuBoard(project.elf, "mps2-an386") as board:
        every_db = lambda d, i, line: flip(line, 20) if d == "to_device" and b" db 0 " in line else line  # noqa: E731
        relay = Relay(board.port, every_db)
        device = Device(SerialLink(relay.url, open_timeout=2), timeout=0.5, retries=2, alive=board.problem)
        device.hello()
        with pytest.raises(DeviceError, match=r"no valid reply to `db` after 3 tries \(the board reported a damaged frame \(crc\)\)"):
            device.run(sample(0).tobytes())


@needs_qemu
def test_qemu_killed_mid_run_is_one_clear_error(standin, an386):
    with open_runner(standin, an386, RunOptions()) as runner:
        x = sample(0)
        x[0, 0] = HANG  # the model spins: QEMU is busy when it dies
        threading.Timer(0.5, os.kill, args=(runner.board.pid, signal.SIGKILL)).start()
        started = time.monotonic()
        with pytest.raises(EdgekitError) as error:
            runner.infer({"x": x})
        assert time.monotonic() - started < 5
    message = str(error.value)
    assert "qemu-system-arm -M mps2-an386 exited with code -9" in message and "\n" not in message


@needs_qemu
def test_a_hung_board_times_out_instead_of_waiting_forever(standin, an386):
    with open_runner(standin, an386, RunOptions()) as runner:
        runner.device.timeout = runner.device.infer_timeout = 0.5
        runner.device.retries = 1
        x = sample(0)
        x[0, 0] = HANG
        started = time.monotonic()
        with pytest.raises(DeviceError, match="no valid reply to `infer` after 2 tries .no reply before the timeout"):
            runner.infer({"x": x})
        assert time.monotonic() - started < 5


@needs_qemu
def test_a_fault_on_the_board_is_reported_at_once(standin, an386):
    with open_runner(standin, an386, RunOptions()) as runner:
        x = sample(0)
        x[0, 0] = FAULT
        with pytest.raises(DeviceError, match="the board faulted: hardfault"):
            runner.infer({"x": x})


@needs_qemu
def test_a_board_running_another_model_is_refused(standin, an386, tmp_path):
    other = make_artifact(tmp_path / "other")
    other.inputs = [type(s)(s.name, (1, 10), s.dtype, s.scale, s.zero_point) for s in other.inputs]
    project = firmware_for(standin, an386)
    with QemuBoard(project.elf, "mps2-an386") as board:
        with pytest.raises(EdgekitError, match=r"runs standin \(300 B in, 200 B out\), this model takes 10 B"):
            open_runner(other, an386, RunOptions(port=board.url))


def test_a_real_board_needs_a_port(tmp_path):
    artifact = make_artifact(tmp_path / "a")
    with pytest.raises(EdgekitError, match="give its serial port with --port"):
        open_runner(artifact, targets.get("nucleo-l4r5zi"), RunOptions())


@needs_qemu
def test_the_cortex_m7_board_runs_the_same_firmware_source(standin, tmp_path):
    an500 = targets.get("mps2-an500")
    with open_runner(standin, an500, RunOptions()) as runner:
        assert runner.device.info.target == "mps2-an500"
        x = sample(9)
        np.testing.assert_array_equal(runner.infer({"x": x})["y"], reference(x))
        assert 60_000 <= runner.device_timing()["instructions"] <= 1_200_000


def test_flashing_a_real_board_without_its_tool_is_one_clear_line(tmp_path):
    from clitools import run_cli

    elf = tmp_path / "firmware.elf"
    elf.write_bytes(b"\x7fELF")
    code, _, err = run_cli("flash", str(elf), "--target", "nucleo-l4r5zi", env={"PATH": str(tmp_path)})
    assert code == 1
    assert err.strip() == "error: pyocd not found: install it with `pip install 'edgekit[firmware]'`"


def test_flashing_a_project_onto_another_target_is_refused(tmp_path):
    from clitools import run_cli

    from edgekit import firmware

    project = firmware.render(make_artifact(tmp_path / "a"), targets.get("mps2-an386"), tmp_path / "fw")
    project.build_dir.mkdir()
    project.elf.write_bytes(b"\x7fELF")
    code, _, err = run_cli("flash", str(project.path), "--target", "mps2-an500")
    assert code == 1 and "was built for mps2-an386, not mps2-an500" in err


def test_timing_reads_ticks_as_instructions_on_qemu_and_cycles_on_boards():
    from edgekit.device.protocol import InferResult
    from edgekit.device.runner import timing

    result = InferResult(count=2, warmup=1, ticks=50_000, min_ticks=25_000, max_ticks=25_000, tick_hz=25_000_000, in_crc=0, out_crc=0)
    qemu = timing(result, targets.get("mps2-an386"), emulated=True)
    assert qemu["instructions"] == 1_000_000  # 25,000 ticks of 40 ns, one instruction per ns
    assert qemu["ms"] == pytest.approx(40.0)  # a million instructions at the board's 25 MHz
    nucleo = targets.get("nucleo-l4r5zi")
    board = timing(dataclasses_replace(result, tick_hz=120_000_000), nucleo, emulated=False, timer="dwt")
    assert board["cycles"] == 25_000 and board["ms"] == pytest.approx(25_000 / 120e3)
    arduino = timing(dataclasses_replace(result, tick_hz=1_000_000), targets.get("arduino-nano-33-ble"), emulated=False, timer="micros")
    assert "cycles" not in arduino and arduino["ms"] == pytest.approx(25.0)
    assert arduino["cycles_estimate"] == pytest.approx(25e-3 * 64e6)


def dataclasses_replace(obj, **changes):
    import dataclasses

    return dataclasses.replace(obj, **changes)


@needs_qemu
def test_a_board_started_by_flash_is_used_through_its_port(standin, an386):
    # `edgekit flash` leaves QEMU running; `bench --port socket://...` then talks to it
    project = firmware_for(standin, an386)
    with QemuBoard(project.elf, "mps2-an386") as board:
        with open_runner(standin, an386, RunOptions(port=board.url)) as runner:
            assert runner.name == "device-qemu" and runner.device.info.firmware_id == standin.sha256[:16]
            x = sample(4)
            np.testing.assert_array_equal(runner.infer({"x": x})["y"], reference(x))
            assert runner.device_timing()["instructions"] > 0  # still the emulated board's clock
            assert runner.memory()["flash_bytes"] > 0  # what a report needs for an MCU


def test_flashing_with_no_board_attached_says_so_in_one_line(tmp_path):
    from clitools import run_cli

    # a pyocd that behaves as the real one does with no probe plugged in
    fake = tmp_path / "bin" / "pyocd"
    fake.parent.mkdir()
    fake.write_text("#!/bin/sh\necho '0000418 C No connected debug probes' >&2\nexit 1\n")
    fake.chmod(0o755)
    elf = tmp_path / "firmware.elf"
    elf.write_bytes(b"\x7fELF")
    code, _, err = run_cli("flash", str(elf), "--target", "nucleo-l4r5zi", env={"PATH": f"{fake.parent}:/usr/bin:/bin"})
    assert code == 1 and len(err.strip().splitlines()) == 1
    assert "pyocd found no nucleo-l4r5zi board: connect it over USB" in err


@needs_qemu
def test_the_firmware_cache_rebuilds_only_when_something_changed(standin, an386):
    import dataclasses

    elf = firmware_for(standin, an386).elf
    built = elf.stat().st_mtime_ns
    assert firmware_for(standin, an386).elf.stat().st_mtime_ns == built, "an unchanged artifact and target reuse the build"
    faster = dataclasses.replace(an386, extras={**an386.extras, "uart_baud": 921600})
    assert firmware_for(standin, faster).elf.stat().st_mtime_ns != built, "a changed target rebuilds"


@needs_qemu
def test_flash_starts_the_emulated_board_on_the_port_asked_for(standin, an386):
    from edgekit.device import flashers
    from edgekit.device.qemu import free_port

    port = free_port()
    board = flashers.flash(firmware_for(standin, an386).elf, an386, port=f"socket://127.0.0.1:{port}")
    try:
        assert board.url == f"socket://127.0.0.1:{port}"
        with open_runner(standin, an386, RunOptions(port=board.url)) as runner:
            np.testing.assert_array_equal(runner.infer({"x": sample(2)})["y"], reference(sample(2)))
    finally:
        board.stop()
    with pytest.raises(EdgekitError, match="listens on a TCP port"):
        flashers.flash(firmware_for(standin, an386).elf, an386, port="/dev/ttyACM0")


@needs_qemu
def test_built_firmware_lives_in_the_registry_store_and_a_failed_build_leaves_nothing(standin, an386, tmp_path):
    import dataclasses

    from edgekit.errors import EdgekitError
    from edgekit.registry.location import locate

    registry = str(tmp_path / "registry")
    store = locate(registry).store_dir
    project = firmware_for(standin, an386, registry)
    assert project.path.parent == store / "firmware" and project.elf.is_file()
    tiny = dataclasses.replace(an386, ram_bytes=1024, memory_map={**an386.memory_map, "ram_bytes": 1024})
    with pytest.raises(EdgekitError):
        firmware_for(standin, tiny, registry)
    assert sorted(p.name for p in (store / "firmware").iterdir()) == [project.path.name]
    assert list((store / "staging").iterdir()) == []
