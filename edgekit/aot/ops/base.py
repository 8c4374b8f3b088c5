"""The emitter interface: how one operator family becomes C.

An emitter is a small class registered for one or more TFLite opcodes. The
compiler gives it each operator of the graph with an `EmitContext`, and the
emitter does three things, in order:

1. read the operator's attributes (`node.options`, schema snake_case names);
2. resolve shapes and quantization (`ctx.tensor(i)`, `edgekit.aot.quant`);
3. emit C: one call of a specialized kernel with constant shapes, returned as
   a string of statements (`ctx.ptr(i)` names the tensors' memory,
   `ctx.const_array(...)` puts per-channel parameters into flash).

`check` answers, before anything is emitted, whether the emitter can compile
the node (dtype, rank, option combinations); its reason goes into the one
error that lists every unsupported operator of a model.

Kernels are `static inline` C functions in `edgekit/aot/kernels/*.h`; an
emitter names the headers it needs in `kernels`, and the code generator
inlines each header's text once into the bundle's .c (no runtime library).
"""

from __future__ import annotations

import importlib
import pkgutil
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np

if TYPE_CHECKING:
    from edgekit.aot.graph import Graph, Node, TensorInfo

# numpy dtype name -> C type of one element
C_TYPES = {
    "int8": "int8_t",
    "uint8": "uint8_t",
    "uint32": "uint32_t",
    "int16": "int16_t",
    "int32": "int32_t",
    "int64": "int64_t",
    "float32": "float",
    "bool": "uint8_t",
}


def c_type(dtype: str) -> str:
    """The C element type of a tensor dtype ('int8' -> 'int8_t')."""
    return C_TYPES[str(np.dtype(dtype))]


def c_literal(value: Any, ctype: str) -> str:
    """One C literal of `ctype` that compiles without warnings under -Wall -Wextra."""
    if ctype == "float":
        v = float(value)
        if np.isnan(v):
            return "NAN"
        if np.isinf(v):
            return "INFINITY" if v > 0 else "-INFINITY"
        # shortest decimal that rounds back to this float32 (exact via the 'f' suffix)
        text = np.format_float_positional(np.float32(v), unique=True, trim="0")
        if "e" not in text and len(text) > 24:
            text = np.format_float_scientific(np.float32(v), unique=True, trim="0")
        return text + "f"
    v = int(value)
    if ctype == "int32_t" and v == -(2**31):
        return "(-2147483647 - 1)"
    if ctype == "int64_t":
        return f"INT64_C({v})"
    return str(v)


