/* ek_x86.h: int8 convolution and requantization on x86 with AVX2 (no AVX-512 VNNI).
 *
 * Taken when the C compiler targets AVX2 and neither the DSP path (EK_DSP) nor
 * the VNNI lanes path (EK_LANES, ek_common.h) is compiled; any other build
 * keeps the portable C of ek_conv.h. Same results as TFLM, bit for bit:
 * integer sums are exact in any order, and the requantization is TFLM's
 * double rounding lane by lane.
 *
 * The conv filter is the one the lanes path reads (ops/conv.py lane_packed:
 * [channel block of 16][k / 4][16 channels][4 taps], int8, k rounded up to 4
 * taps with zero weights). A 16-byte piece of it is 4 channels x 4 taps,
 * sign-extended to int16 in one vpmovsxbw; four taps of the window, as int16
 * x + 128, broadcast to every 64-bit lane, meet it in one vpmaddwd, which
 * leaves two partial sums per channel (taps 0-1 and 2-3) in int32. Exact: a
 * product is at most 255 * 128 and vpmaddwd adds two of them in int32. The
 * partial sums are added pairwise (vphaddd) once per output pixel. The byte
 * form vpmaddubsw would do twice the products per instruction, but it
 * saturates its int16 pair sums (2 * 255 * 127 > 32767), so it is not used.
 * Filters stay int8, as on every path but the DSP one: a DSP-less Cortex-M
 * bundle carries the same #if'd arrays, and its fit counts the largest.
 *
 * Like ek_dot, the dot products sum (x + EK_DOT_BIAS) * w with EK_DOT_BIAS 128,
 * and the compiler's folded bias subtracts 128 * sum(w). */
#ifndef EK_X86_H
#define EK_X86_H

#if !(defined(EK_DSP) && EK_DSP) && !EK_LANES && defined(__AVX2__) && \
    (defined(__GNUC__) || defined(__clang__))
#include <immintrin.h>
#define EK_X86_CONV 1
/* Taps of a window (k_h * k_w * in_c rounded up to 4) the widened windows on the
 * stack hold; the compiler packs longer filters for the portable path
 * (ops/conv.py X86_CONV_DEPTH). */
#define EK_X86_CONV_DEPTH 4608
/* Output pixels sharing each weight vector: three, each with the accumulators of
 * 8 channels (two vectors), keeps gcc's unrolled loop in the 16 vector registers; four
 * pixels or 16 channels spilled and ran up to half again as long. */
#define EK_X86_PIXELS 3

/* n bytes x to int16 x + 128 (x ^ 0x80 as an unsigned byte). */
EK_INLINE void ek_x86_widen(const int8_t *x, int16_t *out, int n) {
  const __m128i flip = _mm_set1_epi8((char)0x80);
  int i = 0;
  for (; i + 16 <= n; i += 16) {
    const __m128i v = _mm_xor_si128(_mm_loadu_si128((const __m128i *)(const void *)(x + i)), flip);
    _mm256_storeu_si256((__m256i *)(void *)(out + i), _mm256_cvtepu8_epi16(v));
  }
  for (; i + 4 <= n; i += 4) {
    int32_t word;
    memcpy(&word, x + i, 4);
    _mm_storel_epi64((__m128i *)(void *)(out + i),
                     _mm_cvtepu8_epi16(_mm_xor_si128(_mm_cvtsi32_si128(word), flip)));
  }
  for (; i < n; ++i) out[i] = (int16_t)(uint8_t)((uint8_t)x[i] ^ 0x80u);
}

/* The window of output pixel q as int16 x + 128, taps outside the image at the input
 * zero point (where x + input_offset is 0: the reference's skipping of the tap). */
