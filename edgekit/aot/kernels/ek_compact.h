/* ek_compact.h: the int8 convolutions of --optimize size, read straight from the model's arrays.
 *
 * Filters stay in the .tflite's layout (CONV_2D [out_c][k_h][k_w][in_c],
 * DEPTHWISE_CONV_2D [k_h][k_w][out_c]), the bias is the raw bias (int16
 * where every value fits, else int32), and a channel's requantization is one
 * word (edgekit/aot/channel_params.py): the multiplier's low 30 bits, its bit
 * 30 being always set, under the channel's shift less the layer's smallest;
 * or, in a layer whose shifts span more than four values, the multiplier
 * itself with the shifts beside it as int8. The accumulator is TFLM's own,
 * bias + sum of w * (x + offset) over the taps inside the input, so no folded
 * bias is needed and padding needs no special case. One small function per
 * operator family, no unrolling: this is the smallest code, not the fastest. */
#ifndef EK_COMPACT_H
#define EK_COMPACT_H

/* Where a window's element n sits in a patch: each group of four in SMLAD order (0, 2, 1, 3) on
 * the DSP path, the order the halfwords of SXTB16 come in, so a word of filter bytes meets two
 * words of patch; in order elsewhere. */
#if EK_USE_DSP
#define EK_PATCH_SLOT(n) (((n) & ~3) | (((n) & 1) << 1) | (((n) >> 1) & 1))
#else
#define EK_PATCH_SLOT(n) (n)
#endif

/* acc + sum of patch[EK_PATCH_SLOT(i)] * w[i] for i < n (the patch holds x + input offset as
 * int16); a function of its own, so its loop has the registers to itself */
#if defined(__GNUC__)
__attribute__((noinline, unused))
#endif
static int32_t ek_dot_patch(const int16_t *patch, const int8_t *w, int n, int32_t acc) {
  int i = 0;
#if EK_USE_DSP
  /* gcc -Os keeps the loop test at the top and the ROR apart from SXTB16: 14 instructions per
   * four taps where this takes 8. The patch is word aligned (scratch), the filter need not be. */
  int groups = n >> 2;
  if (groups > 0) {
    const int16_t *p = patch;
    const int8_t *q = w;
    uint32_t vw, t, even, odd;
    __asm__("1:\n\t"
            "ldr %[vw], [%[q]], #4\n\t"
            "ldrd %[even], %[odd], [%[p]], #8\n\t"
            "sxtb16 %[t], %[vw]\n\t"
            "smlad %[acc], %[even], %[t], %[acc]\n\t"
            "sxtb16 %[t], %[vw], ror #8\n\t"
            "smlad %[acc], %[odd], %[t], %[acc]\n\t"
            "subs %[groups], %[groups], #1\n\t"
            "bne 1b"
            : [acc] "+r"(acc), [p] "+r"(p), [q] "+r"(q), [groups] "+r"(groups), [vw] "=&r"(vw),
              [t] "=&r"(t), [even] "=&r"(even), [odd] "=&r"(odd)
            :
            : "cc", "memory");
    i = n & ~3;
  }
#endif
  for (; i < n; ++i) acc += patch[EK_PATCH_SLOT(i)] * w[i];
  return acc;
}

/* requantize channel c's accumulator and add the output offset, clamped to the activation; with
 * `shifts` (a layer whose shifts do not fit the word) the word is the multiplier itself */
EK_INLINE int8_t ek_requant_word(int32_t acc, const uint32_t *words, const int8_t *shifts, int c,
                                 int shift_base, int32_t output_offset, int32_t act_min,
                                 int32_t act_max) {
  const uint32_t word = words[c];
  const int32_t multiplier = shifts ? (int32_t)word : (int32_t)((word & 0x3fffffffu) | 0x40000000u);
  const int shift = shifts ? shifts[c] : shift_base + (int)(word >> 30);
#if EK_USE_DSP && !EK_SINGLE_ROUNDING
  /* the usual right shift: the double rounding as one 64-bit sum */
  const int32_t scaled = shift < 0 ? ek_mbqm_right(acc, multiplier, shift) : ek_mbqm(acc, multiplier, shift);
#else
  const int32_t scaled = ek_mbqm(acc, multiplier, shift);
#endif
  return (int8_t)ek_clamp_i32(scaled + output_offset, act_min, act_max);
}

EK_INLINE int32_t ek_bias_at(const int16_t *bias16, const int32_t *bias32, int c) {
  return bias16 ? bias16[c] : bias32[c];
}

/* CONV_2D: each output pixel's window is copied once into `patch` (k_h * k_w * in_c int16, x +
 * input offset, 0 in the padding), then each channel is one dot product with its filter row */
