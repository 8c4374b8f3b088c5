"""Layer-by-layer fidelity: where in a converted model its outputs drift from the reference.

Data flow:

    inputs ──▶ reference runtime ──capture──▶ Capture ─┐
       │       (Keras sub-model, LiteRT, onnxruntime)   ├─match──▶ pairs ──metrics──▶ rows ──▶ table / HTML
       └─────▶ converted runtime ──capture──▶ Capture ─┘            (quantization undone)   (first failing layer,
               (LiteRT, TFLM, aot debug build, onnxruntime)                                  int8 causes)

A `Capture` holds every intermediate tensor a runtime exposes, in execution
order, with its quantization. `match` pairs tensors across the two graphs by
name and operator position; `metrics` measures each pair; `causes` reads why
an int8 layer is off (its calibrated range against the values on the data)
and, for the aot backend, which operator's integers first leave TFLM's.
`debugger.debug` ties it together for `edgekit debug`.
"""
