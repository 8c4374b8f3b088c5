#!/usr/bin/env python3
"""edgekit's device-side program for Python devices (protocol: edgekit.link/1, docs/protocol.md).

Runs where the model runs: reads request frames on stdin, answers on stdout.
It needs Python 3.8+, numpy and one runtime (LiteRT / tflite-runtime, or
ONNX Runtime); nothing else from edgekit, TensorFlow or MLflow, because it is
copied to devices that have none of them. Keep it one file, standard library
plus numpy at the top, each runtime imported only when asked for.

Frame, both ways: 4-byte little-endian header length, the header (UTF-8
JSON object), then `payload_bytes` bytes of payload (tensors as raw
little-endian C-order arrays, one after another).
"""

import hashlib
import json
import os
import platform
import struct
import sys
import time

PROTOCOL = "edgekit.link/1"
MAX_HEADER_BYTES = 16 * 1024 * 1024
_HEADER = struct.Struct("<I")


class LinkError(Exception):
    """The stream broke or carried something that is not a frame."""


# --------------------------------------------------------------------------- framing


def _read_exact(read, count):
    chunks, left = [], count
    while left:
        chunk = read(left)
        if not chunk:
            raise LinkError("the stream closed in the middle of a frame" if chunks or left < count else "the stream closed")
        chunks.append(chunk)
        left -= len(chunk)
    return b"".join(chunks)


def write_frame(write, header, payload=b""):
    """Send one frame; `write` takes bytes (a file's write, a socket's sendall)."""
    header = dict(header, payload_bytes=len(payload))
    data = json.dumps(header, separators=(",", ":")).encode("utf-8")
    write(_HEADER.pack(len(data)) + data + bytes(payload))


def read_frame(read):
    """Receive one frame: (header dict, payload bytes); `read(n)` returns up to n bytes, b"" at the end."""
    (size,) = _HEADER.unpack(_read_exact(read, _HEADER.size))
    if size > MAX_HEADER_BYTES:
        raise LinkError("a frame header of %d bytes: the stream is not speaking %s" % (size, PROTOCOL))
    try:
        header = json.loads(_read_exact(read, size).decode("utf-8"))
    except ValueError:
        raise LinkError("a frame header that is not JSON: the stream is not speaking %s" % PROTOCOL)
    if not isinstance(header, dict):
        raise LinkError("a frame header that is not a JSON object")
    payload = _read_exact(read, int(header.get("payload_bytes", 0))) if header.get("payload_bytes") else b""
    return header, payload


def pack_arrays(arrays):
    """[(name, ndarray)] -> (descriptions, payload), little-endian C order."""
    import numpy as np

    described, parts = [], []
    for name, value in arrays:
        value = np.asarray(value)
        little = np.ascontiguousarray(value, dtype=value.dtype.newbyteorder("<"))
        described.append({"name": name, "dtype": value.dtype.name, "shape": list(value.shape)})
        parts.append(little.tobytes())
    return described, b"".join(parts)


def unpack_arrays(described, payload):
    """The inverse of pack_arrays: [(name, ndarray)] in native byte order."""
    import numpy as np

    arrays, offset = [], 0
    for item in described:
        dtype = np.dtype(item["dtype"])
        count = 1
        for d in item["shape"]:
            count *= int(d)
        size = count * dtype.itemsize
        if offset + size > len(payload):
            raise LinkError("tensor '%s' runs past the end of the payload" % item["name"])
        raw = np.frombuffer(payload[offset : offset + size], dtype=dtype.newbyteorder("<"))
        arrays.append((item["name"], raw.astype(dtype).reshape(item["shape"])))
        offset += size
    if offset != len(payload):
        raise LinkError("the payload holds %d bytes more than its tensors" % (len(payload) - offset))
    return arrays


# --------------------------------------------------------------------------- the device