@dataclass
class EmitContext:
    """What an emitter may ask while compiling one graph.

    `single_rounding` says which MultiplyByQuantizedMultiplier the TFLM build
    being matched uses (and QuantizeMultiplier's shift clamp); `features` are
    the target's CPU features (e.g. {"dsp"}) for kernels with a DSP path;
    `optimize` what the code is tuned for where kernels have a choice.
    """

    graph: Graph
    pointers: dict[int, str]  # tensor index -> C expression of its data pointer
    scratch_pointers: dict[int, str] = field(default_factory=dict)  # node index -> void *
    single_rounding: bool = False
    features: frozenset[str] = frozenset()
    #: `--optimize`: "speed", "balanced" or "size" (edgekit.aot.compiler.OPTIMIZE_DEFAULT)
    optimize: str = "balanced"
    constants: list[str] = field(default_factory=list)  # C definitions, in order
    constant_bytes: int = 0
    _names: set[str] = field(default_factory=set)

    def tensor(self, index: int) -> TensorInfo:
        """Shape, dtype, quantization and (for constants) data of tensor `index`."""
        return self.graph.tensors[index]

    def ptr(self, index: int) -> str:
        """C expression of a typed pointer to tensor `index`'s data (const if read-only).

        A constant tensor becomes a flash array, in its stored layout, the first
        time it is asked for; an emitter that needs another layout (transposed
        weights, folded biases) writes its own with `const_array` instead.
        """
        if index not in self.pointers:
            t = self.tensor(index)
            if not t.is_const:
                raise KeyError(f"tensor {index} ({t.name}) has no storage")
            self.pointers[index] = self.const_array(np.asarray(t.data, dtype=t.dtype), t.name)
        return self.pointers[index]

    def scratch(self, node: Node) -> str:
        """`void *` C expression of the scratch memory the node asked for (`scratch_bytes`)."""
        return self.scratch_pointers[node.index]

    def unique(self, hint: str) -> str:
        """A file-unique C identifier built from `hint` (a tensor name plus a suffix).

        TFLite tensor names are long ("model/act/Relu;model/bn/...;model/conv2d_1/Conv2D1"):
        the last name and its last two path parts are kept.
        """
        parts = hint.split(";")[-1].split("/")
        hint = "_".join(parts[-2:])[-48:]
        base = "".join(ch if ch.isalnum() else "_" for ch in hint).strip("_") or "c"
        name, n = f"ek_{base}", 1
        while name in self._names:
            n += 1
            name = f"ek_{base}_{n}"
        self._names.add(name)
        return name

    def const_array(self, values: np.ndarray, hint: str, ctype: str | None = None) -> str:
        """Define a `static const` array in flash with `values` (flattened); return its name.

        `ctype` defaults to the C type of `values.dtype`. Arrays are aligned for
        word and SIMD loads.
        """
        values = np.asarray(values)
        ctype = ctype or c_type(values.dtype.name)
        name = self.unique(hint)
        flat = values.reshape(-1)
        if flat.size == 0:
            flat = np.zeros(1, dtype=values.dtype)
        self.constants.append(
            f"static const {ctype} {name}[{flat.size}] EK_ALIGNED = {{\n  {_initializer(flat, ctype)}\n}};"
        )
        self.constant_bytes += flat.size * np.dtype(values.dtype).itemsize
        return name

    def const_array_choice(
        self, condition: str, if_true: np.ndarray, if_false: np.ndarray, hint: str, ctype: str | None = None
    ) -> str:
        """One flash array whose contents the C preprocessor picks: `#if condition`.

        For parameters that depend on the kernel path the C compiler takes
        (e.g. `EK_DOT_BIAS`), so the bundle carries only the one it uses.
        """
        a, b = np.asarray(if_true).reshape(-1), np.asarray(if_false).reshape(-1)
        if a.shape != b.shape:
            raise ValueError("both choices of a constant array need the same length")
        ctype = ctype or c_type(a.dtype.name)
        name = self.unique(hint)
        self.constants.append(
            f"static const {ctype} {name}[{a.size}] EK_ALIGNED = {{\n#if {condition}\n"
            f"  {_initializer(a, ctype)}\n#else\n  {_initializer(b, ctype)}\n#endif\n}};"
        )
        self.constant_bytes += a.size * np.dtype(a.dtype).itemsize
        return name


    def const_array_layouts(
        self, condition: str, if_true: np.ndarray, if_false: np.ndarray, hint: str, ctype: str | None = None
    ) -> str:
        """Like `const_array_choice`, for two layouts of different lengths or types (e.g.
        weights packed for SIMD lanes or padded to rows); `WEIGHTS_SIZE` counts the larger."""
        a, b = np.asarray(if_true).reshape(-1), np.asarray(if_false).reshape(-1)
        ta, tb = ctype or c_type(a.dtype.name), ctype or c_type(b.dtype.name)
        name = self.unique(hint)
        self.constants.append(
            f"#if {condition}\nstatic const {ta} {name}[{a.size}] EK_ALIGNED = {{\n  {_initializer(a, ta)}\n}};\n"
            f"#else\nstatic const {tb} {name}[{b.size}] EK_ALIGNED = {{\n  {_initializer(b, tb)}\n}};\n#endif"
        )
        self.constant_bytes += max(a.nbytes, b.nbytes)
        return name


def _initializer(flat: np.ndarray, ctype: str) -> str:
    """Comma-separated C literals, 24 to a line so the .c stays readable in an editor."""
    items = [c_literal(v, ctype) for v in flat.tolist()]
    return ",\n  ".join(",".join(items[i : i + 24]) for i in range(0, len(items), 24))


