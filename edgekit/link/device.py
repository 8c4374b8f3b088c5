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


def status_kib(field):
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except (OSError, ValueError, IndexError):
        return None
    return None


def reset_peak():
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
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "machine": uname.machine,
        "os": platform.platform(),
        "uname": " ".join([uname.system, uname.node, uname.release, uname.version, uname.machine]),
        "hostname": uname.node,
        "python": platform.python_version(),
        "memory_bytes": _memory_bytes(),
        "executable": sys.executable,
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
    jetson = jetson_facts()
    if jetson:
        env["jetson"] = jetson
    return env


def cpu_model():
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


# --------------------------------------------------------------------------- TensorRT


def recipe_hash(recipe, onnx_sha256, calibration_sha256=None):
    """The hash of everything that decides an engine besides the device: the recipe and its files."""
    fields = dict(recipe)
    fields["onnx_sha256"] = onnx_sha256
    fields["calibration_sha256"] = calibration_sha256
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def engine_key(tensorrt_version, gpu_name, recipe_digest):
    """The engine cache's key: an engine only loads where TensorRT and the GPU are the ones that built it."""
    text = "%s\n%s\n%s" % (tensorrt_version, gpu_name, recipe_digest)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()[:32]


_STAT = r"([-+0-9.eE]+)"


def parse_trtexec_summary(text):
    """trtexec's `=== Performance summary ===` lines -> {metric: {min, max, mean, median, p90, p95, p99}}.

    Metrics as trtexec names them, snake_cased: latency, enqueue_time, h2d_latency,
    gpu_compute_time, d2h_latency; plus throughput_qps, and tensorrt_version when
    the log says it.
    """
    import re

    summary = {}
    stats = re.compile(r"\]\s*([A-Za-z0-9 ]+?):\s*min = %s ms, max = %s ms, mean = %s ms, median = %s ms(.*)$"
                       % (_STAT, _STAT, _STAT, _STAT))
    percentile = re.compile(r"percentile\((\d+(?:\.\d+)?)%\) = " + _STAT + " ms")
    for line in text.splitlines():
        match = stats.search(line)
        if match:
            name = match.group(1).strip().lower().replace(" ", "_")
            values = {"min": float(match.group(2)), "max": float(match.group(3)),
                      "mean": float(match.group(4)), "median": float(match.group(5))}
            for p, value in percentile.findall(match.group(6)):
                values["p" + (p.rstrip("0").rstrip(".") if "." in p else p)] = float(value)  # p90, p99.9
            summary[name] = values
            continue
        match = re.search(r"\]\s*Throughput:\s*%s qps" % _STAT, line)
        if match:
            summary["throughput_qps"] = float(match.group(1))
        match = re.search(r"TensorRT version:\s*(\S+)", line) or re.search(r"\[TensorRT v(\d+)\]", line)
        if match and "tensorrt_version" not in summary:
            summary["tensorrt_version"] = match.group(1)
        match = re.search(r"\]\s*Selected Device:\s*(.+?)\s*$", line)
        if match:
            summary["gpu"] = match.group(1)
    return summary


def parse_nvpmodel(text):
    """`nvpmodel -q`: {'power_mode': 'MAXN', 'mode_id': 0} (what is readable)."""
    facts = {}
    for line in text.splitlines():
        line = line.strip()
        if line.startswith("NV Power Mode:"):
            facts["power_mode"] = line.split(":", 1)[1].strip()
        elif line.isdigit() and "power_mode" in facts:
            facts["mode_id"] = int(line)
    return facts


def parse_jetson_clocks(text):
    """`jetson_clocks --show`: the machine, power mode, and each clock's min/max/current in Hz or kHz as printed."""
    import re

    facts, cpus = {}, {}
    for line in text.splitlines():
        line = line.strip()
        match = re.match(r"SOC family:(\S+)\s+Machine:(.+)$", line)
        if match:
            facts["soc_family"], facts["machine"] = match.group(1), match.group(2).strip()
            continue
        if line.startswith("NV Power Mode:"):
            facts["power_mode"] = line.split(":", 1)[1].strip()
            continue
        fields = dict(re.findall(r"(\w+)=(\S+)", line))
        name = line.split()[0].rstrip(":") if line else ""
        freqs = {k: int(fields[k]) for k in ("MinFreq", "MaxFreq", "CurrentFreq") if fields.get(k, "").isdigit()}
        if not freqs:
            continue
        entry = {"min": freqs.get("MinFreq"), "max": freqs.get("MaxFreq"), "current": freqs.get("CurrentFreq")}
        if re.match(r"cpu\d+$", name):
            if fields.get("Online", "1") == "1":
                cpus[name] = entry
        elif name in ("GPU", "EMC", "DLA0_CORE", "DLA1_CORE", "PVA0_VPS0"):
            facts[name.lower() + "_hz"] = entry
    if cpus:
        facts["cpu_khz"] = cpus
    return facts


