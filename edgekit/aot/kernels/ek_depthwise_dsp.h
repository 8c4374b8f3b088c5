/* ek_depthwise_dsp.h: DEPTHWISE_CONV_2D int8 on the Cortex-M DSP path (SMLABB/SMLATT).
 *
 * Bit-exact with TFLM's reference_integer_ops::DepthwiseConvPerChannel, like
 * ek_depthwise_conv_s8 (ek_conv.h), which the compiler emits instead where this
 * kernel does not apply (ops/conv.py `depthwise_ring`). The arithmetic is portable C
 * where the C compiler lacks the DSP instructions.
 *
 * The input rows a window needs are copied into `ring`, a few rows of scratch
 * laid out for the inner loop: widened to int16 once (an input value serves
 * k_h * k_w taps), every row padded on both sides with the input zero point
 * (where x + input_offset is 0: exactly the reference's skipping of taps
 * outside the image), channels expanded by the depth multiplier and padded to
 * a multiple of four, `cp`, and stored group-major: a row is cp / 4 runs of
 * ring_w pixels of four channels, ordered (c0, c2, c1, c3) as SMLABB/SMLATT
 * pair them with the filter. Row y lives in slot y mod `span` (the window's
 * height with dilation), so the rows of one window never share a slot and each
 * input row is copied once; rows above and below the image are slots of the
 * zero point.
 *
 * A tap of four channels is then one LDRD of the ring, one LDRD of the int16
 * filter (doubled at compile time) and four SMLABB/SMLATT, the ring pointer
 * stepping 8 bytes from tap to tap of a row: no bounds tests, no tap table and
 * no unpacking in the loop. The four accumulators start from the doubled
 * folded bias and go straight to ek_rq's arithmetic (the doubled accumulator
 * is what it takes), the shifts read from one word per group. Biases, filter and requantization parameters of a group of four
 * channels are one run of flash, read through one pointer.
 *
 * In place: an output row is written after every input row its windows read
 * has been copied into the ring, so the output may overwrite the input as far
 * as ops/conv.py `ring_lag` computes from the same copy order. */
#ifndef EK_DEPTHWISE_DSP_H
#define EK_DEPTHWISE_DSP_H

#define EK_DWR_MAX_SPAN 16 /* ring slots (window height with dilation); ops/conv.py RING_MAX_SPAN */
#define EK_DWR_ZERO (-1)   /* a slot holding the zero point (a row outside the image) */
#define EK_DWR_STALE (-2)  /* a slot holding a row of another batch */

/* `words` words of the int16 `v` twice. The ring is int16 and read as int16: stores go
 * through memcpy, which compiles to word stores and keeps the type rules (a store through a
 * uint32_t pointer may be moved past the int16 reads). */
EK_INLINE void ek_dwr_fill(int16_t *dst, int16_t v, int words) {
  const uint32_t word = (uint32_t)(uint16_t)v * 0x00010001u;
  int i;
  for (i = 0; i < words; ++i) memcpy(dst + 2 * i, &word, 4);
}

/* Input row `src` (in_w pixels of in_c channels) into a slot at `dst` (group-major: cp / 4 runs
 * of ring_w pixels of 4 int16, (c0, c2, c1, c3)), from pixel pad_w on: input channel c goes to
 * channels c * dm ... c * dm + dm - 1. */
EK_INLINE void ek_dwr_copy_row(const int8_t *src, int16_t *dst, int in_w, int in_c, int dm, int cp,
                               int ring_w, int pad_w) {
  int x, c, j;
  dst += 4 * pad_w;
#if EK_USE_DSP
  if (dm == 1 && in_c == cp) { /* a word of four channels is two SXTB16 */
    int g;
    for (g = 0; g < cp / 4; ++g) {
      int16_t *d = dst + 4 * g * ring_w;
      const int8_t *s = src + 4 * g;
      for (x = 0; x < in_w; ++x, s += in_c, d += 4) {
        uint32_t v, e, o;
        memcpy(&v, s, 4); /* the input may be unaligned (a caller's buffer) */
        e = (uint32_t)__sxtb16(v);
#if defined(__GNUC__)
        /* gcc rotates with a MOV of its own before SXTB16, and stores the pair word by word */
        __asm__("sxtb16 %0, %1, ror #8" : "=r"(o) : "r"(v));
        __asm__("strd %1, %2, %0" : "=Q"(*(int16_t(*)[4])(void *)d) : "r"(e), "r"(o));
#else
        o = (uint32_t)__sxtb16((v >> 8) | (v << 24));
        memcpy(d, &e, 4);
        memcpy(d + 2, &o, 4);
#endif
      }
    }
    return;
  }
#else
  (void)cp;
#endif
  for (x = 0; x < in_w; ++x)
    for (c = 0; c < in_c; ++c)
      for (j = 0; j < dm; ++j) {
        const int oc = c * dm + j, lane = oc % 4;
        /* lanes 0, 1, 2, 3 at halfwords 0, 2, 1, 3 */
        dst[4 * ((oc / 4) * ring_w + x) + (lane >> 1) + 2 * (lane & 1)] = src[x * in_c + c];
      }
}

