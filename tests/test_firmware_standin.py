"""A stand-in aot bundle for the firmware and device tests, with its host reference (no tests here).

It follows the aot bundle API (`<name>_run`, `<name>_run_io` and the
`<NAME>_*_SIZE` macros, docs/aot.md) so the template, the protocol,
QEMU and the timing are tested without depending on the compiler. It does
real work (a small integer matrix product) so outputs and instruction
counts mean something, and it has two deliberate failure modes driven by
the first input byte: 127 spins forever (a hung board), -128 reads an
unmapped address (a fault).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from edgekit.core import Artifact, TensorSpec

INPUT_BYTES = 300  # three db frames
OUTPUT_BYTES = 200  # two results frames
HANG = 127
FAULT = -128

_HEADER = f"""#ifndef STANDIN_H
#define STANDIN_H
#include <stdint.h>
#define STANDIN_INPUT_SIZE {INPUT_BYTES}
#define STANDIN_OUTPUT_SIZE {OUTPUT_BYTES}
#define STANDIN_ACTIVATIONS_SIZE 64
int standin_run(const int8_t *input, int8_t *output, uint8_t *activations);
int standin_run_io(const void *const *inputs, void *const *outputs, uint8_t *activations);
#endif
"""

_SOURCE = """#include "standin.h"

int standin_run(const int8_t *input, int8_t *output, uint8_t *activations)
{
    (void)activations;
    if (input[0] == 127) {
        for (;;) {
            __asm volatile("" ::: "memory");
        }
    }
    if (input[0] == -128) {
        return *(volatile int *)0xF0000000u; /* unmapped: a bus fault */
    }
    for (int i = 0; i < STANDIN_OUTPUT_SIZE; i++) {
        int32_t acc = 0;
        for (int j = 0; j < STANDIN_INPUT_SIZE; j++) {
            acc += (int32_t)input[j] * (((i * 7 + j * 3) % 11) - 5);
        }
        output[i] = (int8_t)(acc >> 4);
    }
    return 0;
}

int standin_run_io(const void *const *inputs, void *const *outputs, uint8_t *activations)
{
    return standin_run((const int8_t *)inputs[0], (int8_t *)outputs[0], activations);
}
"""


def reference(x: np.ndarray) -> np.ndarray:
    """What the stand-in computes, in numpy: int32 accumulate, arithmetic shift, int8 wrap."""
    i = np.arange(OUTPUT_BYTES)[:, None]
    j = np.arange(INPUT_BYTES)[None, :]
    weights = ((i * 7 + j * 3) % 11) - 5
    acc = weights @ x.reshape(INPUT_BYTES).astype(np.int32)
    return (acc >> 4).astype(np.int8).reshape(1, OUTPUT_BYTES)


def make_artifact(folder: Path) -> Artifact:
    """Write the stand-in as an aot artifact folder (bundle files + artifact.json)."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "standin.h").write_text(_HEADER)
    (folder / "standin.c").write_text(_SOURCE)
    artifact = Artifact(
        path=folder,
        backend="aot",
        recipe={},
        recipe_key="standin",
        primary="standin.c",
        inputs=[TensorSpec("x", (1, INPUT_BYTES), "int8", 0.05, 0)],
        outputs=[TensorSpec("y", (1, OUTPUT_BYTES), "int8", 0.1, 0)],
        files=["standin.c", "standin.h"],
        sha256=hashlib.sha256((_HEADER + _SOURCE).encode()).hexdigest(),
        info={"c_name": "standin"},
        source={"name": "standin"},
    )
    artifact.save()
    return artifact


def sample(seed: int = 0) -> np.ndarray:
    """A deterministic input that avoids the two failure triggers."""
    x = np.random.default_rng(seed).integers(-128, 128, size=(1, INPUT_BYTES)).astype(np.int8)
    x[0, 0] = 3
    return x
