"""The ahead-of-time compiler: a .tflite model to a dependency-free C99 bundle.

edgekit.tflite.reader (parse and validate) -> graph -> planner (static arena)
-> ops (one emitter per operator family) -> codegen (`<name>.h`, `<name>.c`). The entry
point is `edgekit.aot.compiler.compile_model`; docs/aot.md describes the
bundle and how to add an operator. Nothing here imports TensorFlow.
"""