EK_INLINE void ek_x86_window(const int8_t *input, int16_t *out, int q, int in_h, int in_w,
                             int in_c, int out_h, int out_w, int k_h, int k_w, int stride_h,
                             int stride_w, int dil_h, int dil_w, int pad_h, int pad_w,
                             int32_t input_offset) {
  const int16_t pad = (int16_t)(128 - input_offset);
  const int b = q / (out_h * out_w), r = q % (out_h * out_w);
  const int y0 = (r / out_w) * stride_h - pad_h, x0 = (r % out_w) * stride_w - pad_w;
  const int8_t *in_b = input + b * in_h * in_w * in_c;
  int ky, kx, i;
  for (ky = 0; ky < k_h; ++ky) {
    const int y = y0 + dil_h * ky;
    if (dil_w == 1 && y >= 0 && y < in_h && x0 >= 0 && x0 + k_w <= in_w) {
      /* the row's taps lie side by side in the input as in the window: one run */
      ek_x86_widen(in_b + (y * in_w + x0) * in_c, out + ky * k_w * in_c, k_w * in_c);
      continue;
    }
    for (kx = 0; kx < k_w; ++kx) {
      const int x = x0 + dil_w * kx;
      int16_t *dst = out + (ky * k_w + kx) * in_c;
      if (y < 0 || y >= in_h || x < 0 || x >= in_w)
        for (i = 0; i < in_c; ++i) dst[i] = pad;
      else
        ek_x86_widen(in_b + (y * in_w + x) * in_c, dst, in_c);
    }
  }
}

/* `quads` groups of 4 channels (1 to 4, from quad `first` of a 16-channel block) for
 * `npix` windows: out[p][4 * j + c] = sum over k < 4 * k4 of x[p][k] * w[k / 4][4 * (first
 * + j) + c][k % 4]. `npix` and `quads` are constants at every call, so the accumulators
 * stay in registers. */
EK_INLINE void ek_x86_dot(const int16_t *const *x, int npix, const int8_t *w, int k4, int first,
                          int quads, int32_t *out, int out_stride) {
  __m256i a[EK_X86_PIXELS][4];
  int k, j, p;
  for (p = 0; p < npix; ++p)
    for (j = 0; j < quads; ++j) a[p][j] = _mm256_setzero_si256();
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC unroll 4 /* gcc unrolled short loops whole: 3% slower */
#endif
  for (k = 0; k < k4; ++k) {
    __m256i wv[4];
    for (j = 0; j < quads; ++j)
      wv[j] = _mm256_cvtepi8_epi16(
          _mm_load_si128((const __m128i *)(const void *)(w + (size_t)k * 64 + 16 * (first + j))));
    for (p = 0; p < npix; ++p) {
      int64_t taps;
      __m256i xb;
      memcpy(&taps, x[p] + 4 * k, 8);
      xb = _mm256_set1_epi64x(taps);
      for (j = 0; j < quads; ++j) a[p][j] = _mm256_add_epi32(a[p][j], _mm256_madd_epi16(xb, wv[j]));
    }
  }
  for (p = 0; p < npix; ++p) {
    int32_t *o = out + (size_t)p * (size_t)out_stride;
    /* lanes (c0 taps 0-1, c0 taps 2-3, c1 ...): pairwise sums, then the 128-bit halves'
     * 64-bit pieces back in channel order */
    for (j = 0; j + 1 < quads; j += 2) {
      const __m256i s = _mm256_permute4x64_epi64(_mm256_hadd_epi32(a[p][j], a[p][j + 1]), 0xd8);
      _mm256_storeu_si256((__m256i *)(void *)(o + 4 * j), s);
    }
    if (j < quads) {
      const __m256i s = _mm256_permute4x64_epi64(_mm256_hadd_epi32(a[p][j], a[p][j]), 0xd8);
      _mm_storeu_si128((__m128i *)(void *)(o + 4 * j), _mm256_castsi256_si128(s));
    }
  }
}

