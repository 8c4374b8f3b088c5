/* ek_softmax.h: SOFTMAX, int8 -> int8 (output scale 1/256, zero point -128) and float32.
 *
 * int8 matches TFLM's reference_ops::Softmax (gemmlowp fixed point). exp()
 * of (x - max) only takes 256 values, so the compiler tabulates it: exp_f0[i]
 * is the FixedPoint<0> exp of the difference i - span, and differences below
 * -span (TFLM's diff_min) count as 0. Without a table (--optimize size) the
 * kernel evaluates gemmlowp's exp_on_negative_values itself, from the input
 * multiplier and left shift. The sum rescales each value to its 12 integer
 * bits (Rescale<12>: a rounding shift), and the reciprocal of the sum is
 * computed here as gemmlowp does. */
#ifndef EK_SOFTMAX_H
#define EK_SOFTMAX_H

EK_INLINE int32_t ek_sat_shl(int32_t x, int exponent) {
  const int32_t threshold = (int32_t)(((int64_t)1 << (31 - exponent)) - 1);
  if (x > threshold) return INT32_MAX;
  if (x < -threshold) return INT32_MIN;
  return (int32_t)((uint32_t)x << exponent);
}

EK_INLINE int32_t ek_add_wrap(int32_t a, int32_t b) { return (int32_t)((uint32_t)a + (uint32_t)b); }

/* gemmlowp one_over_one_plus_x_for_x_in_0_1 (Newton-Raphson, three steps) */
EK_INLINE int32_t ek_one_over_one_plus_x(int32_t a) {
  const int64_t sum = (int64_t)a + INT32_MAX;
  const int32_t half_denominator = (int32_t)((sum + (sum >= 0 ? 1 : -1)) / 2);
  int32_t x = ek_add_wrap(1515870810, ek_srdhm(half_denominator, -1010580540));
  int i;
  for (i = 0; i < 3; ++i) {
    const int32_t half_denominator_times_x = ek_srdhm(half_denominator, x);
    const int32_t one_minus = (int32_t)((uint32_t)(1 << 29) - (uint32_t)half_denominator_times_x);
    x = ek_add_wrap(x, ek_sat_shl(ek_srdhm(x, one_minus), 2));
  }
  return ek_sat_shl(x, 1);
}

EK_INLINE int ek_clz32(uint32_t x) {
#if defined(__GNUC__)
  return x ? __builtin_clz(x) : 32;
#else
  int n = 0;
  if (!x) return 32;
  while (!(x & 0x80000000u)) { x <<= 1; ++n; }
  return n;
#endif
}

EK_INLINE int32_t ek_wrap_sub(int32_t a, int32_t b) { return (int32_t)((uint32_t)a - (uint32_t)b); }

/* gemmlowp exp_on_negative_values for FixedPoint<int32, 5> (SCALED_DIFF_INTEGER_BITS), to F0 */
EK_INLINE int32_t ek_exp_on_negative_values_i5(int32_t a) {
  static const int32_t barrel[7] = {1672461947, 1302514674, 790015084, 290630308, 39332535, 720401, 242};
  const int32_t one_quarter = (int32_t)1 << 24;
  const int32_t a_mod_quarter_minus_one_quarter = ek_wrap_sub(a & (one_quarter - 1), one_quarter);
  const int32_t remainder = ek_wrap_sub(a_mod_quarter_minus_one_quarter, a);
  /* exp_on_interval_between_negative_one_quarter_and_0_excl of the F0 rescaled value */
  const int32_t x = ek_add_wrap((int32_t)((uint32_t)a_mod_quarter_minus_one_quarter << 5), (int32_t)1 << 28);
  const int32_t x2 = ek_srdhm(x, x);
  const int32_t x3 = ek_srdhm(x2, x);
  const int32_t x4_over_4 = ek_rdbpot(ek_srdhm(x2, x2), 2);
  const int32_t inner = ek_add_wrap(ek_srdhm(ek_add_wrap(x4_over_4, x3), 715827883), x2);
  int32_t result = ek_add_wrap(1895147668, ek_srdhm(1895147668, ek_add_wrap(x, ek_rdbpot(inner, 1))));
  int i;
  for (i = 0; i < 7; ++i)
    if (remainder & ((int32_t)1 << (24 + i))) result = ek_srdhm(result, barrel[i]);
  return a == 0 ? INT32_MAX : result;
}

/* exp(diff) for diff = x - max: from the table, or computed where there is none */
EK_INLINE int32_t ek_softmax_exp(const int32_t *exp_f0, int span, int32_t multiplier, int left_shift,
                                 int32_t diff) {
  if (diff < -span) return 0;
  if (exp_f0) return exp_f0[diff + span];
#if EK_SINGLE_ROUNDING
  {
    const int total_shift = 31 - left_shift;
    return ek_exp_on_negative_values_i5(
        (int32_t)(((int64_t)diff * multiplier + ((int64_t)1 << (total_shift - 1))) >> total_shift));
  }
#else
  return ek_exp_on_negative_values_i5(ek_srdhm((int32_t)((uint32_t)diff << left_shift), multiplier));
#endif
}

EK_INLINE void ek_softmax_s8(const int8_t *input, int8_t *output, const int32_t *exp_f0, int span,
                             int32_t multiplier, int left_shift, int rows, int depth) {
  int r, c;
  for (r = 0; r < rows; ++r) {
    const int8_t *x = input + r * depth;
    int8_t *y = output + r * depth;
    int32_t max_in_row = -128, sum = 0, shifted_scale;
    int headroom_plus_one, num_bits_over_unit, exponent;
    for (c = 0; c < depth; ++c) max_in_row = x[c] > max_in_row ? x[c] : max_in_row;
    for (c = 0; c < depth; ++c) sum = ek_add_wrap(sum, ek_rdbpot(ek_softmax_exp(exp_f0, span, multiplier, left_shift, x[c] - max_in_row), 12));
    headroom_plus_one = ek_clz32((uint32_t)sum);
    num_bits_over_unit = 12 - headroom_plus_one;
    shifted_scale = ek_one_over_one_plus_x(
        (int32_t)(((uint32_t)sum << headroom_plus_one) - ((uint32_t)1 << 31)));
    exponent = num_bits_over_unit + 31 - 8;
    for (c = 0; c < depth; ++c) {
      const int32_t e = ek_softmax_exp(exp_f0, span, multiplier, left_shift, x[c] - max_in_row);
      const int32_t unsat = ek_rdbpot(ek_srdhm(shifted_scale, e), exponent);
      y[c] = (int8_t)ek_clamp_i32(unsat - 128, -128, 127);
    }
  }
}

EK_INLINE void ek_softmax_f32(const float *input, float *output, int rows, int depth, float beta) {
  int r, c;
  for (r = 0; r < rows; ++r) {
    const float *x = input + r * depth;
    float *y = output + r * depth;
    float max_in_row = -3.402823466e+38f, sum = 0.0f;
    for (c = 0; c < depth; ++c) max_in_row = x[c] > max_in_row ? x[c] : max_in_row;
    for (c = 0; c < depth; ++c) {
      y[c] = expf((x[c] - max_in_row) * beta);
      sum += y[c];
    }
    for (c = 0; c < depth; ++c) y[c] = y[c] / sum;
  }
}

#endif /* EK_SOFTMAX_H */