class Emitter:
    """Compiles the operators of one family; subclasses register with `@register`."""

    #: TFLite builtin opcodes this emitter compiles, e.g. ("CONV_2D",)
    opcodes: ClassVar[tuple[str, ...]] = ()
    #: kernel headers (file names in edgekit/aot/kernels/) the emitted code calls
    kernels: ClassVar[tuple[str, ...]] = ()

    def check(self, node: Node, ctx: EmitContext) -> str | None:
        """Why this node cannot be compiled (one short phrase), or None if it can."""
        return None

    def scratch_bytes(self, node: Node, ctx: EmitContext) -> int:
        """Bytes of temporary memory the node needs while it runs (planned in the arena)."""
        return 0

    def aliases_input(self, node: Node, ctx: EmitContext) -> bool:
        """True when the output is the input's memory reinterpreted (RESHAPE): no code."""
        return False

    def overwrites(self, node: Node, ctx: EmitContext) -> dict[int, int]:
        """Inputs the output may be written over while the node runs, with the lag of each.

        Maps an input's position in `node.inputs` to how many bytes before that
        input the output must start for no write to land on input bytes the
        kernel has still to read (`edgekit.aot.inplace` computes it for the
        element-by-element and pixel-by-pixel kernels). The planner uses it only
        for an input that dies at this node. Default: none.
        """
        return {}

    def emit(self, node: Node, ctx: EmitContext) -> str:
        """C statements that compute the node's outputs from its inputs."""
        raise NotImplementedError


_REGISTRY: dict[str, Emitter] = {}


def register(cls: type[Emitter]) -> type[Emitter]:
    """Class decorator: make `cls` the emitter of its opcodes (an opcode taken twice is a bug)."""
    instance = cls()
    for opcode in cls.opcodes:
        if opcode in _REGISTRY:
            raise RuntimeError(
                f"opcode {opcode} has two emitters: {type(_REGISTRY[opcode]).__name__} "
                f"and {cls.__name__}"
            )
        _REGISTRY[opcode] = instance
    return cls


_loaded = False


def load_all() -> dict[str, Emitter]:
    """Import every module of `edgekit.aot.ops` once, so each registers its emitters."""
    global _loaded
    if not _loaded:
        package = importlib.import_module("edgekit.aot.ops")
        for info in pkgutil.iter_modules(package.__path__):
            if info.name != "base":
                importlib.import_module(f"edgekit.aot.ops.{info.name}")
        _loaded = True
    return dict(_REGISTRY)


def emitter_for(opcode: str) -> Emitter | None:
    """The emitter registered for `opcode`, or None."""
    return load_all().get(opcode)


def supported_opcodes() -> list[str]:
    return sorted(load_all())


# ----- helpers shared by emitters -------------------------------------------------------


def c_args(*args: Any) -> str:
    """Join kernel call arguments; ints become literals, strings stay C expressions."""
    return ", ".join(str(int(a)) if isinstance(a, (bool, int, np.integer)) else str(a) for a in args)


def call(function: str, *args: Any) -> str:
    """`function(arg, ...);` as one C statement."""
    return f"{function}({c_args(*args)});"


def per_tensor_qparams(t: TensorInfo) -> tuple[float, int]:
    """(scale, zero_point) of a per-tensor quantized tensor, as TFLM's params hold them."""
    if t.scale is None:
        raise ValueError(f"tensor {t.name} is not quantized")
    return float(np.float32(t.scale[0])), int(t.zero_point[0])


def weighted_types_problem(x: TensorInfo, w: TensorInfo, bias: TensorInfo | None, y: TensorInfo,
                           weights: str) -> str | None:
    """What keeps a weighted op (conv, depthwise, fully connected) from the int8 or float32 kernels.

    `weights` names the constant in messages ("filter", "weights").
    """
    if x.dtype == "int8":
        if w.dtype != "int8" or y.dtype != "int8":
            return f"int8 input with {w.dtype} {weights} and {y.dtype} output"
        if not (x.quantized and w.quantized and y.quantized):
            return "int8 tensors without quantization"
        if bias is not None and bias.dtype != "int32":
            return f"{bias.dtype} bias"
        return None
    if x.dtype == "float32":
        if w.dtype != "float32" or y.dtype != "float32":
            return f"float32 input with {w.dtype} {weights} (hybrid)"
        return None
    return f"{x.dtype} input"