/* One tap of four channels: a0..a3 += x * w for the ring's two words at `ptr` (then ptr += 4
 * int16) and the next two filter words at `w` (then w += 2). EK_DWR_ROW does `taps` consecutive taps
 * (a row of the window, `taps` a constant). The eight bytes of a tap are one LDRD each (gcc given
 * intrinsics loads word by word and interleaves the four accumulators' chains until it spills,
 * and between separate asm statements it shuffles registers), so optimized Thumb-2 builds take
 * six instructions a tap as written, a row in one block. Without the DSP instructions (a `dsp`
 * target's bundle built by a compiler without them) the same arithmetic runs in C. */
#define EK_DWR_TAP_C(ptr)                                                                          \
  do {                                                                                             \
    a0 += (int32_t)(ptr)[0] * (int16_t)(uint16_t)((uint32_t)w[0] & 0xFFFFu);                         \
    a2 += (int32_t)(ptr)[1] * (int16_t)(uint16_t)((uint32_t)w[0] >> 16);                             \
    a1 += (int32_t)(ptr)[2] * (int16_t)(uint16_t)((uint32_t)w[1] & 0xFFFFu);                         \
    a3 += (int32_t)(ptr)[3] * (int16_t)(uint16_t)((uint32_t)w[1] >> 16);                             \
    w += 2;                                                                                        \
    (ptr) += 4;                                                                                    \
  } while (0)
#if EK_USE_DSP && defined(__GNUC__) && defined(__OPTIMIZE__) && defined(__thumb2__)
#define EK_DWR_ASM_TAP                                                                             \
  "ldrd %[x0], %[x1], [%[p]], #8\n\t"                                                              \
  "ldrd %[w0], %[w1], [%[w]], #8\n\t"                                                              \
  "smlabb %[a0], %[x0], %[w0], %[a0]\n\t"                                                          \
  "smlatt %[a2], %[x0], %[w0], %[a2]\n\t"                                                          \
  "smlabb %[a1], %[x1], %[w1], %[a1]\n\t"                                                          \
  "smlatt %[a3], %[x1], %[w1], %[a3]\n\t"
#define EK_DWR_ASM_OPERANDS(ptr)                                                                   \
  : [a0] "+r"(a0), [a1] "+r"(a1), [a2] "+r"(a2), [a3] "+r"(a3), [w] "+r"(w), [p] "+r"(ptr),       \
    [x0] "=&r"(x0_), [x1] "=&r"(x1_), [w0] "=&r"(w0_), [w1] "=&r"(w1_)
#define EK_DWR_TAP(ptr)                                                                            \
  do {                                                                                             \
    int32_t x0_, x1_, w0_, w1_;                                                                    \
    __asm__(EK_DWR_ASM_TAP EK_DWR_ASM_OPERANDS(ptr) : "m"(*(const int16_t(*)[])(const void *)(ptr))); \
  } while (0)
#define EK_DWR_ROW(ptr, taps)                                                                       \
  do {                                                                                             \
    int32_t x0_, x1_, w0_, w1_;                                                                    \
    __asm__(".rept %c[n]\n\t" EK_DWR_ASM_TAP ".endr"                                               \
            EK_DWR_ASM_OPERANDS(ptr)                                                               \
            : [n] "i"(taps), "m"(*(const int16_t(*)[])(const void *)(ptr)));                          \
  } while (0)
#else
#define EK_DWR_TAP(ptr) EK_DWR_TAP_C(ptr)
#define EK_DWR_ROW(ptr, taps)                                                                       \
  do {                                                                                             \
    int t_;                                                                                        \
    for (t_ = 0; t_ < (taps); ++t_) EK_DWR_TAP_C(ptr);                                                  \
  } while (0)
#endif

/* ek_rq with the shift from `sh`'s low byte: (SMMLAR(x2, m, rnd) + [x2 < 0]) >> e, a register
 * shift by the byte the kernel moves down the packed word (the DSP path's ASR by a register
 * reads only its low byte) instead of RBIT and CLZ of the rounding term per output. */
EK_INLINE int32_t ek_dwr_rq(int32_t x2, int32_t m, int32_t rnd, uint32_t sh) {
  const int32_t t = ek_smmlar(x2, m, rnd) + (x2 >> 31);
#if EK_USE_DSP
  int32_t r;
  __asm__("asr %0, %1, %2" : "=r"(r) : "r"(t), "r"(sh));
  return r;
#else
  return t >> (sh & 0xFFu);
#endif
}

