/* ek_conv_taps.h: int8 CONV_2D one window tap at a time, without copying windows, and
 * the same fused with the ADD that consumes its output (a ResNet block's last conv).
 *
 * The arithmetic of ek_conv_s8 (TFLM's ConvPerChannel; `folded_bias` holds
 * bias + input_offset * sum(w), doubled where the DSP path's int16 filters are stored
 * doubled for ek_rq), in another order: output pixels go in pairs, and each tap of the
 * pair's windows (in_c bytes per pixel) is multiplied into the pair's accumulators,
 * which live in `acc` (scratch) between taps. No window is copied, so the scratch is the
 * accumulators plus, on the DSP path, one tap of the pair widened to int16:
 * 8 * out_c + 4 * in_c bytes (192 B for 16 channels in and out, where ek_conv_s8's
 * windows take 992 B). A tap outside the image reads `zero_tap` (in_c bytes of the
 * input zero point, where x + input_offset is 0: exactly the reference's skipping).
 * Accumulators are stored [group of 4 channels][pixel][4].
 *
 * `residual` (NULL when not fused): the other input of the ADD that takes this
 * convolution's output. Each requantized value v then becomes ADD(v, residual[i])
 * (ADD(residual[i], v) with `residual_first`) through ek_add_one_s8 with that ADD's
 * parameters, and the ADD's output is what is written. residual[i] is read just before
 * output[i] is written, so the output may lie over the residual (lag 0); a pair of
 * pixels is written only after both windows were read, so it may lie over the input at
 * ek_conv_s8's lag (edgekit/aot/inplace.py).
 *
 * On the DSP path `filter` is int16 (ops/conv.py taps_dsp_filter: for each tap, its
 * in_c columns of every row as smlad_groups lays them out) and in_c % 8 == 0; elsewhere
 * int8 rows [out_c][k_h * k_w * in_c]. out_c % 4 == 0 on every path. */
#ifndef EK_CONV_TAPS_H
#define EK_CONV_TAPS_H

/* taps of a window (ops/conv.py TAPS_MAX): a pair's tap pointers live on the stack, as
 * ek_depthwise_conv_s8's do */
#define EK_TAPS_MAX 32

#if EK_USE_DSP && defined(__GNUC__) && defined(__OPTIMIZE__) && defined(__thumb2__)
#define EK_TAPS_ASM 1
typedef struct {
  const int8_t *const *taps;     /* per tap, the input of pixel 0 and of pixel 1 */
  const int8_t *const *taps_end;
  const int32_t *w;              /* the whole filter, tap by tap */
  const int32_t *bias;           /* the folded bias */
  int32_t *acc;                  /* [group][pixel][4] */
  int32_t *xq;                   /* 4 * in_c bytes: the tap of both pixels, widened */
  int32_t *xq_end;               /* xq + in_c */
  int32_t w_tap_bytes;           /* 2 * out_c * in_c */
  const int32_t *bias_end;       /* bias + out_c */
} ek_taps_job;

/* A pixel pair's window, tap by tap (in_c % 8 == 0, out_c % 4 == 0). The accumulators
 * start as a copy of the bias. Each tap of both pixels is widened into xq as
 * ek_widen_q15_pair lays it out (8 bytes of each pixel per pass: four LDRs, eight
 * SXTB16s, two STMs); then for every group of four rows the eight accumulators are
 * loaded (LDM), and per word of the tap one LDRD of both pixels, two LDRDs of the four
 * rows and eight SMLADs (ek_dot2x4_q15's 11 instructions per 16 multiply-accumulates),
 * WORDS words (2 * WORDS channels) per pass, and stored back (STM). The loop state lives
 * on the stack: the fourteen registers are all in the inner loop. */
