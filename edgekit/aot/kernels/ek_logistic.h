/* ek_logistic.h: LOGISTIC, int8 by table and float32 as TFLM's reference.
 *
 * int8: an int8 input has 256 possible values, so the compiler runs TFLM's
 * integer logistic (reference_integer_ops::Logistic: input rescaled to Q4.27,
 * gemmlowp's fixed-point logistic, rescaled to Q0.7 with output zero point
 * -128) once per value at compile time and the kernel only looks the answer
 * up: same results, no fixed-point code on the device.
 *
 * float32: reference_ops::Logistic, including its cutoffs (1 above
 * 16.619047f, exp(x) below -9). */
#ifndef EK_LOGISTIC_H
#define EK_LOGISTIC_H

#include <math.h>

/* out[i] = table[in[i] + 128] */
EK_INLINE void ek_lut_s8(const int8_t *in, int8_t *out, int size, const int8_t *table) {
  int i;
  for (i = 0; i < size; ++i) {
    out[i] = table[in[i] + 128];
  }
}

EK_INLINE void ek_logistic_f32(const float *in, float *out, int size) {
  int i;
  for (i = 0; i < size; ++i) {
    const float v = in[i];
    float r;
    if (v > 16.619047164916992188f) {
      r = 1.0f;
    } else if (v < -9.0f) {
      r = expf(v);
    } else {
      r = 1.0f / (1.0f + expf(-v));
    }
    out[i] = r;
  }
}

#endif /* EK_LOGISTIC_H */