def _run(argv, timeout=15):
    import subprocess

    try:
        done = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, timeout=timeout)
    except (OSError, subprocess.SubprocessError):
        return None
    return done.stdout.decode("utf-8", "replace") if done.returncode == 0 else None


def _which(name, *extra):
    import shutil

    found = shutil.which(name)
    if found:
        return found
    for path in extra:
        if os.access(path, os.X_OK):
            return path
    return None


def jetson_facts():
    """What a Jetson says of itself (L4T release, CUDA, power mode, clocks); {} elsewhere."""
    facts = {}
    try:
        with open("/etc/nv_tegra_release") as f:
            facts["l4t"] = f.readline().strip().lstrip("# ")
    except OSError:
        pass
    for path in ("/usr/local/cuda/version.json", "/usr/local/cuda/version.txt"):
        try:
            with open(path) as f:
                text = f.read()
        except OSError:
            continue
        if path.endswith(".json"):
            try:
                facts["cuda"] = json.loads(text)["cuda"]["version"]
            except (ValueError, KeyError, TypeError):
                pass
        else:
            facts["cuda"] = text.strip().split()[-1]
        break
    nvpmodel = _which("nvpmodel", "/usr/sbin/nvpmodel")
    text = _run([nvpmodel, "-q"]) if nvpmodel else None
    if text:
        facts["nvpmodel"] = parse_nvpmodel(text)
    clocks = _which("jetson_clocks", "/usr/bin/jetson_clocks")
    text = _run([clocks, "--show"]) if clocks else None
    if text:
        facts["clocks"] = parse_jetson_clocks(text)
    return facts