#define EK_TAPS_PAIR_ASM_TEXT(WORDS, PASS_END) \
  "push {r0, r4-r11, lr}\n\t" \
  "ldr r4, [r0, #12]\n\t" \
  "ldr r12, [r0, #16]\n\t" \
  "ldr r5, [r0, #32]\n\t" \
  "5:\n\t"                        /* both pixels' accumulators start from the bias */ \
  "ldm r4!, {r0-r3}\n\t" \
  "stm r12!, {r0-r3}\n\t" \
  "stm r12!, {r0-r3}\n\t" \
  "cmp r4, r5\n\t" \
  "bne 5b\n\t" \
  "ldr r0, [sp]\n\t" \
  "ldm r0, {r1-r3}\n\t"           /* taps, taps end, w */ \
  "ldr r4, [r0, #16]\n\t"         /* acc, xq, xq end, w bytes per tap */ \
  "ldr r5, [r0, #20]\n\t" \
  "ldr r6, [r0, #24]\n\t" \
  "ldr r7, [r0, #28]\n\t" \
  "sub sp, sp, #8\n\t" \
  "push {r1, r2, r4, r5, r6, r7}\n\t" \
  /* [sp]: taps, taps end, acc, xq, xq end, w bytes per tap, w end of the tap, acc cursor */ \
  "mov r1, r3\n\t" \
  "3:\n\t" \
  "ldr r0, [sp]\n\t" \
  "ldm r0!, {r2, r3}\n\t"         /* this tap of pixels 0 and 1 */ \
  "str r0, [sp]\n\t" \
  "ldr r0, [sp, #12]\n\t" \
  "ldr r12, [sp, #16]\n\t" \
  "4:\n\t" \
  "ldr r4, [r2], #4\n\t"          /* LDR: the input may be unaligned */ \
  "ldr r5, [r2], #4\n\t" \
  "ldr r6, [r3], #4\n\t" \
  "ldr r7, [r3], #4\n\t" \
  "sxtb16 r8, r4\n\t" \
  "sxtb16 r9, r6\n\t" \
  "sxtb16 r10, r4, ror #8\n\t" \
  "sxtb16 r11, r6, ror #8\n\t" \
  "stm r0!, {r8-r11}\n\t" \
  "sxtb16 r8, r5\n\t" \
  "sxtb16 r9, r7\n\t" \
  "sxtb16 r10, r5, ror #8\n\t" \
  "sxtb16 r11, r7, ror #8\n\t" \
  "stm r0!, {r8-r11}\n\t" \
  "cmp r0, r12\n\t" \
  "bne 4b\n\t" \
  "ldr r12, [sp, #20]\n\t" \
  "add r12, r1, r12\n\t" \
  "str r12, [sp, #24]\n\t" \
  "ldr r12, [sp, #8]\n\t" \
  "str r12, [sp, #28]\n\t" \
  "2:\n\t" \
  "ldr r2, [sp, #28]\n\t" \
  "ldm r2, {r4-r11}\n\t"          /* the group's accumulators: pixel 0 r4-r7, pixel 1 r8-r11 */ \
  "ldr r0, [sp, #12]\n\t" \
  "1:\n\t" \
  ".rept " #WORDS "\n\t" \
  "ldrd r2, r3, [r0], #8\n\t"     /* word j of pixels 0 and 1 */ \
  "ldrd r12, lr, [r1], #8\n\t"    /* word j of rows 0 and 1 */ \
  "smlad r4, r2, r12, r4\n\t" \
  "smlad r8, r3, r12, r8\n\t" \
  "smlad r5, r2, lr, r5\n\t" \
  "smlad r9, r3, lr, r9\n\t" \
  "ldrd r12, lr, [r1], #8\n\t"    /* rows 2 and 3 */ \
  "smlad r6, r2, r12, r6\n\t" \
  "smlad r10, r3, r12, r10\n\t" \
  "smlad r7, r2, lr, r7\n\t" \
  "smlad r11, r3, lr, r11\n\t" \
  ".endr\n\t" \
  PASS_END \
  "ldr r2, [sp, #28]\n\t" \
  "stm r2!, {r4-r11}\n\t" \
  "str r2, [sp, #28]\n\t" \
  "ldr r12, [sp, #24]\n\t" \
  "cmp r1, r12\n\t" \
  "bne 2b\n\t" \
  "ldr r0, [sp]\n\t" \
  "ldr r12, [sp, #4]\n\t" \
  "cmp r0, r12\n\t" \
  "bne 3b\n\t" \
  "add sp, sp, #32\n\t" \
  "pop {r0, r4-r11, pc}\n\t"

#define EK_TAPS_PASS_END "ldr r12, [sp, #16]\n\tcmp r0, r12\n\tbne 1b\n\t"

__attribute__((naked, noinline, unused)) static void ek_taps_pair_asm(
    const ek_taps_job *job __attribute__((unused))) {
  __asm__(EK_TAPS_PAIR_ASM_TEXT(8, EK_TAPS_PASS_END));
}

