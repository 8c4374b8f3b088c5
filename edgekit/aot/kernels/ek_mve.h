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
 *   parameters are stored in that order at compile time, and VQMOVNB/VQMOVNT narrow
 *   the results back to bytes in channel order, saturating. Channel counts that are not a
 *   multiple of 16 end with a tail-predicated block (VCTP, zeroing loads).
 * - Requantization: TFLM's MultiplyByQuantizedMultiplier in the double
 *   rounding build (EK_SINGLE_ROUNDING 0) bit for bit, four lanes at a time:
 *   VQRDMULH is gemmlowp's SaturatingRoundingDoublingHighMul exactly
 *   (saturation included), and RoundingDivideByPOT (round half away from
 *   zero) is VRSHL (round half up) of x - 1 for negative x, the -1 taken only
 *   when the shift is nonzero: the sign bit of x AND -e. The single-rounding
 *   build keeps the scalar requantization.
 * - ADD: the DSP path's per-input tables read through gathers, four elements
 *   per step, requantized like the rest. */
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
 * acc0[oc] = bias[oc] + sum x0 * w_oc, acc1[oc] the same for x1. Per chunk and
 * group of four rows: two window loads, four row loads and eight VMLADAVA, 128
 * multiply-accumulates in 15 instructions with the loop's compare and branch
 * (two chunks per pass).
 * VMLADAVA accumulates into even registers only, and eight accumulators take
 * all of them (r0 to lr); gcc spilled its own allocation of this loop to the
 * stack, so optimized gcc builds call the assembly function below (ARM ABI:
 * q0-q3 and its own registers; the loop state on its stack). */
typedef struct {
  const int8_t *x0;
  const int8_t *x1;
  const int8_t *w;
  const int32_t *bias;
  int32_t *acc0;
  int32_t *acc1;
  int32_t x_bytes; /* 16 * k16 */
  int32_t groups;
} ek_mve_dot_job;

#if defined(__GNUC__) && defined(__OPTIMIZE__)
#define EK_MVE_DOT_ASM 1
/* chunk i of both windows (q0, q1) against chunk i of rows 0 to 3: pixel 0's sums in r0, r2,
 * r4, r6, pixel 1's in r8, r10, r12, lr */
#define EK_MVE_CHUNK                  \
  "vldrb.8 q0, [r1], #16\n\t"         \
  "vldrb.8 q1, [r3], #16\n\t"         \
  "vldrb.8 q2, [r5], #16\n\t"         \
  "vmladava.s8 r0, q0, q2\n\t"        \
  "vmladava.s8 r8, q1, q2\n\t"        \
  "vldrb.8 q3, [r5], #16\n\t"         \
  "vmladava.s8 r2, q0, q3\n\t"        \
  "vmladava.s8 r10, q1, q3\n\t"       \
  "vldrb.8 q2, [r5], #16\n\t"         \
  "vmladava.s8 r4, q0, q2\n\t"        \
  "vmladava.s8 r12, q1, q2\n\t"       \
  "vldrb.8 q3, [r5], #16\n\t"         \
  "vmladava.s8 r6, q0, q3\n\t"        \
  "vmladava.s8 lr, q1, q3\n\t"
/* both windows from their start, the accumulators from the group's bias (at acc0 + delta) */
#define EK_MVE_GROUP_START            \
  "ldrd r1, r3, [sp]\n\t"             \
  "ldr lr, [sp, #8]\n\t"              \
  "add lr, lr, r9\n\t"                \
  "ldm lr, {r0, r2, r4, r6}\n\t"      \
  "ldm lr, {r8, r10, r12, lr}\n\t"
/* the sums out; flags: NE while groups are left */
#define EK_MVE_GROUP_END              \
  "stm r9!, {r0, r2, r4, r6}\n\t"     \
  "stm r11!, {r8, r10, r12, lr}\n\t"  \
  "ldr r0, [sp, #12]\n\t"             \
  "cmp r5, r0\n\t"