def _status_kib(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def _reset_peak():
    try:
        with open("/proc/self/clear_refs", "w") as f:
            f.write("5")
        return True
    except OSError:
        return False


def _version(module_name):
    module = sys.modules.get(module_name)
    return getattr(module, "__version__", None) if module else None


def environment():
    """What the device is, read on the device."""
    uname = platform.uname()
    env = {
        "cpu": _cpu_model(),
        "cores": os.cpu_count(),
        "machine": uname.machine,
        "os": platform.platform(),
        "uname": " ".join([uname.system, uname.node, uname.release, uname.version, uname.machine]),
        "hostname": uname.node,
        "python": platform.python_version(),
        "memory_bytes": _memory_bytes(),
        "packages": {},
    }
    try:
        import numpy

        env["packages"]["numpy"] = numpy.__version__
    except ImportError:
        pass
    for runtime in RUNTIMES.values():
        version = runtime.version()
        if version:
            env["packages"][runtime.package] = version
    return env


def _cpu_model():
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith(("model name", "Model", "Hardware")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_bytes():
    try:
        return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None


def _spec(name, shape, dtype, scale=None, zero_point=None):
    return {"name": name, "shape": [int(d) for d in shape], "dtype": dtype, "scale": scale, "zero_point": zero_point}


class LiteRT:
    """A .tflite on LiteRT (ai-edge-litert) or tflite-runtime, whichever the device has."""

    name = "litert"
    package = "ai-edge-litert"
    _modules = ("ai_edge_litert.interpreter", "tflite_runtime.interpreter")

    @classmethod
    def module(cls):
        import importlib

        for name in cls._modules:
            try:
                return importlib.import_module(name)
            except ImportError:
                continue
        return None

    @classmethod
    def version(cls):
        for name, package in (("ai_edge_litert", "ai-edge-litert"), ("tflite_runtime", "tflite-runtime")):
            if name in sys.modules or _importable(name):
                cls.package = package
                return _version(name) or "unknown"
        return None

    def __init__(self, path, threads=None, options=None):
        module = self.module()
        if module is None:
            raise RuntimeError("no LiteRT on this device: pip install ai-edge-litert (or tflite-runtime)")
        self.interpreter = module.Interpreter(model_path=path, num_threads=threads)
        self.interpreter.allocate_tensors()
        self._in = self.interpreter.get_input_details()
        self._out = self.interpreter.get_output_details()
        self.runner = "litert"
        self.details = {"runtime": self.module().__name__.split(".")[0]}

    @staticmethod
    def _described(detail):
        import numpy as np

        scale, zero_point = detail.get("quantization", (0.0, 0))
        shape = detail.get("shape_signature", detail["shape"])
        quantized = scale != 0.0
        return _spec(detail["name"], shape, np.dtype(detail["dtype"]).name,
                     float(scale) if quantized else None, int(zero_point) if quantized else None)

    def specs(self):
        return [self._described(d) for d in self._in], [self._described(d) for d in self._out]

    def infer(self, feed):
        for detail in self._in:
            value = feed[detail["name"]]
            if tuple(value.shape) != tuple(detail["shape"]):
                self.interpreter.resize_tensor_input(detail["index"], value.shape)
                self.interpreter.allocate_tensors()
                self._in = self.interpreter.get_input_details()
                self._out = self.interpreter.get_output_details()
                break
        for detail in self._in:
            self.interpreter.set_tensor(detail["index"], feed[detail["name"]])
        self.interpreter.invoke()
        return [(d["name"], self.interpreter.get_tensor(d["index"])) for d in self._out]


class OnnxRuntime:
    """An .onnx on ONNX Runtime, with the best execution provider the device has (or the one asked for)."""

    name = "onnxruntime"
    package = "onnxruntime"
    PREFERRED = ("TensorrtExecutionProvider", "CUDAExecutionProvider", "CPUExecutionProvider")
    _TYPES = {"tensor(float)": "float32", "tensor(float16)": "float16", "tensor(double)": "float64",
              "tensor(int8)": "int8", "tensor(uint8)": "uint8", "tensor(int32)": "int32",
              "tensor(int64)": "int64", "tensor(bool)": "bool"}

    @classmethod
    def version(cls):
        if "onnxruntime" in sys.modules or _importable("onnxruntime"):
            import onnxruntime

            return onnxruntime.__version__
        return None

    def __init__(self, path, threads=None, options=None):
        try:
            import onnxruntime as ort
        except ImportError:
            raise RuntimeError("no ONNX Runtime on this device: pip install onnxruntime")
        session_options = ort.SessionOptions()
        session_options.log_severity_level = 3
        if threads:
            session_options.intra_op_num_threads = threads
            session_options.inter_op_num_threads = 1
        available = ort.get_available_providers()
        asked = (options or {}).get("providers")
        providers = [p for p in (asked or self.PREFERRED) if p in available] or ["CPUExecutionProvider"]
        self.session = ort.InferenceSession(path, sess_options=session_options, providers=providers)
        used = self.session.get_providers()
        self.runner = "onnxruntime"
        self.details = {"execution_provider": used[0] if used else None, "providers_available": available}

    def _described(self, node):
        shape = [d if isinstance(d, int) and d > 0 else -1 for d in node.shape]
        return _spec(node.name, shape, self._TYPES.get(node.type, node.type))

    def specs(self):
        return [self._described(i) for i in self.session.get_inputs()], [
            self._described(o) for o in self.session.get_outputs()
        ]

    def infer(self, feed):
        names = [o.name for o in self.session.get_outputs()]
        return list(zip(names, self.session.run(names, feed)))


RUNTIMES = {runtime.name: runtime for runtime in (LiteRT, OnnxRuntime)}


def _importable(name):
    import importlib.util

    try:
        return importlib.util.find_spec(name) is not None
    except (ImportError, ValueError):
        return False


class Device:
    """The state of one session: the cache folder, the loaded model, the last feed."""

    def __init__(self, cache_dir):
        self.cache_dir = cache_dir
        self.model = None
        self.feed = None
        self.window = None

    # each handler takes (header, payload) and returns (reply header, reply payload)

    def hello(self, header, payload):
        available = sorted(name for name, runtime in RUNTIMES.items() if runtime.version())
        return {"protocol": PROTOCOL, "program": "python", "runtimes": available}, b""

    def env(self, header, payload):
        return {"env": environment()}, b""

    def has(self, header, payload):
        path = os.path.join(self.cache_dir, header["sha256"] + header.get("suffix", ""))
        return {"path": path if os.path.isfile(path) else None}, b""

    def put(self, header, payload):
        """Store a file in the content-hash cache (checked against its hash), atomically."""
        digest = hashlib.sha256(payload).hexdigest()
        if digest != header["sha256"]:
            raise ValueError("the file arrived damaged (sha256 %s, expected %s)" % (digest[:12], header["sha256"][:12]))
        os.makedirs(self.cache_dir, exist_ok=True)
        path = os.path.join(self.cache_dir, digest + header.get("suffix", ""))
        tmp = "%s.%d.tmp" % (path, os.getpid())
        try:
            with open(tmp, "wb") as f:
                f.write(payload)
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return {"path": path}, b""

    def load(self, header, payload):
        runtime = RUNTIMES.get(header["runtime"])
        if runtime is None:
            raise ValueError("unknown runtime %r: this program runs %s" % (header["runtime"], ", ".join(sorted(RUNTIMES))))
        if not os.path.isfile(header["file"]):
            raise ValueError("model file not on the device: %s" % header["file"])
        start = _status_kib("VmRSS")
        peak_resets = start is not None and _reset_peak()
        self.model = runtime(header["file"], header.get("threads"), header.get("options"))
        self.window = (start, peak_resets)
        inputs, outputs = self.model.specs()
        return {"runner": self.model.runner, "inputs": inputs, "outputs": outputs, "details": self.model.details}, b""

    def _loaded(self):
        if self.model is None:
            raise ValueError("no model loaded: send load first")
        return self.model

    def infer(self, header, payload):
        model = self._loaded()
        self.feed = dict(unpack_arrays(header["inputs"], payload))
        started = time.perf_counter()
        outputs = model.infer(self.feed)
        ms = (time.perf_counter() - started) * 1e3
        described, out = pack_arrays(outputs)
        return {"outputs": described, "ms": ms}, out

    def time(self, header, payload):
        """Time the last feed on this device's clock: the link's latency never enters the numbers."""
        model = self._loaded()
        if self.feed is None:
            raise ValueError("nothing to time: send infer first")
        clock, feed = time.perf_counter, self.feed
        for _ in range(int(header.get("warmup", 0))):
            model.infer(feed)
        samples = []
        for _ in range(int(header["runs"])):
            started = clock()
            model.infer(feed)
            samples.append((clock() - started) * 1e3)
        return {"samples_ms": samples, "clock": "time.perf_counter"}, b""

    def memory(self, header, payload):
        """What loading and running the model added to this process (the program itself excluded)."""
        if self.window is None or self.window[0] is None:
            return {"memory": {}}, b""
        start, peak_resets = self.window
        end = _status_kib("VmHWM" if peak_resets else "VmRSS")
        if end is None:
            return {"memory": {}}, b""
        facts = {"model_rss_bytes": max(0, end - start) * 1024, "model_rss_basis": "peak" if peak_resets else "end"}
        return {"memory": facts}, b""


def serve(read, write, cache_dir):
    """Answer requests until `bye` or the end of the stream."""
    device = Device(cache_dir)
    handlers = {name: getattr(device, name) for name in ("hello", "env", "has", "put", "load", "infer", "time", "memory")}
    while True:
        try:
            header, payload = read_frame(read)
        except LinkError:
            return
        op = header.get("op")
        if op == "bye":
            write_frame(write, {"ok": True})
            return
        handler = handlers.get(op)
        try:
            if handler is None:
                raise ValueError("unknown op %r" % (op,))
            reply, out = handler(header, payload)
            write_frame(write, dict(reply, ok=True), out)
        except Exception as exc:  # one line back to the host; the program keeps serving
            text = str(exc).strip().splitlines()
            write_frame(write, {"ok": False, "error": "%s: %s" % (type(exc).__name__, text[0] if text else "")})


def main(argv=None):
    argv = sys.argv[1:] if argv is None else argv
    cache_dir = argv[0] if argv else os.path.join(os.path.expanduser("~"), ".cache", "edgekit-device")
    # The runtimes' own log lines (Python's or native code's, on descriptor 1) must not
    # corrupt the protocol stream: frames go out on a private copy of stdout, and
    # descriptor 1 itself now points at stderr.
    sys.stdout.flush()
    stream = os.fdopen(os.dup(1), "wb", buffering=0)
    os.dup2(2, 1)
    sys.stdout = sys.stderr

    def write(data):
        view = memoryview(data)
        while view:
            view = view[stream.write(view):]

    serve(sys.stdin.buffer.read, write, cache_dir)


if __name__ == "__main__":
    main()
