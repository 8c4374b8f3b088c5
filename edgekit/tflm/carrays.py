"""Model bytes as C++ arrays, in the format TFLM's own generator writes.

Matches `tensorflow/lite/micro/tools/generate_cc_arrays.py`: the model is an
`alignas(16) const unsigned char g_<name>_model_data[]` (TFLM reads the
flatbuffer in place, and its tables need the alignment) with a size constant
beside it and `extern` declarations in the header. Two additions over the
generator: the header has an include guard, and the size is a `const unsigned
int` defined in the .cc (not a `constexpr` in the header), so the header can
be included from several files and the size read from another unit.
"""

from __future__ import annotations

import re
from pathlib import Path

_BYTES_PER_LINE = 12


def c_identifier(name: str) -> str:
    """`name` made into a C identifier part: other characters become `_`, no leading digit."""
    ident = re.sub(r"[^0-9A-Za-z_]", "_", name).strip("_") or "model"
    return f"m_{ident}" if ident[0].isdigit() else ident


def array_name(name: str) -> str:
    """The array TFLM's generator would name for `<name>.tflite`: `g_<name>_model_data`."""
    return f"g_{c_identifier(name)}_model_data"


def render_header(name: str, header_file: str = "model_data.h") -> str:
    array = array_name(name)
    guard = c_identifier(header_file).upper() + "_"
    guard = f"EDGEKIT_{guard}"
    return (
        f"#ifndef {guard}\n"
        f"#define {guard}\n"
        "\n"
        "#include <cstdint>\n"
        "\n"
        f"extern const unsigned char {array}[];\n"
        f"extern const unsigned int {array}_size;\n"
        "\n"
        f"#endif  // {guard}\n"
    )


def render_source(model: bytes, name: str, header_file: str = "model_data.h") -> str:
    array = array_name(name)
    hexes = [f"0x{b:02x}" for b in model]
    rows = (
        "    " + ", ".join(hexes[i : i + _BYTES_PER_LINE])
        for i in range(0, len(hexes), _BYTES_PER_LINE)
    )
    body = ",\n".join(rows)
    return (
        "#include <cstdint>\n"
        "\n"
        f'#include "{header_file}"\n'
        "\n"
        f"alignas(16) const unsigned char {array}[] = {{\n{body}\n}};\n"
        f"const unsigned int {array}_size = {len(model)};\n"
    )


def write_model_arrays(model: bytes, name: str, out_dir: Path, stem: str = "model_data") -> list[Path]:
    """Write `<stem>.cc` and `<stem>.h` holding `model` into `out_dir`; return both paths."""
    out_dir = Path(out_dir)
    header = out_dir / f"{stem}.h"
    source = out_dir / f"{stem}.cc"
    header.write_text(render_header(name, header.name))
    source.write_text(render_source(model, name, header.name))
    return [source, header]
