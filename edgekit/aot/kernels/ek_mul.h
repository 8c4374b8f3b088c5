/* ek_mul.h: MUL, int8 and float32, over a run of n elements.
 *
 * a_stride/b_stride are 1, or 0 for an input broadcast along the run; the
 * emitter (ElementwiseBinary in ops/add.py) walks the outer dimensions.
 * int8 matches TFLM's reference_integer_ops::MulElementwise: the product of
 * the offset inputs (at most 256 * 256, so it fits in int32) is requantized
 * once with MultiplyByQuantizedMultiplier(s_a * s_b / s_y), offset and
 * clamped to the fused activation range. float32 is reference_ops::Mul. */
#ifndef EK_MUL_H
#define EK_MUL_H

EK_INLINE void ek_mul_s8(const int8_t *a, int a_stride, const int8_t *b, int b_stride,
                         int8_t *y, int n, int32_t a_offset, int32_t b_offset,
                         int32_t y_offset, int32_t multiplier, int shift, int32_t act_min,
                         int32_t act_max) {
  /* Read the multiplier through a volatile: with it a known constant, GCC 12's loop vectorizer
   * (x86 AVX2) narrows the high half of product * multiplier to 16 bits although it can reach
   * -2^15 - 1 and below, and outputs saturate the wrong way. One load per call. */
  const volatile int32_t opaque_multiplier = multiplier;
  const int32_t m = opaque_multiplier;
  int i;
  for (i = 0; i < n; ++i) {
    const int32_t product = (a_offset + a[i * a_stride]) * (b_offset + b[i * b_stride]);
    const int32_t out = ek_mbqm(product, m, shift) + y_offset;
    y[i] = (int8_t)ek_clamp_i32(out, act_min, act_max);
  }
}

EK_INLINE void ek_mul_f32(const float *a, int a_stride, const float *b, int b_stride, float *y,
                          int n, float act_min, float act_max) {
  int i;
  for (i = 0; i < n; ++i) y[i] = ek_clamp_f32(a[i * a_stride] * b[i * b_stride], act_min, act_max);
}

#endif /* EK_MUL_H */