/* `params`: per group of four channels, in the order the loop reads them, four doubled folded
 * biases ((bias + input_offset * sum(w)) * 2), k_h * k_w taps of two words of int16 pairs,
 * (w_c0, w_c2) then (w_c1, w_c3), doubled, ek_rq's multiplier and rounding term of each of the
 * four channels, and their right shifts e in one word, a byte each: one pointer walks them all
 * (ops/conv.py depthwise_ring_params). `ring`: span * ring_w * cp int16 of scratch,
 * word-aligned, ring_w the padded row's pixels (pad_w on the left). */
EK_INLINE void ek_depthwise_dsp_s8(const int8_t *input, const int32_t *params, int8_t *output,
                                   int16_t *ring, int batches, int in_h, int in_w, int in_c,
                                   int out_h, int out_w, int out_c, int dm, int k_h, int k_w,
                                   int stride_h, int stride_w, int dil_h, int dil_w, int pad_h,
                                   int pad_w, int ring_w, int32_t input_offset, int32_t act_min,
                                   int32_t act_max) {
  const int cp = (out_c + 3) & ~3;
  const int span = (k_h - 1) * dil_h + 1;
  const int slot = ring_w * cp; /* int16 per slot */
  const int16_t zero = (int16_t)(-input_offset);
  int slot_row[EK_DWR_MAX_SPAN];
  int b, oy, ox, ky, kx, g, s;
  ek_dwr_fill(ring, zero, span * slot / 2);
  for (s = 0; s < span; ++s) slot_row[s] = EK_DWR_ZERO;
  for (b = 0; b < batches; ++b) {
    const int8_t *in_b = input + (size_t)b * in_h * in_w * in_c;
    if (b > 0)
      for (s = 0; s < span; ++s) slot_row[s] = slot_row[s] == EK_DWR_ZERO ? EK_DWR_ZERO : EK_DWR_STALE;
    for (oy = 0; oy < out_h; ++oy) {
      const int y0 = oy * stride_h - pad_h;
      const int16_t *rows[EK_DWR_MAX_SPAN];
      for (ky = 0; ky < k_h; ++ky) {
        const int y = y0 + ky * dil_h;
        const int want = y >= 0 && y < in_h ? y : EK_DWR_ZERO;
        int16_t *at;
        s = ((y % span) + span) % span;
        at = ring + s * slot;
        if (slot_row[s] != want) {
          if (want == EK_DWR_ZERO)
            ek_dwr_fill(at, zero, slot / 2);
          else
            ek_dwr_copy_row(in_b + (size_t)y * in_w * in_c, at, in_w, in_c, dm, cp, ring_w, pad_w);
          slot_row[s] = want;
        }
        rows[ky] = at;
      }
      for (ox = 0; ox < out_w; ++ox) {
        const int32_t *w = params;
        int8_t *out = output + ((size_t)(b * out_h + oy) * out_w + ox) * out_c;
        for (g = 0; g < cp; g += 4) {
          const int at = g * ring_w + 4 * ox * stride_w; /* int16 from a row's start */
          int32_t a0 = w[0], a1 = w[1], a2 = w[2], a3 = w[3];
          uint32_t sh;
          w += 4;
          for (ky = 0; ky < k_h; ++ky) {
            const int16_t *p = rows[ky] + at;
            if (dil_w == 1) {
              EK_DWR_ROW(p, k_w);
            } else {
              for (kx = 0; kx < k_w; ++kx) {
                const int16_t *q = p + 4 * kx * dil_w;
                EK_DWR_TAP(q);
              }
            }
          }
          sh = (uint32_t)w[8];
          if (g + 4 <= out_c) {
            out[g] = (int8_t)ek_clamp_s8(ek_dwr_rq(a0, w[0], w[1], sh), act_min, act_max);
            out[g + 1] = (int8_t)ek_clamp_s8(ek_dwr_rq(a1, w[2], w[3], sh >> 8), act_min, act_max);
            out[g + 2] = (int8_t)ek_clamp_s8(ek_dwr_rq(a2, w[4], w[5], sh >> 16), act_min, act_max);
            out[g + 3] = (int8_t)ek_clamp_s8(ek_dwr_rq(a3, w[6], w[7], sh >> 24), act_min, act_max);
          } else { /* the last, partial group */
            const int32_t a[4] = {a0, a1, a2, a3};
            int i;
            for (i = 0; g + i < out_c; ++i)
              out[g + i] = (int8_t)ek_clamp_s8(ek_dwr_rq(a[i], w[2 * i], w[2 * i + 1], sh >> (8 * i)),
                                               act_min, act_max);
          }
          w += 9;
        }
      }
    }
  }
}

#endif /* EK_DEPTHWISE_DSP_H */
