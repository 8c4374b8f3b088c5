"""Reading and validating .tflite files, without TensorFlow.

flatbuf (bounds-checked flatbuffer reads) -> walk (the file as raw records,
schema gives the field slots) -> validate (the ordered checks, holding each
operator to its record in operators) -> the read-only records of `model`.
`reader.read_model` / `reader.validate_file` are the entry points, and every
backend that takes a .tflite (LiteRT, ONNX through tf2onnx, TFLM, the aot
compiler) reads it there first. `limits.check_kernel_limits` adds what some
kernel families (TFLM, aot) cannot compute; only those backends apply it.
docs/tflite.md describes both layers.
"""