def _timing_stats(values):
    ordered = sorted(values)
    if not ordered:
        return None
    return {"mean": sum(ordered) / len(ordered), "median": ordered[len(ordered) // 2],
            "min": ordered[0], "max": ordered[-1]}


class TensorRT:
    """An ONNX built into a TensorRT engine on this device (cached), run with pycuda like trtexec times it.

    With the Python bindings (tensorrt + pycuda): page-locked host buffers,
    one stream, CUDA events around host-to-device, compute and device-to-host.
    With only JetPack's `trtexec`: trtexec builds, infers (--loadInputs,
    --exportOutput) and times (--exportTimes), and its summary is parsed.
    """

    name = "tensorrt"
    package = "tensorrt"
    TRTEXEC = "/usr/src/tensorrt/bin/trtexec"

    @classmethod
    def bindings(cls):
        return _importable("tensorrt") and _importable("pycuda")

    @classmethod
    def trtexec(cls):
        return _which("trtexec", cls.TRTEXEC)

    @classmethod
    def version(cls):
        if cls.bindings():
            import tensorrt

            return tensorrt.__version__
        exe = cls.trtexec()
        if exe:
            import re

            match = re.search(r"\[TensorRT v(\d+)\]", _run([exe, "--help"]) or "")
            return "trtexec" + (" v" + match.group(1) if match else "")
        return None

    def __init__(self, path, threads=None, options=None):
        options = options or {}
        self.recipe = options.get("recipe")
        if not self.recipe:
            raise RuntimeError("a TensorRT model needs its engine recipe (engine.json)")
        self.onnx = path
        self.calibration = (options.get("files") or {}).get("calibration")
        self.engines = os.path.join(os.path.dirname(os.path.abspath(path)), "engines")
        self.runner = "tensorrt"
        if self.bindings():
            self._open_bindings()
        elif self.trtexec():
            self._open_trtexec()
        else:
            raise RuntimeError("no TensorRT on this device: neither the tensorrt and pycuda modules nor trtexec")

    def specs(self):
        return list(self.recipe["inputs"]), list(self.recipe["outputs"])

    def _digest(self):
        calibration_sha = None
        if self.calibration:
            calibration_sha = _file_sha256(self.calibration)
        return recipe_hash(self.recipe, _file_sha256(self.onnx), calibration_sha)

    # ---- the Python bindings

    def _open_bindings(self):
        import atexit

        import numpy as np
        import pycuda.driver as cuda
        import tensorrt as trt

        cuda.init()
        device = cuda.Device(0)
        self.cuda_context = device.make_context()
        atexit.register(self.cuda_context.pop)
        gpu = device.name()
        key = engine_key(trt.__version__, gpu, self._digest())
        engine_path = os.path.join(self.engines, key + ".engine")
        logger = trt.Logger(trt.Logger.WARNING)
        cached = os.path.isfile(engine_path)
        if cached:
            with open(engine_path, "rb") as f:
                plan = f.read()
        else:
            plan = self._build(trt, cuda, np, logger, key)
            _write_atomically(engine_path, plan)
        self.trt_runtime = trt.Runtime(logger)
        self.engine = self.trt_runtime.deserialize_cuda_engine(plan)
        if self.engine is None:
            raise RuntimeError("TensorRT could not load the cached engine %s" % engine_path)
        self.context = self.engine.create_execution_context()
        self.stream = cuda.Stream()
        self.inputs, self.outputs = [], []
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            if self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT:
                self.context.set_input_shape(name, self.recipe["input_shapes"][name])
        for i in range(self.engine.num_io_tensors):
            name = self.engine.get_tensor_name(i)
            shape = tuple(self.context.get_tensor_shape(name))
            dtype = np.dtype(trt.nptype(self.engine.get_tensor_dtype(name)))
            host = cuda.pagelocked_empty(shape, dtype)
            memory = cuda.mem_alloc(max(1, host.nbytes))
            self.context.set_tensor_address(name, int(memory))
            is_input = self.engine.get_tensor_mode(name) == trt.TensorIOMode.INPUT
            (self.inputs if is_input else self.outputs).append((name, host, memory))
        self.events = [cuda.Event() for _ in range(4)]
        self.cuda = cuda
        self.last_timing = None
        major, minor = device.compute_capability()
        self.details = {
            "mode": "python bindings", "tensorrt": trt.__version__, "gpu": gpu,
            "compute_capability": "%d.%d" % (major, minor),
            "cuda_driver": cuda.get_driver_version(), "precision": self.recipe["precision"],
            "engine": "cached" if cached else "built", "engine_key": key,
        }

    def _build(self, trt, cuda, np, logger, key):
        builder = trt.Builder(logger)
        # TensorRT 10 networks are always explicit-batch; 8.x must be asked
        major = int(trt.__version__.split(".")[0])
        flags = 0 if major >= 10 else 1 << int(trt.NetworkDefinitionCreationFlag.EXPLICIT_BATCH)
        network = builder.create_network(flags)
        parser = trt.OnnxParser(network, logger)
        with open(self.onnx, "rb") as f:
            if not parser.parse(f.read()):
                errors = "; ".join(str(parser.get_error(i)) for i in range(parser.num_errors))
                raise RuntimeError("TensorRT cannot parse the ONNX: %s" % errors)
        config = builder.create_builder_config()
        config.set_memory_pool_limit(trt.MemoryPoolType.WORKSPACE, int(self.recipe["workspace_bytes"]))
        profile = builder.create_optimization_profile()
        for i in range(network.num_inputs):
            name = network.get_input(i).name
            shape = self.recipe["input_shapes"][name]
            profile.set_shape(name, shape, shape, shape)
        config.add_optimization_profile(profile)
        precision = self.recipe["precision"]
        if precision == "fp16":
            config.set_flag(trt.BuilderFlag.FP16)
        elif precision == "int8":
            if not self.calibration:
                raise RuntimeError("an int8 engine needs the calibration set (calibration.npy)")
            config.set_flag(trt.BuilderFlag.INT8)
            config.int8_calibrator = _entropy_calibrator(
                trt, cuda, np, np.load(self.calibration), os.path.join(self.engines, key + ".calibration")
            )
            config.set_calibration_profile(profile)
        plan = builder.build_serialized_network(network, config)
        if plan is None:
            raise RuntimeError("TensorRT could not build the engine (its log on the device says why)")
        return bytes(plan)

    def infer(self, feed):
        if hasattr(self, "context"):
            return self._infer_bindings(feed)
        return self._infer_trtexec(feed)

    def _infer_bindings(self, feed):
        import numpy as np

        cuda, stream = self.cuda, self.stream
        h2d_start, h2d_end, compute_end, d2h_end = self.events
        for name, host, _ in self.inputs:
            np.copyto(host, np.asarray(feed[name], dtype=host.dtype).reshape(host.shape))
        h2d_start.record(stream)
        for _, host, memory in self.inputs:
            cuda.memcpy_htod_async(memory, host, stream)
        h2d_end.record(stream)
        self.context.execute_async_v3(stream.handle)
        compute_end.record(stream)
        for _, host, memory in self.outputs:
            cuda.memcpy_dtoh_async(host, memory, stream)
        d2h_end.record(stream)
        stream.synchronize()
        self.last_timing = {
            "h2d": h2d_end.time_since(h2d_start),
            "compute": compute_end.time_since(h2d_end),
            "d2h": d2h_end.time_since(compute_end),
        }
        return [(name, host.copy()) for name, host, _ in self.outputs]

    # ---- trtexec only

    def _open_trtexec(self):
        if self.recipe["precision"] == "int8":
            raise RuntimeError(
                "int8 needs the TensorRT Python bindings on this device (trtexec alone has no calibrator): "
                "install python3-libnvinfer and pycuda, or convert with --quantize none or fp16"
            )
        exe = self.trtexec()
        key = engine_key(self.version(), "trtexec", self._digest())
        self.engine_path = os.path.join(self.engines, key + ".engine")
        cached = os.path.isfile(self.engine_path)
        log = ""
        if not cached:
            os.makedirs(self.engines, exist_ok=True)
            tmp = "%s.%d.tmp" % (self.engine_path, os.getpid())
            argv = [exe, "--onnx=" + self.onnx, "--saveEngine=" + tmp, "--shapes=" + self._shapes(),
                    "--memPoolSize=workspace:%dM" % max(1, int(self.recipe["workspace_bytes"]) >> 20)]
            if self.recipe["precision"] == "fp16":
                argv.append("--fp16")
            log = _run(argv, timeout=3600)
            if log is None or not os.path.isfile(tmp):
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise RuntimeError("trtexec could not build the engine")
            os.replace(tmp, self.engine_path)
        self.trtexec_exe = exe
        summary = parse_trtexec_summary(log)
        self.details = {"mode": "trtexec (no TensorRT Python bindings)", "tensorrt": self.version(),
                        "gpu": summary.get("gpu"), "precision": self.recipe["precision"],
                        "engine": "cached" if cached else "built", "engine_key": key}

    def _shapes(self):
        return ",".join("%s:%s" % (name, "x".join(str(d) for d in shape))
                        for name, shape in sorted(self.recipe["input_shapes"].items()))

    def _trtexec_run(self, feed, extra):
        import tempfile

        folder = tempfile.mkdtemp(prefix="edgekit-trtexec-")
        try:
            loads = []
            for spec in self.recipe["inputs"]:
                path = os.path.join(folder, "in%d.bin" % len(loads))
                feed[spec["name"]].astype(spec["dtype"]).tofile(path)
                loads.append("%s:%s" % (spec["name"], path))
            argv = [self.trtexec_exe, "--loadEngine=" + self.engine_path, "--shapes=" + self._shapes(),
                    "--loadInputs=" + ",".join(loads)] + [a % {"dir": folder} for a in extra]
            log = _run(argv, timeout=3600)
            if log is None:
                raise RuntimeError("trtexec failed running the engine")
            files = {name: os.path.join(folder, name) for name in os.listdir(folder)}
            loaded = {}
            for name in ("outputs.json", "times.json"):
                if name in files:
                    with open(files[name]) as f:
                        loaded[name] = json.load(f)
            return log, loaded
        finally:
            import shutil

            shutil.rmtree(folder, ignore_errors=True)

    def _infer_trtexec(self, feed):
        import numpy as np

        _, files = self._trtexec_run(feed, ["--iterations=1", "--warmUp=0", "--duration=0",
                                            "--exportOutput=%(dir)s/outputs.json"])
        exported = {item["name"]: item for item in files.get("outputs.json", [])}
        outputs = []
        for spec in self.recipe["outputs"]:
            shape = [1 if d == -1 else d for d in spec["shape"]]
            values = np.asarray(exported[spec["name"]]["values"], dtype=spec["dtype"])
            outputs.append((spec["name"], values.reshape(shape)))
        return outputs

    def time_runs(self, feed, runs, warmup):
        """trtexec times the runs itself: (per-run latency samples, the summary's breakdown, clock)."""
        if hasattr(self, "context"):
            return None
        log, files = self._trtexec_run(feed, ["--iterations=%d" % runs, "--warmUp=0", "--duration=0",
                                              "--avgRuns=1", "--useSpinWait", "--exportTimes=%(dir)s/times.json"])
        times = files.get("times.json") or []
        samples = [float(t.get("latencyMs", t.get("computeMs", 0.0))) for t in times][-runs:]
        summary = parse_trtexec_summary(log)
        breakdown = {name: summary[key] for name, key in (("h2d", "h2d_latency"), ("compute", "gpu_compute_time"),
                                                            ("d2h", "d2h_latency")) if key in summary}
        return samples, breakdown, "trtexec"


def _file_sha256(path):
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _write_atomically(path, data):
    os.makedirs(os.path.dirname(path), exist_ok=True)
    tmp = "%s.%d.tmp" % (path, os.getpid())
    try:
        with open(tmp, "wb") as f:
            f.write(data)
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _entropy_calibrator(trt, cuda, np, samples, cache_path):
    """IInt8EntropyCalibrator2 over the calibration set, one sample per batch (the engine's batch)."""

    class EntropyCalibrator(trt.IInt8EntropyCalibrator2):
        def __init__(self):
            trt.IInt8EntropyCalibrator2.__init__(self)
            self.samples = np.ascontiguousarray(samples, dtype=np.float32)
            self.index = 0
            self.memory = cuda.mem_alloc(max(1, self.samples[:1].nbytes))

        def get_batch_size(self):
            return 1

        def get_batch(self, names):
            if self.index >= len(self.samples):
                return None
            cuda.memcpy_htod(self.memory, np.ascontiguousarray(self.samples[self.index : self.index + 1]))
            self.index += 1
            return [int(self.memory)]

        def read_calibration_cache(self):
            if os.path.isfile(cache_path):
                with open(cache_path, "rb") as f:
                    return f.read()
            return None

        def write_calibration_cache(self, cache):
            _write_atomically(cache_path, bytes(cache))

    return EntropyCalibrator()


RUNTIMES = {runtime.name: runtime for runtime in (LiteRT, OnnxRuntime, TensorRT)}


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
        path = os.path.join(self.cache_dir, digest + header.get("suffix", ""))
        _write_atomically(path, payload)
        return {"path": path}, b""

    def load(self, header, payload):
        runtime = RUNTIMES.get(header["runtime"])
        if runtime is None:
            raise ValueError("unknown runtime %r: this program runs %s" % (header["runtime"], ", ".join(sorted(RUNTIMES))))
        if not os.path.isfile(header["file"]):
            raise ValueError("model file not on the device: %s" % header["file"])
        start = status_kib("VmRSS")
        peak_resets = start is not None and reset_peak()
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
        timed = getattr(model, "time_runs", None)
        done = timed(feed, int(header["runs"]), int(header.get("warmup", 0))) if timed else None
        if done is not None:  # a runtime that times itself (trtexec)
            samples, breakdown, source = done
            return {"samples_ms": samples, "clock": source, "breakdown_ms": breakdown}, b""
        for _ in range(int(header.get("warmup", 0))):
            model.infer(feed)
        samples, phases = [], {}
        for _ in range(int(header["runs"])):
            started = clock()
            model.infer(feed)
            samples.append((clock() - started) * 1e3)
            # a GPU runtime's own events split each run: host-to-device, compute, device-to-host
            for phase, ms in (getattr(model, "last_timing", None) or {}).items():
                phases.setdefault(phase, []).append(ms)
        reply = {"samples_ms": samples, "clock": "time.perf_counter"}
        if phases:
            reply["breakdown_ms"] = dict({p: _timing_stats(v) for p, v in phases.items()}, clock="cuda events")
        return reply, b""

    def memory(self, header, payload):
        """What loading and running the model added to this process (the program itself excluded)."""
        if self.window is None or self.window[0] is None:
            return {"memory": {}}, b""
        start, peak_resets = self.window
        end = status_kib("VmHWM" if peak_resets else "VmRSS")
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
