/* ek_add.h: ADD, int8 and float32, over a run of n elements.
 *
 * a_stride/b_stride are 1, or 0 for an input broadcast along the run; the
 * emitter walks the outer (broadcast) dimensions. int8 matches TFLM's
 * reference_integer_ops::AddFunc: both inputs shifted left by 20, rescaled
 * to a common scale, summed, rescaled to the output. */
#ifndef EK_ADD_H
#define EK_ADD_H

EK_INLINE void ek_add_s8(const int8_t *a, int a_stride, const int8_t *b, int b_stride,
                         int8_t *y, int n, int32_t a_offset, int32_t a_mult, int a_shift,
                         int32_t b_offset, int32_t b_mult, int b_shift, int left_shift,
                         int32_t y_mult, int y_shift, int32_t y_offset, int32_t act_min,
                         int32_t act_max) {
  int i;
  for (i = 0; i < n; ++i) {
    const int32_t av = (a_offset + a[i * a_stride]) * (1 << left_shift);
    const int32_t bv = (b_offset + b[i * b_stride]) * (1 << left_shift);
    const int32_t sum = ek_mbqm_smaller_than_one(av, a_mult, a_shift) +
                        ek_mbqm_smaller_than_one(bv, b_mult, b_shift);
    const int32_t out = ek_mbqm_smaller_than_one(sum, y_mult, y_shift) + y_offset;
    y[i] = (int8_t)ek_clamp_i32(out, act_min, act_max);
  }
}

EK_INLINE void ek_add_f32(const float *a, int a_stride, const float *b, int b_stride, float *y,
                          int n, float act_min, float act_max) {
  int i;
  for (i = 0; i < n; ++i) y[i] = ek_clamp_f32(a[i * a_stride] + b[i * b_stride], act_min, act_max);
}

#endif /* EK_ADD_H */
