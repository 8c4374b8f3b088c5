/* ek_depthwise_dsp.h: DEPTHWISE_CONV_2D int8 on the Cortex-M DSP path (SXTB16, SMLABB/SMLATT).
 *
 * Bit-exact with TFLM's reference_integer_ops::DepthwiseConvPerChannel, like
 * ek_depthwise_conv_s8 (ek_conv.h), which the compiler emits instead where this
 * kernel does not apply (ops/conv.py `depthwise_ring`). The arithmetic is portable C
 * where the C compiler lacks the DSP instructions.
 *
 * The input rows a window needs are copied into `ring`, a few rows of scratch
 * laid out for the inner loop: every row padded on both sides with the input
 * zero point (where x + input_offset is 0: exactly the reference's skipping of
 * taps outside the image), channels expanded by the depth multiplier and padded
 * to a multiple of four, `cp`, so a tap of four channels is one aligned word
 * whatever the shape. Row y lives in slot y mod `span` (the window's height
 * with dilation), so the rows of one window never share a slot and each input
 * row is copied once; rows above and below the image are slots of the zero
 * point. Every tap of a window is then a load at a constant offset from one of
 * k_h row pointers: no bounds tests and no tap table in the loop.
 *
 * Per tap and four channels: one LDR, two SXTB16 (the halfword pairs (c0, c2)
 * and (c1, c3)), one LDRD of the int16 filter stored in the same order
 * (doubled at compile time) and four SMLABB/SMLATT. The four accumulators
 * start from the doubled folded bias and go straight to ek_rq (the doubled
 * accumulator is what it takes), so nothing is stored between the products
 * and the int8 output. Biases, filter and requantization parameters of a
 * group of four channels are one run of flash, read through one pointer.
 *
 * In place: an output row is written after every input row its windows read
 * has been copied into the ring, so the output may overwrite the input as far
 * as ops/conv.py `ring_lag` computes from the same copy order. */
#ifndef EK_DEPTHWISE_DSP_H
#define EK_DEPTHWISE_DSP_H

#define EK_DWR_MAX_SPAN 16 /* ring slots (window height with dilation); ops/conv.py RING_MAX_SPAN */
#define EK_DWR_ZERO (-1)   /* a slot holding the zero point (a row outside the image) */
#define EK_DWR_STALE (-2)  /* a slot holding a row of another batch */

/* `bytes` (a multiple of 4) of the byte `v`, a word at a time (dst word-aligned). */
EK_INLINE void ek_dwr_fill(int8_t *dst, int8_t v, int bytes) {
  const uint32_t word = (uint32_t)(uint8_t)v * 0x01010101u;
  uint32_t *d = (uint32_t *)(void *)dst;
  int i;
  for (i = 0; i < bytes / 4; ++i) d[i] = word;
}

/* Input row `src` (in_w pixels of in_c channels) into a slot row at `dst` (pixels of cp
 * channels): channel c goes to c * dm ... c * dm + dm - 1. */
EK_INLINE void ek_dwr_copy_row(const int8_t *src, int8_t *dst, int in_w, int in_c, int dm, int cp) {
  int x, c, j;
  if (dm == 1 && in_c == cp) {
    /* whole words (in_c % 4 == 0); the input may be unaligned (a caller's buffer) */
    uint32_t *d = (uint32_t *)(void *)dst;
    for (x = 0; x < in_w * in_c / 4; ++x) {
      uint32_t v;
      memcpy(&v, src + 4 * x, 4);
      d[x] = v;
    }
    return;
  }
  for (x = 0; x < in_w; ++x)
    for (c = 0; c < in_c; ++c)
      for (j = 0; j < dm; ++j) dst[x * cp + c * dm + j] = src[x * in_c + c];
}

/* One tap of four channels: a0..a3 += x * w for the input word at `x` (a ring slot, aligned)
 * and the next two filter words at `w`. gcc given the intrinsics interleaves the taps of all
 * four accumulators and spills most of them (13 instructions a tap instead of 8), so optimized
 * Thumb-2 builds take the eight instructions as written; the ring word is a memory operand, so
 * its address is a row pointer plus a constant. Without the DSP instructions (a `dsp` target's
 * bundle built by a compiler without them) the same arithmetic runs in C. */
#if EK_USE_DSP && defined(__GNUC__) && defined(__OPTIMIZE__) && defined(__thumb2__)
#define EK_DWR_TAP(x)                                                                              \
  do {                                                                                             \
    int32_t v_, e_, w0_, w1_;                                                                      \
    __asm__("ldr %[v], %[in]\n\t"                                                                  \
            "ldrd %[w0], %[w1], [%[w]], #8\n\t"                                                    \
            "sxtb16 %[e], %[v]\n\t"                                                                \
            "sxtb16 %[v], %[v], ror #8\n\t"                                                        \
            "smlabb %[a0], %[e], %[w0], %[a0]\n\t"                                                 \
            "smlatt %[a2], %[e], %[w0], %[a2]\n\t"                                                 \
            "smlabb %[a1], %[v], %[w1], %[a1]\n\t"                                                 \
            "smlatt %[a3], %[v], %[w1], %[a3]"                                                      \
            : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(w),            \
              [v] "=&r"(v_), [e] "=&r"(e_), [w0] "=&r"(w0_), [w1] "=&r"(w1_)                       \
            : [in] "m"(*(const uint32_t *)(const void *)(x)));                                     \
  } while (0)
