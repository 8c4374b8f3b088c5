"""Reading and validating .tflite files, without TensorFlow.

flatbuf (bounds-checked flatbuffer reads) -> walk (the file as raw records,
schema gives the field slots) -> validate (the ordered checks, then the public
records of `model`). `reader.read_model` / `reader.validate_file` are the entry
points. Every backend that takes a .tflite (LiteRT, ONNX through tf2onnx,
TFLM, the aot compiler) reads it here first.
"""
