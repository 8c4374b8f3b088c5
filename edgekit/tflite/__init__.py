"""Reading and validating .tflite files, without TensorFlow.

flatbuf (bounds-checked flatbuffer reads) -> schema (the TFLite schema's field
slots and enums) -> reader (`read_model`: parse, check, return a `Model`).
Every backend that takes a .tflite (LiteRT, ONNX through tf2onnx, TFLM, the
aot compiler) reads it here first.
"""