__attribute__((naked, noinline, unused)) static void ek_mve_dot2x4_asm(
    const ek_mve_dot_job *job __attribute__((unused))) {
  __asm__(
      "push {r4-r11, lr}\n\t"
      "ldm r0, {r1-r8}\n\t" /* x0, x1, w, bias, acc0, acc1, x_bytes, groups */
      "mul r8, r8, r7\n\t"
      "add r8, r3, r8, lsl #2\n\t" /* the end of the rows */
      "sub r4, r4, r5\n\t"         /* bias - acc0: the bias of the group whose sums go to r9 */
      "push {r1, r2, r4, r8}\n\t"  /* [sp]: x0, x1, bias - acc0, end of the rows */
      "mov r9, r5\n\t"
      "mov r11, r6\n\t"
      "mov r5, r3\n\t"
      "tst r7, #16\n\t" /* an odd number of chunks: enter the two-chunk loop halfway */
      "add r7, r1, r7\n\t"
      "bne 20f\n\t"
      "10:\n\t" EK_MVE_GROUP_START
      "11:\n\t" EK_MVE_CHUNK EK_MVE_CHUNK
      "cmp r1, r7\n\t"
      "bne 11b\n\t" EK_MVE_GROUP_END
      "bne 10b\n\t"
      "b 30f\n\t"
      "20:\n\t" EK_MVE_GROUP_START
      "b 22f\n\t"
      "21:\n\t" EK_MVE_CHUNK
      "22:\n\t" EK_MVE_CHUNK
      "cmp r1, r7\n\t"
      "bne 21b\n\t" EK_MVE_GROUP_END
      "bne 20b\n\t"
      "30:\n\t"
      "add sp, sp, #16\n\t"
      "pop {r4-r11, pc}\n\t");
}
#undef EK_MVE_CHUNK
#undef EK_MVE_GROUP_START
#undef EK_MVE_GROUP_END
#else
#define EK_MVE_DOT_ASM 0
#endif