/* Every channel block for `npix` windows, 8 channels at a time. */
EK_INLINE void ek_x86_dot_blocks(const int16_t *const *x, int npix, const int8_t *w, int k4,
                                 int blocks, int32_t *out, int out_stride) {
  int b;
  for (b = 0; b < blocks; ++b, w += (size_t)k4 * 64, out += 16) {
    ek_x86_dot(x, npix, w, k4, 0, 2, out, out_stride);
    ek_x86_dot(x, npix, w, k4, 2, 2, out + 8, out_stride);
  }
}

/* ek_mbqm_smaller_than_one (double rounding) on 8 lanes, right shifts e = -shift >= 0.
 * SaturatingRoundingDoublingHighMul is floor((x * m + 2^30) / 2^31) (m is never
 * INT32_MIN): the 64-bit products of even and odd lanes (vpmuldq), of which bits
 * 31..62 are the result; RoundingDivideByPOT as in ek_rdbpot. */
EK_INLINE __m256i ek_x86_mbqm(__m256i x, __m256i m, __m256i e) {
  const __m256i nudge = _mm256_set1_epi64x((int64_t)1 << 30);
  const __m256i one = _mm256_set1_epi32(1);
  const __m256i even = _mm256_add_epi64(_mm256_mul_epi32(x, m), nudge);
  const __m256i odd =
      _mm256_add_epi64(_mm256_mul_epi32(_mm256_srli_epi64(x, 32), _mm256_srli_epi64(m, 32)), nudge);
  /* even lanes: the low word of >> 31; odd lanes: the high word of << 1 */
  const __m256i r =
      _mm256_blend_epi32(_mm256_srli_epi64(even, 31), _mm256_slli_epi64(odd, 1), 0xaa);
  const __m256i mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, e), one);
  const __m256i rem = _mm256_and_si256(r, mask);
  const __m256i thr =
      _mm256_sub_epi32(_mm256_srai_epi32(mask, 1), _mm256_cmpgt_epi32(_mm256_setzero_si256(), r));
  return _mm256_sub_epi32(_mm256_srav_epi32(r, e), _mm256_cmpgt_epi32(rem, thr));
}

/* out[i] = clamp(MultiplyByQuantizedMultiplier(acc[i] + bias[i], mult[i], shift[i]) + offset),
 * per channel, like ek_requantize_s8: 16 channels per step when every shift is <= 0 in
 * the double-rounding build (int32 lanes clamped, then narrowed by saturating packs,
 * exact since the clamp keeps them in int8), the scalar loop otherwise and for the
 * channels past the last step. */
EK_INLINE void ek_x86_requantize(int32_t *acc, const int32_t *bias, const int32_t *multiplier,
                                 const int32_t *shift, int8_t *out, int n, int32_t offset,
                                 int32_t act_min, int32_t act_max, int right_shifts_only) {
  int c = 0;
  if (right_shifts_only && !EK_SINGLE_ROUNDING) {
    const __m256i off = _mm256_set1_epi32(offset), lo = _mm256_set1_epi32(act_min),
                  hi = _mm256_set1_epi32(act_max), zero = _mm256_setzero_si256();
    for (; c + 16 <= n; c += 16) {
      __m256i v[2];
      int h;
      for (h = 0; h < 2; ++h) {
        const int i = c + 8 * h;
        const __m256i x = _mm256_add_epi32(_mm256_loadu_si256((const __m256i *)(const void *)(acc + i)),
                                           _mm256_loadu_si256((const __m256i *)(const void *)(bias + i)));
        const __m256i m = _mm256_loadu_si256((const __m256i *)(const void *)(multiplier + i));
        const __m256i e = _mm256_sub_epi32(zero, _mm256_loadu_si256((const __m256i *)(const void *)(shift + i)));
        v[h] = _mm256_min_epi32(_mm256_max_epi32(_mm256_add_epi32(ek_x86_mbqm(x, m, e), off), lo), hi);
      }
      {
        /* int32 (0-7, 8-15) -> int16 in 128-bit halves (0-3, 8-11 | 4-7, 12-15) -> in order
         * -> int8 (0-7 twice | 8-15 twice) -> the first 8 bytes of each half */
        const __m256i h16 = _mm256_permute4x64_epi64(_mm256_packs_epi32(v[0], v[1]), 0xd8);
        const __m256i b8 = _mm256_permute4x64_epi64(_mm256_packs_epi16(h16, h16), 0x08);
        _mm_storeu_si128((__m128i *)(void *)(out + c), _mm256_castsi256_si128(b8));
      }
    }
  }
  if (c < n) {
    int i;
    for (i = c; i < n; ++i) acc[i] += bias[i];
    ek_requantize_s8(acc + c, multiplier + c, shift + c, 1, right_shifts_only, out + c, n - c,
                     offset, act_min, act_max);
  }
}

