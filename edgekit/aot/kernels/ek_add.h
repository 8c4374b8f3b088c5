/* ek_add.h: ADD, int8 and float32, over a run of n elements.
 *
 * a_stride/b_stride are 1, or 0 for an input broadcast along the run; the
 * emitter walks the outer (broadcast) dimensions. int8 matches TFLM's
 * reference_integer_ops::AddFunc: both inputs shifted left by 20, rescaled
 * to a common scale, summed, rescaled to the output. On the DSP path each
 * input's rescaled term, which depends only on its int8 value, comes from a
 * table (a_terms[x + 128], computed by the compiler with the same integer
 * arithmetic), so only the sum's rescaling runs per element; elsewhere the
 * loop computes all three (it vectorizes, and beat table lookups on x86; and at
 * `--optimize size` the tables' 2 KiB per ADD is saved: a_terms is then null).
 * `right_shifts_only` as in ek_requantize_s8 (2: y_shift <= -1, 1: <= 0). */
#ifndef EK_ADD_H
#define EK_ADD_H

EK_INLINE void ek_add_s8(const int8_t *a, int a_stride, const int8_t *b, int b_stride,
                         int8_t *y, int n, const int32_t *a_terms, const int32_t *b_terms,
                         int32_t a_offset, int32_t a_mult, int a_shift, int32_t b_offset,
                         int32_t b_mult, int b_shift, int left_shift, int32_t y_mult, int y_shift,
                         int32_t y_offset, int32_t act_min, int32_t act_max,
                         int right_shifts_only) {
  int i;
  (void)right_shifts_only;
  for (i = 0; i < n; ++i) {
    int32_t out;
#if EK_USE_DSP
    if (a_terms) { /* no tables at --optimize size */
      const int32_t sum = a_terms[a[i * a_stride] + 128] + b_terms[b[i * b_stride] + 128];
      out = right_shifts_only == 2 && !EK_SINGLE_ROUNDING ? ek_mbqm_right(sum, y_mult, y_shift)
                                                          : ek_mbqm_smaller_than_one(sum, y_mult, y_shift);
    } else
#endif
    {
      const int32_t av = (a_offset + a[i * a_stride]) * (1 << left_shift);
      const int32_t bv = (b_offset + b[i * b_stride]) * (1 << left_shift);
      const int32_t sum = ek_mbqm_smaller_than_one(av, a_mult, a_shift) +
                          ek_mbqm_smaller_than_one(bv, b_mult, b_shift);
      out = ek_mbqm_smaller_than_one(sum, y_mult, y_shift);
      (void)a_terms, (void)b_terms;
    }
    y[i] = (int8_t)ek_clamp_s8(out + y_offset, act_min, act_max);
  }
}

EK_INLINE void ek_add_f32(const float *a, int a_stride, const float *b, int b_stride, float *y,
                          int n, float act_min, float act_max) {
  int i;
  for (i = 0; i < n; ++i) y[i] = ek_clamp_f32(a[i * a_stride] + b[i * b_stride], act_min, act_max);
}

#endif /* EK_ADD_H */