/* in_c == 16: a tap is one pass of eight words, no check of its end */
__attribute__((naked, noinline, unused)) static void ek_taps_pair16_asm(
    const ek_taps_job *job __attribute__((unused))) {
  __asm__(EK_TAPS_PAIR_ASM_TEXT(8, ""));
}

/* in_c an odd multiple of 8 (MobileNetV2's 8, 24 and 56): passes of four words */
__attribute__((naked, noinline, unused)) static void ek_taps_pair8_asm(
    const ek_taps_job *job __attribute__((unused))) {
  __asm__(EK_TAPS_PAIR_ASM_TEXT(4, EK_TAPS_PASS_END));
}
#else
#define EK_TAPS_ASM 0
#endif

/* The taps of a window that reaches past the image (every other element of `taps`): one
 * function for every call, neither inlined nor cloned per call (gcc's clones, specialized
 * for each call's shape, cost 1.5 KB of flash on ResNet-8 for 0.3% of its instructions),
 * since few windows touch the edge. */
#if defined(__GNUC__) && !defined(__clang__)
__attribute__((noinline, noclone, unused))
#elif defined(__GNUC__)
__attribute__((noinline, unused))
#endif
static void ek_taps_at_edge(const int8_t **taps, const int8_t *base, const int8_t *zero_tap,
                            int y0, int x0, int in_h, int in_w, int in_c, int k_h, int k_w,
                            int dil_h, int dil_w) {
  int ky, kx;
  for (ky = 0; ky < k_h; ++ky) {
    const int y = y0 + dil_h * ky;
    const int row_inside = y >= 0 && y < in_h;
    for (kx = 0; kx < k_w; ++kx, taps += 2) {
      const int x = x0 + dil_w * kx;
      *taps = row_inside && x >= 0 && x < in_w ? base + (y * in_w + x) * in_c : zero_tap;
    }
  }
}