/* ek_conv_s8 on this path (same arguments; the filter lane_packed, `acc` rows of
 * out_c rounded up to 16). Windows are widened into a buffer on the stack a group
 * of pixels at a time before any of the group's outputs is written (the output may
 * lie over the input: ek_conv.h). */
EK_INLINE void ek_x86_conv_s8(const int8_t *input, const int8_t *filter, const int32_t *folded_bias,
                              const int32_t *multiplier, const int32_t *shift, int8_t *output,
                              int32_t *acc, int pixels, int in_h, int in_w, int in_c, int out_h,
                              int out_w, int out_c, int k_h, int k_w, int stride_h, int stride_w,
                              int dil_h, int dil_w, int pad_h, int pad_w, int32_t input_offset,
                              int32_t output_offset, int32_t act_min, int32_t act_max,
                              int right_shifts_only) {
  const int k_len = k_h * k_w * in_c, k4 = (k_len + 3) / 4;
  const int blocks = (out_c + 15) / 16, acc_row = blocks * 16;
  int16_t windows[EK_X86_PIXELS][EK_X86_CONV_DEPTH] __attribute__((aligned(32)));
  const int16_t *x[EK_X86_PIXELS];
  int q, p;
  for (p = 0; p < EK_X86_PIXELS; ++p) {
    int i;
    for (i = k_len; i < 4 * k4; ++i) windows[p][i] = 0; /* zero weights meet these taps */
    x[p] = windows[p];
  }
  for (q = 0; q < pixels; q += EK_X86_PIXELS) {
    const int npix = pixels - q < EK_X86_PIXELS ? pixels - q : EK_X86_PIXELS;
    for (p = 0; p < npix; ++p)
      ek_x86_window(input, windows[p], q + p, in_h, in_w, in_c, out_h, out_w, k_h, k_w, stride_h,
                    stride_w, dil_h, dil_w, pad_h, pad_w, input_offset);
    switch (npix) { /* a constant count of windows in each call */
      case 3: ek_x86_dot_blocks(x, 3, filter, k4, blocks, acc, acc_row); break;
      case 2: ek_x86_dot_blocks(x, 2, filter, k4, blocks, acc, acc_row); break;
      default: ek_x86_dot_blocks(x, 1, filter, k4, blocks, acc, acc_row); break;
    }
    for (p = 0; p < npix; ++p)
      ek_x86_requantize(acc + p * acc_row, folded_bias, multiplier, shift,
                        output + (size_t)(q + p) * out_c, out_c, output_offset, act_min, act_max,
                        right_shifts_only);
  }
}

/* Depthwise, depth multiplier 1, channels a multiple of 16, up to EK_X86_DW_MAX_TAPS taps:
 * ek_depthwise_conv_s8 on this path (`acc` is out_c int32 of scratch followed by in_c
 * bytes for a row of the input zero point, read for taps outside the image). Two taps
 * of 16 channels, sign-extended and interleaved (vpunpcklwd/vpunpckhwd), meet the two
 * taps' weights in two vpmaddwd: the filter is stored at compile time in that order
 * (ops/conv.py x86_depthwise_filter: [tap pair][16 channels][the unpacked order], int8,
 * sign-extended as loaded), an odd last tap paired with zero weights. Exact: products
 * fit int16 and vpmaddwd adds two in int32. `folded_bias` is bias + input_offset *
 * sum(w), as on the portable path, since x is not offset here. */
