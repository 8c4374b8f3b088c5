"""TensorFlow Lite Micro support: C arrays, op resolver, measured arena, fit report, host runner.

`edgekit.backends.tflm` puts these together; each module here has one job and
imports nothing heavy at import time.
"""