EK_INLINE void ek_conv_taps_s8(
    const int8_t *input, const void *filter, const int32_t *folded_bias,
    const int32_t *multiplier, const int32_t *shift, int rq, int rq_scale,
    const int8_t *zero_tap, int8_t *output, int32_t *acc, int batches, int in_h, int in_w,
    int in_c, int out_h, int out_w, int out_c, int k_h, int k_w, int stride_h, int stride_w,
    int dil_h, int dil_w, int pad_h, int pad_w, int32_t output_offset, int32_t act_min,
    int32_t act_max, int right_shifts_only, const int8_t *residual, int residual_first,
    const int32_t *a_terms, const int32_t *b_terms, int32_t a_offset, int32_t a_mult,
    int a_shift, int32_t b_offset, int32_t b_mult, int b_shift, int left_shift, int32_t y_mult,
    int y_shift, int32_t y_offset, int32_t add_min, int32_t add_max, int add_shifts) {
  const int pixels = batches * out_h * out_w;
  const int groups = out_c / 4;
  int q, p, t, oc, g, c;
  const int8_t *taps[2 * EK_TAPS_MAX];
#if EK_USE_DSP
  int32_t *xq = acc + 8 * groups; /* one tap of the pair, widened */
#else
  const int k_len = k_h * k_w * in_c;
#endif
  for (q = 0; q < pixels; q += 2) {
    const int npix = pixels - q < 2 ? 1 : 2;
    int y0[2], x0[2];
    const int8_t *base[2];
    for (p = 0; p < 2; ++p) { /* a lone last pixel is computed twice */
      const int pq = q + (p < npix ? p : 0);
      const int b = pq / (out_h * out_w), r = pq % (out_h * out_w);
      y0[p] = (r / out_w) * stride_h - pad_h;
      x0[p] = (r % out_w) * stride_w - pad_w;
      base[p] = input + (size_t)b * in_h * in_w * in_c;
    }
    for (p = 0; p < 2; ++p) {
      const int8_t *first = base[p] + (y0[p] * in_w + x0[p]) * in_c;
      if (y0[p] >= 0 && y0[p] + dil_h * (k_h - 1) < in_h && x0[p] >= 0 &&
          x0[p] + dil_w * (k_w - 1) < in_w) /* the whole window inside: constant offsets */
        for (t = 0; t < k_h * k_w; ++t)
          taps[2 * t + p] = first + (dil_h * (t / k_w) * in_w + dil_w * (t % k_w)) * in_c;
      else
        ek_taps_at_edge(taps + p, base[p], zero_tap, y0[p], x0[p], in_h, in_w, in_c, k_h, k_w,
                        dil_h, dil_w);
    }
    if (!EK_TAPS_ASM) /* (the assembly copies it itself) */
      for (g = 0; g < groups; ++g)
        for (p = 0; p < 2; ++p)
          for (c = 0; c < 4; ++c) acc[8 * g + 4 * p + c] = folded_bias[4 * g + c];
#if EK_TAPS_ASM
    {
      ek_taps_job job;
      job.taps = taps;
      job.taps_end = taps + 2 * k_h * k_w;
      job.w = (const int32_t *)filter;
      job.bias = folded_bias;
      job.bias_end = folded_bias + out_c;
      job.acc = acc;
      job.xq = xq;
      job.xq_end = xq + in_c;
      job.w_tap_bytes = 2 * out_c * in_c;
      if (in_c == 16)
        ek_taps_pair16_asm(&job);
      else if (in_c % 16 == 0)
        ek_taps_pair_asm(&job);
      else
        ek_taps_pair8_asm(&job);
    }
#else
    for (t = 0; t < k_h * k_w; ++t) {
#if EK_USE_DSP
      const int32_t *w = (const int32_t *)filter + (size_t)t * out_c * (in_c / 2);
      ek_widen_q15_pair(taps[2 * t], taps[2 * t + 1], xq, in_c / 4);
      for (g = 0; g < groups; ++g) {
        int j;
        for (j = 0; j < in_c / 2; ++j, w += 4)
          for (c = 0; c < 4; ++c) {
            acc[8 * g + c] = __smlad(xq[2 * j], w[c], acc[8 * g + c]);
            acc[8 * g + 4 + c] = __smlad(xq[2 * j + 1], w[c], acc[8 * g + 4 + c]);
          }
      }
#else
      const int8_t *rows = (const int8_t *)filter + t * in_c;
      for (oc = 0; oc < out_c; ++oc, rows += k_len)
        for (p = 0; p < 2; ++p) {
          const int8_t *x = taps[2 * t + p];
          int32_t sum = 0;
          for (c = 0; c < in_c; ++c) sum += (int32_t)x[c] * (int32_t)rows[c];
          acc[8 * (oc / 4) + 4 * p + oc % 4] += sum;
        }
#endif
    }
#endif
    /* per channel, both pixels from one load of its parameters */
    for (oc = 0; oc < out_c; ++oc) {
      const int32_t *a = acc + 8 * (oc / 4) + oc % 4;
      const size_t at = (size_t)q * out_c + oc;
      int8_t v[2];
      if (EK_USE_DSP && rq) {
        int32_t pq[3]; /* a copy the stores below cannot alias */
        pq[0] = multiplier[rq * oc];
        pq[1] = multiplier[rq * oc + 1];
        pq[2] = rq == 3 ? multiplier[rq * oc + 2] : 0;
        v[0] = (int8_t)ek_clamp_s8(ek_rq(a[0] * rq_scale, pq, rq), act_min, act_max);
        v[1] = (int8_t)ek_clamp_s8(ek_rq(a[4] * rq_scale, pq, rq), act_min, act_max);
      } else {
        ek_requantize_s8(a, multiplier + oc, shift + oc, 1, right_shifts_only, v, 1,
                         output_offset, act_min, act_max);
        ek_requantize_s8(a + 4, multiplier + oc, shift + oc, 1, right_shifts_only, v + 1, 1,
                         output_offset, act_min, act_max);
      }
      for (p = 0; p < npix; ++p) {
        if (residual) {
          const int8_t r = residual[at + (size_t)p * out_c];
          v[p] = ek_add_one_s8(residual_first ? r : v[p], residual_first ? v[p] : r, a_terms,
                               b_terms, a_offset, a_mult, a_shift, b_offset, b_mult, b_shift,
                               left_shift, y_mult, y_shift, y_offset, add_min, add_max,
                               add_shifts);
        }
        output[at + (size_t)p * out_c] = v[p];
      }
    }
  }
}

#endif /* EK_CONV_TAPS_H */
