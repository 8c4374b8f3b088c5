"""Host side of edgekit's on-device benchmark protocol (spec: docs/firmware.md).

Every line, both ways, is `<seq> <body> *<crc32>`; the device answers a
command with the same seq. Commands are idempotent (`db` writes at an
offset), so whatever the wire damages (a flipped byte, a lost byte, a lost
newline, a late reply) is fixed by sending the same frame again: a reply
that fails its CRC, an `err crc`, or silence until the timeout all trigger
a bounded number of resends, then one clear error.
"""

from __future__ import annotations

import time
import zlib
from dataclasses import dataclass
from typing import Callable, Protocol

from edgekit.errors import EdgekitError

PROTOCOL_VERSION = 1
CHUNK_BYTES = 128  # payload bytes per db/results frame (the device's limit)
# device errors that mean "the frame was damaged on the way": resend it
_TRANSIENT = ("crc", "bad frame", "line too long", "bad db frame", "bad results frame")


class DeviceError(EdgekitError):
    """The board did not answer as the protocol says (timeout, damage beyond retries, a fault)."""


class DeviceReplyError(DeviceError):
    """The board understood the command and refused it (`err ...`)."""

    def __init__(self, command: str, reason: str):
        super().__init__(f"the board refused `{command}`: {reason}")
        self.command = command
        self.reason = reason


class Link(Protocol):
    """A byte pipe with line reads (serial_link.SerialLink, or a test double)."""

    def write(self, data: bytes) -> None: ...

    def readline(self, timeout: float) -> bytes | None: ...


def frame(seq: str, body: str) -> bytes:
    """One protocol line: `<seq> <body> *<crc32 of the text before ' *'>\\n`."""
    text = f"{seq} {body}".encode("ascii")
    return text + b" *%08x\n" % zlib.crc32(text)


@dataclass(frozen=True)
class Reply:
    seq: str
    status: str  # "ok", "err", "ready"
    words: tuple[str, ...]  # the rest, split at spaces
    fields: dict[str, str]  # the key=value words

    @property
    def text(self) -> str:
        return " ".join(self.words)


def parse_reply(line: bytes) -> Reply | None:
    """The reply in `line`, or None when its CRC (or its shape) is wrong."""
    line = line.rstrip(b"\r\n")
    if len(line) < 12 or line[-10:-8] != b" *":
        return None
    body, crc_text = line[:-10], line[-8:]
    try:
        if zlib.crc32(body) != int(crc_text, 16):
            return None
        words = body.decode("ascii").split(" ")
    except ValueError:
        return None
    if len(words) < 2:
        return None
    fields = dict(w.split("=", 1) for w in words[2:] if "=" in w)
    return Reply(seq=words[0], status=words[1], words=tuple(words[2:]), fields=fields)


@dataclass(frozen=True)
class InferResult:
    """What `infer N W` measured: ticks summed over N timed runs, and their min and max."""

    count: int
    warmup: int
    ticks: int
    min_ticks: int
    max_ticks: int
    tick_hz: int
    in_crc: int
    out_crc: int

    @property
    def ticks_per_inference(self) -> float:
        return self.ticks / self.count


@dataclass
class DeviceInfo:
    model: str
    input_bytes: int
    output_bytes: int
    timer: str
    tick_hz: int
    target: str
    firmware_id: str
    protocol: int