#else
#define EK_DWR_TAP(x)                                                                              \
  do {                                                                                             \
    const int8_t *x_ = (x);                                                                        \
    a0 += (int32_t)x_[0] * (int16_t)(uint16_t)((uint32_t)w[0] & 0xFFFFu);                          \
    a2 += (int32_t)x_[2] * (int16_t)(uint16_t)((uint32_t)w[0] >> 16);                              \
    a1 += (int32_t)x_[1] * (int16_t)(uint16_t)((uint32_t)w[1] & 0xFFFFu);                          \
    a3 += (int32_t)x_[3] * (int16_t)(uint16_t)((uint32_t)w[1] >> 16);                              \
    w += 2;                                                                                        \
  } while (0)
#endif

/* `params`: per group of four channels, in the order the loop reads them, four doubled folded
 * biases ((bias + input_offset * sum(w)) * 2), k_h * k_w taps of two words of int16 pairs,
 * (w_c0, w_c2) then (w_c1, w_c3), doubled, and ek_rq's parameters of the four channels
 * (`rq_stride` each): one pointer walks them all (ops/conv.py depthwise_ring_params). `ring`:
 * span * ring_w * cp bytes of scratch, word-aligned, ring_w the padded row's pixels (pad_w on the
 * left). */
EK_INLINE void ek_depthwise_dsp_s8(const int8_t *input, const int32_t *params, int rq_stride,
                                   int8_t *output, int8_t *ring, int batches, int in_h, int in_w,
                                   int in_c, int out_h, int out_w, int out_c, int dm, int k_h,
                                   int k_w, int stride_h, int stride_w, int dil_h, int dil_w,
                                   int pad_h, int pad_w, int ring_w, int32_t input_offset,
                                   int32_t act_min, int32_t act_max) {
  const int cp = (out_c + 3) & ~3;
  const int span = (k_h - 1) * dil_h + 1;
  const int slot_bytes = ring_w * cp;
  const int8_t zero = (int8_t)(-input_offset);
  int slot_row[EK_DWR_MAX_SPAN];
  int b, oy, ox, ky, kx, g, s;
  ek_dwr_fill(ring, zero, span * slot_bytes);
  for (s = 0; s < span; ++s) slot_row[s] = EK_DWR_ZERO;
  for (b = 0; b < batches; ++b) {
    const int8_t *in_b = input + (size_t)b * in_h * in_w * in_c;
    if (b > 0)
      for (s = 0; s < span; ++s) slot_row[s] = slot_row[s] == EK_DWR_ZERO ? EK_DWR_ZERO : EK_DWR_STALE;
    for (oy = 0; oy < out_h; ++oy) {
      const int y0 = oy * stride_h - pad_h;
      const int8_t *rows[EK_DWR_MAX_SPAN];
      for (ky = 0; ky < k_h; ++ky) {
        const int y = y0 + ky * dil_h;
        const int want = y >= 0 && y < in_h ? y : EK_DWR_ZERO;
        int8_t *slot;
        s = ((y % span) + span) % span;
        slot = ring + s * slot_bytes;
        if (slot_row[s] != want) {
          if (want == EK_DWR_ZERO)
            ek_dwr_fill(slot, zero, slot_bytes);
          else
            ek_dwr_copy_row(in_b + (size_t)y * in_w * in_c, slot + pad_w * cp, in_w, in_c, dm, cp);
          slot_row[s] = want;
        }
        rows[ky] = slot;
      }
      for (ox = 0; ox < out_w; ++ox) {
        const int32_t *w = params;
        const int8_t *px[EK_DWR_MAX_SPAN];
        int8_t *out = output + ((size_t)(b * out_h + oy) * out_w + ox) * out_c;
        for (ky = 0; ky < k_h; ++ky) px[ky] = rows[ky] + ox * stride_w * cp;
        for (g = 0; g < cp; g += 4) {
          int32_t a0 = w[0], a1 = w[1], a2 = w[2], a3 = w[3];
          const int32_t *pq;
          w += 4;
          for (ky = 0; ky < k_h; ++ky)
            for (kx = 0; kx < k_w; ++kx) EK_DWR_TAP(px[ky] + g + kx * dil_w * cp);
          pq = w;
          w += 4 * rq_stride;
          if (g + 4 <= out_c) {
            out[g] = (int8_t)ek_clamp_s8(ek_rq(a0, pq, rq_stride), act_min, act_max);
            out[g + 1] = (int8_t)ek_clamp_s8(ek_rq(a1, pq + rq_stride, rq_stride), act_min, act_max);
            out[g + 2] = (int8_t)ek_clamp_s8(ek_rq(a2, pq + 2 * rq_stride, rq_stride), act_min, act_max);
            out[g + 3] = (int8_t)ek_clamp_s8(ek_rq(a3, pq + 3 * rq_stride, rq_stride), act_min, act_max);
          } else { /* the last, partial group */
            const int32_t a[4] = {a0, a1, a2, a3};
            int i;
            for (i = 0; g + i < out_c; ++i)
              out[g + i] = (int8_t)ek_clamp_s8(ek_rq(a[i], pq + i * rq_stride, rq_stride), act_min, act_max);
          }
        }
      }
    }
  }
}
#endif /* EK_DEPTHWISE_DSP_H */
