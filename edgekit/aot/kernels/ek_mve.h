/* ek_mve.h: the Helium (MVE) path of the int8 kernels, for Armv8.1-M cores with the
 * M-profile vector extension (Cortex-M55, M85).
 *
 * EK_MVE is 1 when the target has `mve` and the C compiler defines
 * __ARM_FEATURE_MVE (the bundle's .c decides, codegen.py); otherwise this
 * header is empty and the kernels keep their DSP or portable paths. The
 * compiler lays the weights out for both at once (const_array_layouts on
 * EK_MVE), so one bundle is right whichever the compiler takes.
 *
 * One vector is 128 bits: 16 int8 or 4 int32 lanes. Every MVE core has the
 * DSP extension too, so EK_DOT_BIAS is 0 here and the dot products multiply
 * signed bytes by signed bytes.
 *
 * - Dot products (conv, fully connected): VMLADAVA multiplies 16 byte pairs
 *   and adds all 16 products to a scalar accumulator, one instruction per 16
 *   multiply-accumulates. Rows are zero-padded to whole 16-byte chunks at
 *   compile time (ops/conv.py dot_length), so there is no tail.
 * - Depthwise: 16 channels per vector. VMULLB/VMULLT multiply the even and the
 *   odd bytes into int16 (exact: |x * w| <= 2^14), VMOVLB/VMOVLT widen them
 *   into four int32 accumulators, whose lanes hold the channels in the order
 *   {0,4,8,12}, {2,6,10,14}, {1,5,9,13}, {3,7,11,15}; bias and requantization
 *   parameters are gathered in that order, and VMOVNB/VMOVNT narrow the
 *   results back to bytes in channel order. Channel counts that are not a
 *   multiple of 16 end with a tail-predicated block (VCTP, zeroing loads).
 * - Requantization: TFLM's MultiplyByQuantizedMultiplier in the double
 *   rounding build (EK_SINGLE_ROUNDING 0) bit for bit, four lanes at a time:
 *   VQRDMULH is gemmlowp's SaturatingRoundingDoublingHighMul exactly
 *   (saturation included), and RoundingDivideByPOT (round half away from
 *   zero) is VRSHL (round half up) of x - 1 for negative x, the -1 taken only
 *   when the shift is nonzero: the sign bit of x AND -e. The single-rounding
 *   build keeps the scalar requantization. */
#ifndef EK_MVE_H
#define EK_MVE_H

#ifndef EK_MVE
#define EK_MVE 0
#endif

#if EK_MVE
#include <arm_mve.h>

#if !EK_USE_DSP
#error "the MVE path takes EK_DOT_BIAS 0 from the DSP path (every MVE core has the DSP extension)"
#endif

/* Rows of a conv filter are grouped by four (ops/conv.py mve_groups): in group g,
 * chunk i of rows 4g..4g+3 is 64 contiguous bytes, so one pointer walks all four;
 * the rows past the last group follow plainly. */
#define EK_MVE_ROWS 4

/* Two windows x0, x1 (k16 chunks of 16 bytes) against every filter row:
 * acc0[oc] = bias[oc] + sum x0 * w_oc, acc1[oc] the same for x1. Per chunk: two
 * window loads, four row loads and eight VMLADAVA, 128 multiply-accumulates. */