EK_INLINE void ek_mve_conv_dot2(const int8_t *x0, const int8_t *x1, const int8_t *w, int k16,
                                int out_c, const int32_t *bias, int32_t *acc0, int32_t *acc1) {
  int oc = 0, i;
#if EK_MVE_DOT_ASM
  if (out_c >= EK_MVE_ROWS && k16 > 0) {
    ek_mve_dot_job job;
    job.x0 = x0;
    job.x1 = x1;
    job.w = w;
    job.bias = bias;
    job.acc0 = acc0;
    job.acc1 = acc1;
    job.x_bytes = 16 * k16;
    job.groups = out_c / EK_MVE_ROWS;
    ek_mve_dot2x4_asm(&job);
    oc = out_c / EK_MVE_ROWS * EK_MVE_ROWS;
    w += (size_t)oc * (size_t)(16 * k16);
  }
#endif
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

/* One input row x (k16 chunks) against n rows grouped by four like a conv
 * filter's (ops/conv.py mve_groups): acc[o] = bias[o] + sum x * w_o. Each input
 * load feeds four VMLADAVA and one pointer walks the group's rows: ten
 * instructions per 64 multiply-accumulates with the loop's LE. */
EK_INLINE void ek_mve_fc_dot(const int8_t *x, const int8_t *w, int k16, int n,
                             const int32_t *bias, int32_t *acc) {
  int o = 0, i;
  for (; o + EK_MVE_ROWS <= n; o += EK_MVE_ROWS) {
    int32_t a0 = bias[o], a1 = bias[o + 1], a2 = bias[o + 2], a3 = bias[o + 3];
    const int8_t *p = x;
    for (i = 0; i < k16; ++i, p += 16, w += 64) {
      const int8x16_t v = vldrbq_s8(p);
      a0 = vmladavaq_s8(a0, v, vldrbq_s8(w));
      a1 = vmladavaq_s8(a1, v, vldrbq_s8(w + 16));
      a2 = vmladavaq_s8(a2, v, vldrbq_s8(w + 32));
      a3 = vmladavaq_s8(a3, v, vldrbq_s8(w + 48));
    }
    acc[o] = a0;
    acc[o + 1] = a1;
    acc[o + 2] = a2;
    acc[o + 3] = a3;
  }
  for (i = 0; i < (n & (EK_MVE_ROWS - 1)); ++i) { /* the rows past the last group */
    int32_t a = bias[o + i];
    int j;
    for (j = 0; j < k16; ++j, w += 16) a = vmladavaq_s8(a, vldrbq_s8(x + 16 * j), vldrbq_s8(w));
    acc[o + i] = a;
  }
}

/* n bytes from src to dst, 16 per load and store, the last block predicated */
EK_INLINE void ek_mve_copy(int8_t *dst, const int8_t *src, int n) {
  int i = 0;
  for (; i + 16 <= n; i += 16) vstrbq_s8(dst + i, vldrbq_s8(src + i));
  if (i < n) {
    const mve_pred16_t p = vctp8q((uint32_t)(n - i));
    vstrbq_p_s8(dst + i, vldrbq_z_s8(src + i, p), p);
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

/* Two pixels' rows of n accumulators requantized per channel (ek_mve_requantize with
 * per-channel parameters): each load of a channel block's parameters serves both. */
EK_INLINE void ek_mve_requantize_pair(const int32_t *acc0, const int32_t *acc1,
                                      const int32_t *multiplier, const int32_t *shift,
                                      int right_only, int8_t *out0, int8_t *out1, int n,
                                      int32_t offset, int32_t act_min, int32_t act_max) {
  const int32x4_t lo = vdupq_n_s32(act_min), hi = vdupq_n_s32(act_max);
  int i = 0;
  if (EK_SINGLE_ROUNDING) {
    ek_requantize_s8(acc0, multiplier, shift, 1, right_only, out0, n, offset, act_min, act_max);
    ek_requantize_s8(acc1, multiplier, shift, 1, right_only, out1, n, offset, act_min, act_max);
    return;
  }
  for (; i + 4 <= n; i += 4) {
    const int32x4_t m = vldrwq_s32(multiplier + i), s = vldrwq_s32(shift + i);
    vstrbq_s32(out0 + i, vminq_s32(vmaxq_s32(vaddq_n_s32(ek_mve_mbqm(vldrwq_s32(acc0 + i), m, s, right_only), offset), lo), hi));
    vstrbq_s32(out1 + i, vminq_s32(vmaxq_s32(vaddq_n_s32(ek_mve_mbqm(vldrwq_s32(acc1 + i), m, s, right_only), offset), lo), hi));
  }
  if (i < n) {
    const mve_pred16_t p = vctp32q((uint32_t)(n - i));
    const int32x4_t m = vldrwq_z_s32(multiplier + i, p), s = vldrwq_z_s32(shift + i, p);
    vstrbq_p_s32(out0 + i, vminq_s32(vmaxq_s32(vaddq_n_s32(ek_mve_mbqm(vldrwq_z_s32(acc0 + i, p), m, s, right_only), offset), lo), hi), p);
    vstrbq_p_s32(out1 + i, vminq_s32(vmaxq_s32(vaddq_n_s32(ek_mve_mbqm(vldrwq_z_s32(acc1 + i, p), m, s, right_only), offset), lo), hi), p);
  }
}

/* ADD on the DSP path's tables (kernels/ek_add.h): y[i] = clamp(MBQM(a_terms[a[i] + 128]
 * + b_terms[b[i] + 128], y_mult, y_shift) + y_offset), four elements per step. The
 * inputs load sign-extended into int32 lanes and index the tables through gathers
 * based at entry 128 (a negative offset wraps the 32-bit address back into the
 * table); y_shift <= 0. Elements go in order, four read before four are written,
 * so y may be a or b. */
EK_INLINE void ek_mve_add_s8(const int8_t *a, const int8_t *b, int8_t *y, int n,
                             const int32_t *a_terms, const int32_t *b_terms, int32_t y_mult,
                             int y_shift, int32_t y_offset, int32_t act_min, int32_t act_max) {
  const int32x4_t m = vdupq_n_s32(y_mult), s = vdupq_n_s32(y_shift);
  const int32x4_t lo = vdupq_n_s32(act_min), hi = vdupq_n_s32(act_max);
  const int32_t *ta = a_terms + 128, *tb = b_terms + 128;
  int i = 0;
  for (; i + 4 <= n; i += 4) {
    const int32x4_t sum =
        vaddq_s32(vldrwq_gather_shifted_offset_s32(ta, vreinterpretq_u32_s32(vldrbq_s32(a + i))),
                  vldrwq_gather_shifted_offset_s32(tb, vreinterpretq_u32_s32(vldrbq_s32(b + i))));
    vstrbq_s32(y + i, vminq_s32(vmaxq_s32(vaddq_n_s32(ek_mve_mbqm(sum, m, s, 1), y_offset), lo), hi));
  }
  if (i < n) {
    const mve_pred16_t p = vctp32q((uint32_t)(n - i));
    const int32x4_t sum = vaddq_s32(
        vldrwq_gather_shifted_offset_z_s32(ta, vreinterpretq_u32_s32(vldrbq_z_s32(a + i, p)), p),
        vldrwq_gather_shifted_offset_z_s32(tb, vreinterpretq_u32_s32(vldrbq_z_s32(b + i, p)), p));
    vstrbq_p_s32(y + i, vminq_s32(vmaxq_s32(vaddq_n_s32(ek_mve_mbqm(sum, m, s, 1), y_offset), lo), hi), p);
  }
}

/* One block of up to 16 channels c.. of a depthwise output pixel (depth multiplier 1):
 * taps[t] + c is tap t's input, filter + t * out_c + c its weights; `bias`,
 * `multiplier` and `shift` hold this block's 16 values in lane order
 * (ops/conv.py mve_lane_order: channel 4j + (0, 2, 1, 3)[q] at 4q + j, zero past the
 * last channel). `full` (a constant at each call) when all 16 channels exist;
 * else the n < 16 channels left are loaded and stored predicated. */
EK_INLINE void ek_mve_depthwise_block(const int8_t *const *taps, int n_taps, const int8_t *filter,
                                      int out_c, int c, int n, const int32_t *bias,
                                      const int32_t *multiplier, const int32_t *shift,
                                      int right_only, int8_t *out, int32_t offset, int32_t act_min,
                                      int32_t act_max, int full) {
  const mve_pred16_t p8 = full ? (mve_pred16_t)0xffff : vctp8q((uint32_t)n);
  int32x4_t a0 = vldrwq_s32(bias), a1 = vldrwq_s32(bias + 4), a2 = vldrwq_s32(bias + 8),
            a3 = vldrwq_s32(bias + 12);
  int16x8_t e16, o16;
  int8x16_t bytes;
  int t;
  /* not unrolled: gcc's schedule of the unrolled taps spilled vectors to the stack */
#pragma GCC unroll 1
  for (t = 0; t < n_taps; ++t) {
    const int8x16_t x = full ? vldrbq_s8(taps[t] + c) : vldrbq_z_s8(taps[t] + c, p8);
    const int8x16_t w = full ? vldrbq_s8(filter + t * out_c + c) : vldrbq_z_s8(filter + t * out_c + c, p8);
    const int16x8_t pe = vmullbq_int_s8(x, w), po = vmulltq_int_s8(x, w);
    a0 = vaddq_s32(a0, vmovlbq_s16(pe)); /* channels 0, 4, 8, 12 */
    a1 = vaddq_s32(a1, vmovltq_s16(pe)); /* 2, 6, 10, 14 */
    a2 = vaddq_s32(a2, vmovlbq_s16(po)); /* 1, 5, 9, 13 */
    a3 = vaddq_s32(a3, vmovltq_s16(po)); /* 3, 7, 11, 15 */
  }
#define EK_MVE_DW_RQ(a, k)                                                                        \
  vaddq_n_s32(ek_mve_mbqm(a, vldrwq_s32(multiplier + 4 * (k)), vldrwq_s32(shift + 4 * (k)), right_only), \
              offset)
  /* back to channel order, saturating to int8 on the way (the activation range's outer
   * bounds): even channels into the even halfwords, odd into the odd, then bytes */
  e16 = vqmovnbq_s32(vdupq_n_s16(0), EK_MVE_DW_RQ(a0, 0));
  e16 = vqmovntq_s32(e16, EK_MVE_DW_RQ(a1, 1));
  o16 = vqmovnbq_s32(vdupq_n_s16(0), EK_MVE_DW_RQ(a2, 2));
  o16 = vqmovntq_s32(o16, EK_MVE_DW_RQ(a3, 3));
#undef EK_MVE_DW_RQ
  bytes = vqmovntq_s16(vqmovnbq_s16(vdupq_n_s8(0), e16), o16);
  if (act_min > -128) bytes = vmaxq_s8(bytes, vdupq_n_s8((int8_t)act_min));
  if (act_max < 127) bytes = vminq_s8(bytes, vdupq_n_s8((int8_t)act_max));
  if (full)
    vstrbq_s8(out + c, bytes);
  else
    vstrbq_p_s8(out + c, bytes, p8);
}

/* A depthwise output pixel, depth multiplier 1: every block of 16 channels, then the rest.
 * `bias`, `multiplier` and `shift` are in lane order, 16 values per block. */
EK_INLINE void ek_mve_depthwise_pixel(const int8_t *const *taps, int n_taps, const int8_t *filter,
                                      int out_c, const int32_t *bias, const int32_t *multiplier,
                                      const int32_t *shift, int right_only, int8_t *out,
                                      int32_t offset, int32_t act_min, int32_t act_max) {
  int c = 0;
  for (; c + 16 <= out_c; c += 16)
    ek_mve_depthwise_block(taps, n_taps, filter, out_c, c, 16, bias + c, multiplier + c, shift + c,
                           right_only, out, offset, act_min, act_max, 1);
  if (c < out_c)
    ek_mve_depthwise_block(taps, n_taps, filter, out_c, c, out_c - c, bias + c, multiplier + c,
                           shift + c, right_only, out, offset, act_min, act_max, 0);
}
#endif /* EK_MVE */

#endif /* EK_MVE_H */