EK_INLINE void ek_conv_compact_s8(const int8_t *input, const int8_t *filter, const int16_t *bias16,
                                  const int32_t *bias32, const uint32_t *words, const int8_t *shifts,
                                  int shift_base, int8_t *output, int16_t *patch, int batches,
                                  int in_h, int in_w, int in_c, int out_h, int out_w, int out_c,
                                  int k_h, int k_w, int stride_h, int stride_w, int dil_h, int dil_w,
                                  int pad_h, int pad_w, int32_t input_offset, int32_t output_offset,
                                  int32_t act_min, int32_t act_max) {
  const int k_len = k_h * k_w * in_c;
  int b, oy, ox, c, ky, kx, i, n;
  for (b = 0; b < batches; ++b) {
    const int8_t *image = input + b * in_h * in_w * in_c;
    for (oy = 0; oy < out_h; ++oy) {
      for (ox = 0; ox < out_w; ++ox) {
        n = 0;
        for (ky = 0; ky < k_h; ++ky) {
          const int iy = oy * stride_h - pad_h + ky * dil_h;
          for (kx = 0; kx < k_w; ++kx) {
            const int ix = ox * stride_w - pad_w + kx * dil_w;
            const int inside = iy >= 0 && iy < in_h && ix >= 0 && ix < in_w;
            const int8_t *x = inside ? image + (iy * in_w + ix) * in_c : image;
            for (i = 0; i < in_c; ++i, ++n) patch[EK_PATCH_SLOT(n)] = (int16_t)(inside ? x[i] + input_offset : 0);
          }
        }
        for (c = 0; c < out_c; ++c) {
          const int32_t acc = ek_dot_patch(patch, filter + c * k_len, k_len, ek_bias_at(bias16, bias32, c));
          *output++ = ek_requant_word(acc, words, shifts, c, shift_base, output_offset, act_min, act_max);
        }
      }
    }
  }
}

/* DEPTHWISE_CONV_2D: a pixel's channels accumulate together in `acc` (out_c int32), tap by tap */
EK_INLINE void ek_depthwise_compact_s8(const int8_t *input, const int8_t *filter,
                                       const int16_t *bias16, const int32_t *bias32,
                                       const uint32_t *words, const int8_t *shifts, int shift_base,
                                       int8_t *output,
                                       int32_t *acc, int batches, int in_h, int in_w, int in_c,
                                       int out_h, int out_w, int depth_multiplier, int k_h, int k_w,
                                       int stride_h, int stride_w, int dil_h, int dil_w, int pad_h,
                                       int pad_w, int32_t input_offset, int32_t output_offset,
                                       int32_t act_min, int32_t act_max) {
  const int out_c = in_c * depth_multiplier;
#if EK_USE_DSP
  const uint32_t offsets = ((uint32_t)input_offset & 0xffffu) * 0x10001u; /* |x + offset| <= 255 */
#endif
  int b, oy, ox, c, m, ky, kx;
  for (b = 0; b < batches; ++b) {
    const int8_t *image = input + b * in_h * in_w * in_c;
    for (oy = 0; oy < out_h; ++oy) {
      for (ox = 0; ox < out_w; ++ox) {
        for (c = 0; c < out_c; ++c) acc[c] = ek_bias_at(bias16, bias32, c);
        for (ky = 0; ky < k_h; ++ky) {
          const int iy = oy * stride_h - pad_h + ky * dil_h;
          if (iy < 0 || iy >= in_h) continue;
          for (kx = 0; kx < k_w; ++kx) {
            const int ix = ox * stride_w - pad_w + kx * dil_w;
            const int8_t *x, *w;
            if (ix < 0 || ix >= in_w) continue;
            x = image + (iy * in_w + ix) * in_c;
            w = filter + (ky * k_w + kx) * out_c;
            c = 0;
#if EK_USE_DSP
            if (depth_multiplier == 1) /* four channels a word: SXTB16 halves, SMLABB / SMLATT */
              for (; c + 4 <= in_c; c += 4) {
                uint32_t vx, vw, xe, xo, we, wo;
                memcpy(&vx, x + c, 4);
                memcpy(&vw, w + c, 4);
                xe = __sadd16(__sxtb16(vx), offsets);
                xo = __sadd16(__sxtb16((vx >> 8) | (vx << 24)), offsets);
                we = __sxtb16(vw);
                wo = __sxtb16((vw >> 8) | (vw << 24));
                acc[c] = __smlabb(xe, we, acc[c]);
                acc[c + 1] = __smlabb(xo, wo, acc[c + 1]);
                acc[c + 2] = __smlatt(xe, we, acc[c + 2]);
                acc[c + 3] = __smlatt(xo, wo, acc[c + 3]);
              }
#endif
            for (; c < in_c; ++c) {
              const int32_t v = x[c] + input_offset;
              for (m = 0; m < depth_multiplier; ++m) acc[c * depth_multiplier + m] += v * w[c * depth_multiplier + m];
            }
          }
        }
        for (c = 0; c < out_c; ++c)
          *output++ = ek_requant_word(acc[c], words, shifts, c, shift_base, output_offset, act_min, act_max);
      }
    }
  }
}

#endif /* EK_COMPACT_H */
