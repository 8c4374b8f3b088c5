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
 * `right_shifts_only` as in ek_requantize_s8 (2: y_shift <= -1, 1: <= 0), or 3 on the DSP
 * path when the tables hold doubled terms and the compiler checked that ek_rq's bounds hold
 * (ops/add.py): the sum's rescaling plus the offset is then SMMULR, two adds and a shift. */
#ifndef EK_ADD_H
#define EK_ADD_H

/* One element: TFLM's int8 ADD of the values a and b (a convolution fused with the ADD
 * that consumes it calls this on each requantized output, ek_conv_taps.h). */
EK_INLINE int8_t ek_add_one_s8(int32_t a, int32_t b, const int32_t *a_terms,
                               const int32_t *b_terms, int32_t a_offset, int32_t a_mult,
                               int a_shift, int32_t b_offset, int32_t b_mult, int b_shift,
                               int left_shift, int32_t y_mult, int y_shift, int32_t y_offset,
                               int32_t act_min, int32_t act_max, int right_shifts_only) {
  int32_t out;
#if EK_USE_DSP
  if (a_terms) { /* no tables at --optimize size */
    const int32_t sum = a_terms[a + 128] + b_terms[b + 128];
    if (right_shifts_only == 3 && !EK_SINGLE_ROUNDING) { /* doubled terms: ek_rq */
      int32_t p[3];
      p[0] = y_mult;
      p[1] = (int32_t)(((int64_t)1 << (-y_shift - 1)) + (int64_t)y_offset * ((int64_t)1 << -y_shift));
      p[2] = -y_shift;
      return (int8_t)ek_clamp_s8(ek_rq(sum, p, 3), act_min, act_max);
    }
    out = right_shifts_only == 2 && !EK_SINGLE_ROUNDING ? ek_mbqm_right(sum, y_mult, y_shift)
                                                        : ek_mbqm_smaller_than_one(sum, y_mult, y_shift);
  } else
#endif
  {
    const int32_t av = (a_offset + a) * (1 << left_shift);
    const int32_t bv = (b_offset + b) * (1 << left_shift);
    const int32_t sum = ek_mbqm_smaller_than_one(av, a_mult, a_shift) +
                        ek_mbqm_smaller_than_one(bv, b_mult, b_shift);
    out = ek_mbqm_smaller_than_one(sum, y_mult, y_shift);
    (void)a_terms, (void)b_terms, (void)right_shifts_only;
  }
  return (int8_t)ek_clamp_s8(out + y_offset, act_min, act_max);
}

EK_INLINE void ek_add_s8(const int8_t *a, int a_stride, const int8_t *b, int b_stride,
                         int8_t *y, int n, const int32_t *a_terms, const int32_t *b_terms,
                         int32_t a_offset, int32_t a_mult, int a_shift, int32_t b_offset,
                         int32_t b_mult, int b_shift, int left_shift, int32_t y_mult, int y_shift,
                         int32_t y_offset, int32_t act_min, int32_t act_max,
                         int right_shifts_only) {
  int i;
#if EK_MVE && !EK_SINGLE_ROUNDING
  if (a_stride == 1 && b_stride == 1 && a_terms) { /* Helium (ek_mve.h): the tables through gathers */
    ek_mve_add_s8(a, b, y, n, a_terms, b_terms, y_mult, y_shift, y_offset, act_min, act_max);
    return;
  }
#endif
  for (i = 0; i < n; ++i)
    y[i] = ek_add_one_s8(a[i * a_stride], b[i * b_stride], a_terms, b_terms, a_offset, a_mult,
                         a_shift, b_offset, b_mult, b_shift, left_shift, y_mult, y_shift, y_offset,
                         act_min, act_max, right_shifts_only);
}

EK_INLINE void ek_add_f32(const float *a, int a_stride, const float *b, int b_stride, float *y,
                          int n, float act_min, float act_max) {
  int i;
  for (i = 0; i < n; ++i) y[i] = ek_clamp_f32(a[i * a_stride] + b[i * b_stride], act_min, act_max);
}

#endif /* EK_ADD_H */