#define EK_X86_DW_MAX_TAPS 64
EK_INLINE void ek_x86_depthwise_s8(const int8_t *input, const int8_t *filter,
                                   const int32_t *folded_bias, const int32_t *multiplier,
                                   const int32_t *shift, int8_t *output, int32_t *acc, int batches,
                                   int in_h, int in_w, int in_c, int out_h, int out_w, int k_h,
                                   int k_w, int stride_h, int stride_w, int dil_h, int dil_w,
                                   int pad_h, int pad_w, int32_t input_offset,
                                   int32_t output_offset, int32_t act_min, int32_t act_max,
                                   int right_shifts_only) {
  int8_t *zero_row = (int8_t *)(acc + in_c);
  const int taps = k_h * k_w, pairs = (taps + 1) / 2, blocks = in_c / 16;
  int b, oy, ox, ky, kx, c, t;
  memset(zero_row, (int8_t)(-input_offset), (size_t)in_c);
  for (b = 0; b < batches; ++b) {
    const int8_t *in_b = input + b * in_h * in_w * in_c;
    for (oy = 0; oy < out_h; ++oy) {
      const int y0 = oy * stride_h - pad_h;
      for (ox = 0; ox < out_w; ++ox) {
        const int x0 = ox * stride_w - pad_w;
        const int8_t *tp[EK_X86_DW_MAX_TAPS + 1];
        for (ky = 0; ky < k_h; ++ky) {
          const int y = y0 + dil_h * ky;
          for (kx = 0; kx < k_w; ++kx) {
            const int xx = x0 + dil_w * kx;
            const int inside = y >= 0 && y < in_h && xx >= 0 && xx < in_w;
            tp[ky * k_w + kx] = inside ? in_b + (y * in_w + xx) * in_c : zero_row;
          }
        }
        tp[taps] = zero_row; /* the zero weights of an odd last pair */
        for (c = 0; c < blocks; ++c) {
          __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
          const int8_t *w = filter + (size_t)c * 32;
          for (t = 0; t < pairs; ++t, w += (size_t)blocks * 32) {
            const __m256i a =
                _mm256_cvtepi8_epi16(_mm_loadu_si128((const __m128i *)(const void *)(tp[2 * t] + 16 * c)));
            const __m256i d = _mm256_cvtepi8_epi16(
                _mm_loadu_si128((const __m128i *)(const void *)(tp[2 * t + 1] + 16 * c)));
            const __m256i wl = _mm256_cvtepi8_epi16(_mm_load_si128((const __m128i *)(const void *)w));
            const __m256i wh = _mm256_cvtepi8_epi16(_mm_load_si128((const __m128i *)(const void *)(w + 16)));
            lo = _mm256_add_epi32(lo, _mm256_madd_epi16(_mm256_unpacklo_epi16(a, d), wl));
            hi = _mm256_add_epi32(hi, _mm256_madd_epi16(_mm256_unpackhi_epi16(a, d), wh));
          }
          /* lo holds channels 0-3 | 8-11, hi 4-7 | 12-15 */
          _mm256_storeu_si256((__m256i *)(void *)(acc + 16 * c), _mm256_permute2x128_si256(lo, hi, 0x20));
          _mm256_storeu_si256((__m256i *)(void *)(acc + 16 * c + 8), _mm256_permute2x128_si256(lo, hi, 0x31));
        }
        ek_x86_requantize(acc, folded_bias, multiplier, shift,
                          output + ((size_t)(b * out_h + oy) * out_w + ox) * in_c, in_c, output_offset,
                          act_min, act_max, right_shifts_only);
      }
    }
  }
}

#else
#define EK_X86_CONV 0
#endif

#endif /* EK_X86_H */