EK_INLINE void ek_mve_conv_dot2(const int8_t *x0, const int8_t *x1, const int8_t *w, int k16,
                                int out_c, const int32_t *bias, int32_t *acc0, int32_t *acc1) {
  int oc = 0, i;
  for (; oc + EK_MVE_ROWS <= out_c; oc += EK_MVE_ROWS) {
    int32_t a0 = bias[oc], a1 = bias[oc + 1], a2 = bias[oc + 2], a3 = bias[oc + 3];
    int32_t b0 = a0, b1 = a1, b2 = a2, b3 = a3;
    const int8_t *p0 = x0, *p1 = x1;
    for (i = 0; i < k16; ++i, p0 += 16, p1 += 16, w += 64) {
      const int8x16_t v0 = vldrbq_s8(p0), v1 = vldrbq_s8(p1);
      int8x16_t r = vldrbq_s8(w);
      a0 = vmladavaq_s8(a0, v0, r);
      b0 = vmladavaq_s8(b0, v1, r);
      r = vldrbq_s8(w + 16);
      a1 = vmladavaq_s8(a1, v0, r);
      b1 = vmladavaq_s8(b1, v1, r);
      r = vldrbq_s8(w + 32);
      a2 = vmladavaq_s8(a2, v0, r);
      b2 = vmladavaq_s8(b2, v1, r);
      r = vldrbq_s8(w + 48);
      a3 = vmladavaq_s8(a3, v0, r);
      b3 = vmladavaq_s8(b3, v1, r);
    }
    acc0[oc] = a0;
    acc0[oc + 1] = a1;
    acc0[oc + 2] = a2;
    acc0[oc + 3] = a3;
    acc1[oc] = b0;
    acc1[oc + 1] = b1;
    acc1[oc + 2] = b2;
    acc1[oc + 3] = b3;
  }
  for (; oc < out_c; ++oc) {
    int32_t a = bias[oc], b = bias[oc];
    for (i = 0; i < k16; ++i, w += 16) {
      const int8x16_t r = vldrbq_s8(w);
      a = vmladavaq_s8(a, vldrbq_s8(x0 + 16 * i), r);
      b = vmladavaq_s8(b, vldrbq_s8(x1 + 16 * i), r);
    }
    acc0[oc] = a;
    acc1[oc] = b;
  }
}

/* One input row x (k16 chunks) against n plain rows of k_pad bytes (TFLM's
 * [out][depth] layout, padded): acc[o] = bias[o] + sum x * w_o, four rows per
 * pass so each input load feeds four VMLADAVA; a ragged end recomputes the last
 * four rows (fewer than four rows go one by one). */
EK_INLINE void ek_mve_fc_dot(const int8_t *x, const int8_t *w, int k16, int k_pad, int n,
                             const int32_t *bias, int32_t *acc) {
  int o, i;
  if (n < 4) {
    for (o = 0; o < n; ++o) {
      const int8_t *wo = w + (size_t)o * (size_t)k_pad;
      int32_t a = bias[o];
      for (i = 0; i < 16 * k16; i += 16) a = vmladavaq_s8(a, vldrbq_s8(x + i), vldrbq_s8(wo + i));
      acc[o] = a;
    }
    return;
  }
  for (o = 0; o < n; o += 4) {
    const int first = o + 4 <= n ? o : n - 4;
    const int8_t *w0 = w + (size_t)first * (size_t)k_pad, *w1 = w0 + k_pad, *w2 = w1 + k_pad,
                 *w3 = w2 + k_pad;
    int32_t a0 = bias[first], a1 = bias[first + 1], a2 = bias[first + 2], a3 = bias[first + 3];
    for (i = 0; i < 16 * k16; i += 16) {
      const int8x16_t v = vldrbq_s8(x + i);
      a0 = vmladavaq_s8(a0, v, vldrbq_s8(w0 + i));
      a1 = vmladavaq_s8(a1, v, vldrbq_s8(w1 + i));
      a2 = vmladavaq_s8(a2, v, vldrbq_s8(w2 + i));
      a3 = vmladavaq_s8(a3, v, vldrbq_s8(w3 + i));
    }
    acc[first] = a0;
    acc[first + 1] = a1;
    acc[first + 2] = a2;
    acc[first + 3] = a3;
  }
}

/* MultiplyByQuantizedMultiplier (double rounding) on four lanes; `right_only` (a
 * constant at every call) when every shift s is <= 0. */
EK_INLINE int32x4_t ek_mve_mbqm(int32x4_t x, int32x4_t m, int32x4_t s, int right_only) {
  if (!right_only) { /* the left part of the shift first, wrapping like the scalar code */
    x = vshlq_s32(x, vmaxq_s32(s, vdupq_n_s32(0)));
    s = vminq_s32(s, vdupq_n_s32(0));
  }
  x = vqrdmulhq_s32(x, m);
  /* -1 for negative x where s < 0: then VRSHL's half-up rounding rounds half away from zero */
  x = vqaddq_s32(x, vshrq_n_s32(vandq_s32(x, s), 31));
  return vrshlq_s32(x, s);
}