class Device:
    """A board running edgekit firmware, driven through a `Link`.

    `timeout` bounds every reply but an inference's; `infer_timeout` is per
    inference (warm-ups included). `alive` (e.g. the QEMU process's poll) is
    checked while waiting, so a dead emulator fails at once.
    """

    def __init__(
        self,
        link: Link,
        timeout: float = 5.0,
        infer_timeout: float = 60.0,
        retries: int = 5,
        alive: Callable[[], str | None] | None = None,
    ):
        self.link = link
        self.timeout = timeout
        self.infer_timeout = infer_timeout
        self.retries = retries
        self.alive = alive
        self.resends = 0  # frames sent again after damage or silence, since this Device was made
        self._seq = 0
        self._loaded_crc: int | None = None
        self.info: DeviceInfo | None = None

    # ---- framing and retries

    def _next_seq(self) -> str:
        self._seq = self._seq % 65535 + 1
        return str(self._seq)

    def _check_alive(self) -> None:
        if self.alive is not None:
            problem = self.alive()
            if problem:
                raise DeviceError(problem)

    def _link_failed(self, exc: EdgekitError) -> DeviceError:
        """The link broke: say why the board went away if `alive` knows (it may take a moment)."""
        if self.alive is not None:
            give_up = time.monotonic() + 2.0
            while time.monotonic() < give_up:
                problem = self.alive()
                if problem:
                    return DeviceError(problem)
                time.sleep(0.05)
        return DeviceError(str(exc))

    def _read_reply(self, seq: str, deadline: float) -> Reply | str:
        """The reply to `seq`, or why to resend ("damaged", "silence", a device error)."""
        while True:
            self._check_alive()
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                return "no reply before the timeout"
            try:
                line = self.link.readline(min(remaining, 0.25))
            except EdgekitError as exc:
                raise self._link_failed(exc) from None
            if line is None:
                continue  # nothing yet: check the process, wait on
            reply = parse_reply(line)
            if reply is None:
                if b" *" in line or not line.endswith(b"\n"):
                    return "a reply failed its CRC"
                continue  # a line that is no frame (printf from the firmware): not an answer
            if reply.seq == "-":
                if reply.status == "err" and reply.words[:1] == ("fault",):
                    raise DeviceError(f"the board faulted: {' '.join(reply.words[1:])}")
                if reply.status == "err" and reply.text in _TRANSIENT:
                    return f"the board reported a damaged frame ({reply.text})"
                continue  # a boot banner or noise: not an answer
            if reply.seq != seq:
                continue  # a late answer to an earlier command
            return reply

    def request(self, body: str, timeout: float | None = None) -> Reply:
        """Send one command and return its `ok` reply, resending on damage or silence."""
        seq = self._next_seq()
        data = frame(seq, body)
        command = body.split(" ")[0] if not body.startswith("db ") else "db"
        problems = []
        for attempt in range(self.retries + 1):
            if attempt:
                self.resends += 1
            # the leading newline ends any partial line a lost byte left on the device
            try:
                self.link.write(b"\n" + data)
            except EdgekitError as exc:
                raise self._link_failed(exc) from None
            outcome = self._read_reply(seq, time.monotonic() + (timeout or self.timeout))
            if isinstance(outcome, Reply):
                if outcome.status == "ok":
                    return outcome
                if outcome.text in _TRANSIENT:
                    problems.append(outcome.text)
                    continue
                raise DeviceReplyError(command, outcome.text)
            problems.append(outcome)
        raise DeviceError(
            f"no valid reply to `{command}` after {self.retries + 1} tries "
            f"({'; '.join(dict.fromkeys(problems))}): check the port, the baud rate and that the board runs edgekit firmware"
        )

    # ---- commands

    def hello(self) -> DeviceInfo:
        """Ask the firmware what it runs (`name`)."""
        f = self.request("name").fields
        try:
            self.info = DeviceInfo(
                model=f["model"],
                input_bytes=int(f["in"]),
                output_bytes=int(f["out"]),
                timer=f["timer"],
                tick_hz=int(f["tick_hz"]),
                target=f.get("target", ""),
                firmware_id=f.get("id", ""),
                protocol=int(f["proto"]),
            )
        except (KeyError, ValueError) as exc:
            raise DeviceError(f"the board's `name` reply lacks {exc}: is it edgekit firmware?") from None
        if self.info.protocol != PROTOCOL_VERSION:
            raise DeviceError(
                f"the board speaks protocol {self.info.protocol}, this edgekit speaks {PROTOCOL_VERSION}: "
                "rebuild and flash the firmware with this edgekit"
            )
        return self.info

    def load_input(self, data: bytes) -> None:
        """Send the input (`db load`, then `db` frames of up to CHUNK_BYTES)."""
        self._loaded_crc = None
        self.request(f"db load {len(data)}")
        for offset in range(0, len(data), CHUNK_BYTES):
            reply = self.request(f"db {offset} {data[offset:offset + CHUNK_BYTES].hex()}")
            if int(reply.fields.get("off", -1)) != offset:
                raise DeviceError(f"the board acknowledged db offset {reply.fields.get('off')} for {offset}")
        self._loaded_crc = zlib.crc32(data)

    def infer(self, count: int = 1, warmup: int = 0) -> InferResult:
        f = self.request(f"infer {count} {warmup}", timeout=self.timeout + self.infer_timeout * (count + warmup)).fields
        return InferResult(
            count=int(f["n"]),
            warmup=int(f["w"]),
            ticks=int(f["ticks"]),
            min_ticks=int(f["min"]),
            max_ticks=int(f["max"]),
            tick_hz=int(f["tick_hz"]),
            in_crc=int(f["in_crc"]),
            out_crc=int(f["out_crc"]),
        )

    def read_output(self, size: int, expected_crc: int) -> bytes:
        """The last inference's output (`results` frames), checked against the CRC `infer` gave."""
        chunks = []
        for offset in range(0, size, CHUNK_BYTES):
            length = min(CHUNK_BYTES, size - offset)
            reply = self.request(f"results {offset} {length}")
            try:
                chunk = bytes.fromhex(reply.fields["hex"])
            except (KeyError, ValueError):
                raise DeviceError(f"malformed results reply at offset {offset}") from None
            if int(reply.fields.get("off", -1)) != offset or len(chunk) != length:
                raise DeviceError(f"the board sent {len(chunk)} bytes at offset {reply.fields.get('off')}, asked {length} at {offset}")
            chunks.append(chunk)
        output = b"".join(chunks)
        if zlib.crc32(output) != expected_crc:
            raise DeviceError("the output read back does not match the CRC the board computed: the link loses data")
        return output

    def run(self, data: bytes, count: int = 1, warmup: int = 0) -> tuple[bytes, InferResult]:
        """Load `data` (unless the board holds it already), infer, read the output back."""
        if self.info is None:
            self.hello()  # the output size comes from the board
        crc = zlib.crc32(data)
        if self._loaded_crc != crc:
            self.load_input(data)
        try:
            result = self.infer(count, warmup)
        except DeviceReplyError as exc:
            if not exc.reason.startswith("input incomplete"):
                raise
            self.load_input(data)  # the board lost the input (a reset): send it again
            result = self.infer(count, warmup)
        if result.in_crc != crc:
            raise DeviceError("the board ran on an input that differs from the one sent: the link corrupts data")
        return self.read_output(self.info.output_bytes, result.out_crc), result