/* + offset, clamped to the activation range (within int8) */
EK_INLINE int32x4_t ek_mve_finish(int32x4_t x, int32x4_t offset, int32x4_t lo, int32x4_t hi) {
  return vminq_s32(vmaxq_s32(vaddq_s32(x, offset), lo), hi);
}

/* ek_requantize_s8 on the vector unit: n accumulators, four per step, the last step
 * tail-predicated. */
EK_INLINE void ek_mve_requantize(const int32_t *acc, const int32_t *multiplier, const int32_t *shift,
                                 int per_channel, int right_only, int8_t *out, int n,
                                 int32_t offset, int32_t act_min, int32_t act_max) {
  const int32x4_t off = vdupq_n_s32(offset), lo = vdupq_n_s32(act_min), hi = vdupq_n_s32(act_max);
  int32x4_t m = vdupq_n_s32(multiplier[0]), s = vdupq_n_s32(shift[0]);
  int i = 0;
  if (EK_SINGLE_ROUNDING) { /* its vector form is not written: the scalar loop */
    ek_requantize_s8(acc, multiplier, shift, per_channel, right_only, out, n, offset, act_min, act_max);
    return;
  }
  for (; i + 4 <= n; i += 4) {
    if (per_channel) {
      m = vldrwq_s32(multiplier + i);
      s = vldrwq_s32(shift + i);
    }
    vstrbq_s32(out + i, ek_mve_finish(ek_mve_mbqm(vldrwq_s32(acc + i), m, s, right_only), off, lo, hi));
  }
  if (i < n) {
    const mve_pred16_t p = vctp32q((uint32_t)(n - i));
    if (per_channel) {
      m = vldrwq_z_s32(multiplier + i, p);
      s = vldrwq_z_s32(shift + i, p);
    }
    vstrbq_p_s32(out + i,
                 ek_mve_finish(ek_mve_mbqm(vldrwq_z_s32(acc + i, p), m, s, right_only), off, lo, hi), p);
  }
}

/* One block of up to 16 channels of a depthwise output pixel (depth multiplier 1):
 * taps[t] + c is tap t's input, filter + t * out_c + c its weights. `full` (a constant
 * at each call) when all 16 channels exist; else the n < 16 channels left are
 * predicated. */
EK_INLINE void ek_mve_depthwise_block(const int8_t *const *taps, int n_taps, const int8_t *filter,
                                      int out_c, int c, int n, const int32_t *bias,
                                      const int32_t *multiplier, const int32_t *shift,
                                      int right_only, int8_t *out, int32_t offset, int32_t act_min,
                                      int32_t act_max, int full) {
  /* lane j of accumulator q is channel c + 4j + lane_of[q] */
  const uint32x4_t fours = vidupq_n_u32(0, 4); /* 0, 4, 8, 12 */
  const uint32x4_t o0 = fours, o1 = vaddq_n_u32(fours, 2), o2 = vaddq_n_u32(fours, 1),
                   o3 = vaddq_n_u32(fours, 3);
  const uint32x4_t left = vdupq_n_u32((uint32_t)n);
  const mve_pred16_t p8 = full ? (mve_pred16_t)0xffff : vctp8q((uint32_t)n);
  const mve_pred16_t q0 = full ? (mve_pred16_t)0xffff : vcmphiq_u32(left, o0);
  const mve_pred16_t q1 = full ? (mve_pred16_t)0xffff : vcmphiq_u32(left, o1);
  const mve_pred16_t q2 = full ? (mve_pred16_t)0xffff : vcmphiq_u32(left, o2);
  const mve_pred16_t q3 = full ? (mve_pred16_t)0xffff : vcmphiq_u32(left, o3);
  const int32x4_t off = vdupq_n_s32(offset), lo = vdupq_n_s32(act_min), hi = vdupq_n_s32(act_max);
  int32x4_t a0, a1, a2, a3;
  int16x8_t e16, o16;
  int8x16_t bytes;
  int t;
  if (full) {
    a0 = vldrwq_gather_shifted_offset_s32(bias + c, o0);
    a1 = vldrwq_gather_shifted_offset_s32(bias + c, o1);
    a2 = vldrwq_gather_shifted_offset_s32(bias + c, o2);
    a3 = vldrwq_gather_shifted_offset_s32(bias + c, o3);
  } else {
    a0 = vldrwq_gather_shifted_offset_z_s32(bias + c, o0, q0);
    a1 = vldrwq_gather_shifted_offset_z_s32(bias + c, o1, q1);
    a2 = vldrwq_gather_shifted_offset_z_s32(bias + c, o2, q2);
    a3 = vldrwq_gather_shifted_offset_z_s32(bias + c, o3, q3);
  }
  for (t = 0; t < n_taps; ++t) {
    const int8x16_t x = full ? vldrbq_s8(taps[t] + c) : vldrbq_z_s8(taps[t] + c, p8);
    const int8x16_t w = full ? vldrbq_s8(filter + t * out_c + c) : vldrbq_z_s8(filter + t * out_c + c, p8);
    const int16x8_t pe = vmullbq_int_s8(x, w), po = vmulltq_int_s8(x, w);
    a0 = vaddq_s32(a0, vmovlbq_s16(pe));
    a1 = vaddq_s32(a1, vmovltq_s16(pe));
    a2 = vaddq_s32(a2, vmovlbq_s16(po));
    a3 = vaddq_s32(a3, vmovltq_s16(po));
  }
#define EK_MVE_DW_RQ(a, o, q)                                                                   \
  a = ek_mve_finish(                                                                            \
      ek_mve_mbqm(a,                                                                            \
                  full ? vldrwq_gather_shifted_offset_s32(multiplier + c, o)                    \
                       : vldrwq_gather_shifted_offset_z_s32(multiplier + c, o, q),              \
                  full ? vldrwq_gather_shifted_offset_s32(shift + c, o)                         \
                       : vldrwq_gather_shifted_offset_z_s32(shift + c, o, q),                   \
                  right_only),                                                                  \
      off, lo, hi)
  EK_MVE_DW_RQ(a0, o0, q0);
  EK_MVE_DW_RQ(a1, o1, q1);
  EK_MVE_DW_RQ(a2, o2, q2);
  EK_MVE_DW_RQ(a3, o3, q3);
#undef EK_MVE_DW_RQ
  /* back to channel order: even channels into the even halfwords, then bytes */
  e16 = vmovntq_s32(vmovnbq_s32(vdupq_n_s16(0), a0), a1);
  o16 = vmovntq_s32(vmovnbq_s32(vdupq_n_s16(0), a2), a3);
  bytes = vmovntq_s16(vmovnbq_s16(vdupq_n_s8(0), e16), o16);
  if (full)
    vstrbq_s8(out + c, bytes);
  else
    vstrbq_p_s8(out + c, bytes, p8);
}

/* A depthwise output pixel, depth multiplier 1: every block of 16 channels, then the rest. */
EK_INLINE void ek_mve_depthwise_pixel(const int8_t *const *taps, int n_taps, const int8_t *filter,
                                      int out_c, const int32_t *bias, const int32_t *multiplier,
                                      const int32_t *shift, int right_only, int8_t *out,
                                      int32_t offset, int32_t act_min, int32_t act_max) {
  int c = 0;
  for (; c + 16 <= out_c; c += 16)
    ek_mve_depthwise_block(taps, n_taps, filter, out_c, c, 16, bias, multiplier, shift, right_only,
                           out, offset, act_min, act_max, 1);
  if (c < out_c)
    ek_mve_depthwise_block(taps, n_taps, filter, out_c, c, out_c - c, bias, multiplier, shift,
                           right_only, out, offset, act_min, act_max, 0);
}
#endif /* EK_MVE */

#endif /* EK_MVE_H */
