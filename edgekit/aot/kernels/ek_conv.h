/* ek_conv.h: CONV_2D and DEPTHWISE_CONV_2D, int8 per-channel and float32, NHWC.
 *
 * int8 matches TFLM's reference_integer_ops::ConvPerChannel and
 * DepthwiseConvPerChannel: acc = bias[oc] + sum over taps inside the image of
 * w * (x + input_offset), requantized per output channel. The compiler folds
 * input_offset * sum(w) into `folded_bias`, so the inner loops are plain int8
 * products.
 *
 * The output may lie over the input (the planner puts it there when the input
 * dies here, edgekit/aot/inplace.py): both int8 kernels compute output pixels
 * in order and write a group of pixels only after reading all their windows.
 * Any path of these kernels must keep that order. */
#ifndef EK_CONV_H
#define EK_CONV_H

/* The window of output pixel `q` (batch-major): a pointer into the input for a
 * 1x1 window read in place, else `patch` filled with the window's taps, taps
 * outside the image set to the input zero point (where x + input_offset is 0:
 * exactly the reference's skipping of those taps). With `flip` (the lanes
 * path when in_c is a multiple of 16) every byte is stored XORed with 0x80,
 * i.e. as x + 128, the unsigned byte vpdpbusd takes: cheaper here, 16 bytes
 * at a time, than a scalar XOR per input word in the inner loop. */
EK_INLINE const int8_t *ek_conv_window(const int8_t *input, int8_t *patch, int in_place, int q,
                                       int in_h, int in_w, int in_c, int out_h, int out_w,
                                       int k_h, int k_w, int stride_h, int stride_w, int dil_h,
                                       int dil_w, int pad_h, int pad_w, int32_t input_offset,
                                       int flip) {
  const int8_t pad_value = (int8_t)((uint8_t)(-input_offset) ^ (flip ? 0x80u : 0u));
  const int b = q / (out_h * out_w), r = q % (out_h * out_w);
  const int y0 = (r / out_w) * stride_h - pad_h, x0 = (r % out_w) * stride_w - pad_w;
  const int8_t *in_b = input + b * in_h * in_w * in_c;
  int ky, kx;
  if (in_place) return in_b + (y0 * in_w + x0) * in_c;
  for (ky = 0; ky < k_h; ++ky) {
    const int y = y0 + dil_h * ky;
    int8_t *dst = patch + ky * k_w * in_c;
    if (y < 0 || y >= in_h) {
      memset(dst, pad_value, (size_t)(k_w * in_c));
      continue;
    }
#if EK_MVE
    if (dil_w == 1 && x0 >= 0 && x0 + k_w <= in_w) { /* the row's taps are contiguous: one copy */
      ek_mve_copy(dst, in_b + (y * in_w + x0) * in_c, k_w * in_c);
      continue;
    }
#endif
    if (!flip && dil_w == 1 && x0 >= 0 && x0 + k_w <= in_w) { /* the row's taps are contiguous */
      memcpy(dst, in_b + (y * in_w + x0) * in_c, (size_t)(k_w * in_c));
      continue;
    }
    for (kx = 0; kx < k_w; ++kx) {
      const int x = x0 + dil_w * kx;
      if (x < 0 || x >= in_w) {
        memset(dst + kx * in_c, pad_value, (size_t)in_c);
      } else if (flip) {
#if EK_LANES
        /* 16 bytes at a time (flip needs in_c % 16 == 0): the inner loop's 4-byte
         * loads then each fall inside one store and are forwarded from it */
        const int8_t *src = in_b + (y * in_w + x) * in_c;
        int i;
        for (i = 0; i < in_c; i += 16) {
          ek_bytes16_t v;
          memcpy(&v, src + i, 16);
          v ^= (ek_bytes16_t){0} + 0x80u;
          memcpy(dst + kx * in_c + i, &v, 16);
        }
#endif
      } else {
        memcpy(dst + kx * in_c, in_b + (y * in_w + x) * in_c, (size_t)in_c);
      }
    }
  }
  return patch;
}

/* Output pixels go in groups of EK_CONV_PIXELS. `acc` is that many rows of
 * int32 scratch (one pixel's accumulators each, out_c rounded up to whole
 * blocks of EK_LANES; each row is requantized in one vectorizable loop);
 * `patch` is EK_CONV_PIXELS * k_pad bytes of scratch, one window per pixel.
 * `filter` is laid out for the path compiled: with EK_LANES, channel blocks
 * packed for ek_lanes_dot with rows of k_h * k_w * in_c rounded up to 4
 * bytes, four pixels sharing each weight load; otherwise rows zero-padded to
 * k_pad bytes (a multiple of the vector length, so the dot product has no
 * scalar tail) and pixels in pairs. A 1x1 window whose rows need no padding
 * is read in place. On the DSP path the filter rows are int16 in SMLAD order,
 * interleaved by word in groups of four (twice the flash of int8, no unpacking in
 * the loop; k_pad a multiple of 8), and `patch` is followed by 2 * k_pad int16 for
 * the pair's widened windows (ek_dot2x4_q15, ek_dot2x1_q15); the portable
 * path runs ek_dot4 per pixel. `folded_bias` holds
 * bias + (input_offset - EK_DOT_BIAS) * sum(w). */
#if EK_LANES
#define EK_CONV_PIXELS EK_LANES_PIXELS
#else
#define EK_CONV_PIXELS 2
#endif
EK_INLINE void ek_conv_s8(const int8_t *input, const void *filter, const int32_t *folded_bias,
                          const int32_t *multiplier, const int32_t *shift, int rq,
                          int rq_scale, int wide, int8_t *output,
                          int32_t *acc, int8_t *patch, int batches, int in_h, int in_w, int in_c,
                          int out_h, int out_w, int out_c, int k_h, int k_w, int k_pad,
                          int stride_h, int stride_w, int dil_h, int dil_w, int pad_h, int pad_w,
                          int32_t input_offset, int32_t output_offset, int32_t act_min,
                          int32_t act_max, int right_shifts_only) {
  const int k_len = k_h * k_w * in_c;
#if EK_X86_CONV /* AVX2 (ek_x86.h): the compiler packed these filters for it */
  if (((k_len + 3) & ~3) <= EK_X86_CONV_DEPTH) {
    ek_x86_conv_s8(input, (const int8_t *)filter, folded_bias, multiplier, shift, output, acc,
                   batches * out_h * out_w, in_h, in_w, in_c, out_h, out_w, out_c, k_h, k_w,
                   stride_h, stride_w, dil_h, dil_w, pad_h, pad_w, input_offset, output_offset,
                   act_min, act_max, right_shifts_only);
    return;
  }
#endif
#if EK_LANES
  const int k_row = (k_len + 3) & ~3;
  const int acc_row = (out_c + EK_LANES - 1) / EK_LANES * EK_LANES;
#else
  const int k_row = k_pad;
  const int acc_row = out_c;
#endif
  const int in_place = (k_h == 1 && k_w == 1 && pad_h == 0 && pad_w == 0 && k_row == k_len);
  /* on the lanes path, patches of whole 16-byte taps hold x + 128; other windows are
   * flipped word by word in the inner loop */
  const int flip = EK_LANES && !in_place && in_c % 16 == 0;
  const uint32_t word_flip = EK_LANES && !flip ? 0x80808080u : 0u;
  const int pixels = batches * out_h * out_w;
  const int8_t *win[EK_CONV_PIXELS];
  int q, p, oc;
  if (!in_place)
    for (p = 0; p < EK_CONV_PIXELS; ++p) memset(patch + p * k_pad + k_len, 0, (size_t)(k_row - k_len));
  for (q = 0; q < pixels; q += EK_CONV_PIXELS) {
    const int npix = pixels - q < EK_CONV_PIXELS ? pixels - q : EK_CONV_PIXELS;
    for (p = 0; p < npix; ++p)
      win[p] = ek_conv_window(input, patch + p * k_pad, in_place, q + p, in_h, in_w, in_c, out_h,
                              out_w, k_h, k_w, stride_h, stride_w, dil_h, dil_w, pad_h, pad_w,
                              input_offset, flip);
#if EK_MVE
    /* Helium (ek_mve.h): rows grouped by four (ops/conv.py mve_groups), vector requantization */
    ek_mve_conv_dot2(win[0], win[npix - 1], (const int8_t *)filter, k_pad / 16, out_c, folded_bias,
                     acc, acc + acc_row);
    if (npix == 2)
      ek_mve_requantize_pair(acc, acc + acc_row, multiplier, shift, right_shifts_only,
                             output + (size_t)q * out_c, output + (size_t)(q + 1) * out_c, out_c,
                             output_offset, act_min, act_max);
    else
      ek_mve_requantize(acc, multiplier, shift, 1, right_shifts_only, output + (size_t)q * out_c,
                        out_c, output_offset, act_min, act_max);
    continue;
#endif
#if EK_LANES
    ek_lanes_dot_n(win, npix, word_flip, (const int8_t *)filter, k_row / 4, acc_row / EK_LANES, acc, acc_row);
#else
    (void)word_flip;
    if (EK_USE_DSP && wide) {
#if EK_USE_DSP
      /* both windows widened to int16 once (after the patches in scratch, interleaved
       * by word; a lone last pixel is computed twice), then every group of four
       * filter rows (int16, SMLAD order, interleaved by word) meets both */
      int32_t *xq = (int32_t *)(void *)(patch + EK_CONV_PIXELS * k_pad);
      int32_t *acc0 = acc, *acc1 = acc + acc_row;
      const int32_t *rows = (const int32_t *)filter;
      ek_widen_q15_pair(win[0], win[npix - 1], xq, k_pad / 4);
      ek_dot2x4_q15(xq, rows, k_pad / 2, out_c / 4, folded_bias, acc0, acc1);
      oc = out_c / 4 * 4;
      rows += oc * (k_pad / 2);
      for (; oc < out_c; ++oc, rows += k_pad / 2)
        ek_dot2x1_q15(xq, rows, k_pad / 2, folded_bias[oc], acc0 + oc, acc1 + oc);
#endif
    } else {
      const int pair = npix == 2;
      const int8_t *win0 = win[0], *win1 = pair ? win[1] : win[0];
      int32_t *acc0 = acc, *acc1 = acc + acc_row;
      const int8_t *rows = (const int8_t *)filter;
      for (oc = 0; oc + 4 <= out_c; oc += 4, rows += 4 * (size_t)k_pad) {
        ek_dot4(win0, rows, k_pad, k_pad, acc0 + oc);
        if (pair) ek_dot4(win1, rows, k_pad, k_pad, acc1 + oc);
      }
      for (; oc < out_c; ++oc, rows += k_pad) {
        acc0[oc] = ek_dot(win0, rows, k_pad);
        if (pair) acc1[oc] = ek_dot(win1, rows, k_pad);
      }
    }
#endif
#if EK_LANES
    (void)wide;
#else
    if (!(EK_USE_DSP && wide)) /* the int16 dot products start from the bias */
      for (p = 0; p < npix; ++p)
        for (oc = 0; oc < out_c; ++oc) acc[p * acc_row + oc] += folded_bias[oc];
#endif
#if EK_USE_DSP
    if (rq) { /* both pixels per channel: one load of its parameters */
      int8_t *out0 = output + (size_t)q * out_c;
      for (oc = 0; oc < out_c; ++oc) {
        const int32_t *pq = multiplier + rq * oc;
        out0[oc] = (int8_t)ek_clamp_s8(ek_rq(acc[oc] * rq_scale, pq, rq), act_min, act_max);
        if (npix == 2)
          out0[out_c + oc] =
              (int8_t)ek_clamp_s8(ek_rq(acc[acc_row + oc] * rq_scale, pq, rq), act_min, act_max);
      }
      continue;
    }
#else
    (void)rq;
    (void)rq_scale;
#endif
    for (p = 0; p < npix; ++p) {
      int32_t *row = acc + p * acc_row;
#if EK_LANES
      if (right_shifts_only && !EK_SINGLE_ROUNDING) {
        ek_lanes_requantize(row, folded_bias, multiplier, shift, output + (size_t)(q + p) * out_c,
                            out_c, output_offset, act_min, act_max);
        continue;
      }
      for (oc = 0; oc < out_c; ++oc) row[oc] += folded_bias[oc];
#endif
      ek_requantize_s8(row, multiplier, shift, 1, right_shifts_only,
                       output + (size_t)(q + p) * out_c, out_c, output_offset, act_min, act_max);
    }
  }
}

/* Depthwise, int8. `acc` is out_c int32 of scratch memory followed by in_c
 * bytes for a row of the input zero point: a tap outside the image reads that
 * row, where x + input_offset is 0, which equals the reference's skipping of
 * the tap, so every pixel runs the same loops with `folded_bias`
 * (bias + input_offset * sum(w)). With depth_multiplier 1 the channel loops
 * are contiguous in input, filter and output; other multipliers map output
 * channel oc to input channel oc / m. On the DSP path, with `wide` (the compiler
 * sets it only for depth_multiplier 1 and in_c % 4 == 0), `filter_data` is int16 in
 * SMLABB/SMLATT order (ops/conv.py depthwise_dsp_filter); otherwise it is the int8
 * filter [k_h][k_w][out_c]. */
#define EK_DW_MAX_TAPS 64
EK_INLINE void ek_depthwise_conv_s8(const int8_t *input, const void *filter_data,
                                    const int32_t *folded_bias, const int32_t *multiplier,
                                    const int32_t *shift, int rq, int rq_scale, int wide,
                                    int8_t *output, int32_t *acc,
                                    int batches, int in_h, int in_w, int in_c, int out_h,
                                    int out_w, int out_c, int depth_multiplier, int k_h, int k_w,
                                    int stride_h, int stride_w, int dil_h, int dil_w, int pad_h,
                                    int pad_w, int32_t input_offset, int32_t output_offset,
                                    int32_t act_min, int32_t act_max, int right_shifts_only) {
  const int8_t *filter = (const int8_t *)filter_data;
  int8_t *zero_row = (int8_t *)(acc + out_c);
  int b, oy, ox, c, ky, kx;
  (void)wide;
#if EK_X86_CONV /* AVX2 (ek_x86.h): the compiler stored these filters for it */
  if (depth_multiplier == 1 && in_c % 16 == 0 && k_h * k_w <= EK_X86_DW_MAX_TAPS) {
    ek_x86_depthwise_s8(input, (const int8_t *)filter_data, folded_bias, multiplier, shift, output,
                        acc, batches, in_h, in_w, in_c, out_h, out_w, k_h, k_w, stride_h, stride_w,
                        dil_h, dil_w, pad_h, pad_w, input_offset, output_offset, act_min, act_max,
                        right_shifts_only);
    return;
  }
#endif
  memset(zero_row, (int8_t)(-input_offset), (size_t)in_c);
  for (b = 0; b < batches; ++b) {
    const int8_t *in_b = input + b * in_h * in_w * in_c;
    for (oy = 0; oy < out_h; ++oy) {
      const int y0 = oy * stride_h - pad_h;
      for (ox = 0; ox < out_w; ++ox) {
        const int x0 = ox * stride_w - pad_w;
        int8_t *out = output + ((b * out_h + oy) * out_w + ox) * out_c;
        if (depth_multiplier == 1 && k_h * k_w <= EK_DW_MAX_TAPS) {
          /* channels outermost, taps innermost: each accumulator stays in a
           * register (vector lane) for the whole window */
          const int8_t *taps[EK_DW_MAX_TAPS];
          int t;
          for (ky = 0; ky < k_h; ++ky) {
            const int y = y0 + dil_h * ky;
            for (kx = 0; kx < k_w; ++kx) {
              const int xx = x0 + dil_w * kx;
              const int inside = y >= 0 && y < in_h && xx >= 0 && xx < in_w;
              taps[ky * k_w + kx] = inside ? in_b + (y * in_w + xx) * in_c : zero_row;
            }
          }
#if EK_MVE && !EK_SINGLE_ROUNDING
          /* Helium (ek_mve.h): 16 channels per vector, requantized on vectors */
          ek_mve_depthwise_pixel(taps, k_h * k_w, filter, out_c, folded_bias, multiplier, shift,
                                 right_shifts_only, out, output_offset, act_min, act_max);
          continue;
#endif
          c = 0;
#if EK_USE_DSP
          /* four channels per word: SXTB16 splits the input word into the halfword
           * pairs (c0, c2) and (c1, c3), and SMLABB/SMLATT multiply each half by the
           * filter, stored widened in the same order at compile time (two words per
           * tap and four channels) */
          if (wide) {
            const int32_t *wq = (const int32_t *)filter;
            for (; c < out_c; c += 4) {
              int32_t a0 = folded_bias[c], a1 = folded_bias[c + 1], a2 = folded_bias[c + 2],
                      a3 = folded_bias[c + 3];
              const int32_t *w = wq + c / 2;
              for (t = 0; t < k_h * k_w; ++t, w += out_c / 2) {
                uint32_t v;
                int32_t xe, xo;
                memcpy(&v, taps[t] + c, 4);
                xe = __sxtb16(v);
                xo = __sxtb16((v >> 8) | (v << 24));
                a0 = __smlabb(xe, w[0], a0);
                a2 = __smlatt(xe, w[0], a2);
                a1 = __smlabb(xo, w[1], a1);
                a3 = __smlatt(xo, w[1], a3);
              }
              acc[c] = a0;
              acc[c + 1] = a1;
              acc[c + 2] = a2;
              acc[c + 3] = a3;
            }
          }
#endif
          for (; c < out_c; ++c) {
            int32_t a = folded_bias[c];
            /* products fit in int16: narrow multiplies pack twice as densely */
            for (t = 0; t < k_h * k_w; ++t)
              a += (int16_t)((int16_t)taps[t][c] * (int16_t)filter[t * out_c + c]);
            acc[c] = a;
          }
        } else {
          for (c = 0; c < out_c; ++c) acc[c] = folded_bias[c];
          for (ky = 0; ky < k_h; ++ky) {
            const int y = y0 + dil_h * ky;
            for (kx = 0; kx < k_w; ++kx) {
              const int xx = x0 + dil_w * kx;
              const int inside = y >= 0 && y < in_h && xx >= 0 && xx < in_w;
              const int8_t *x = inside ? in_b + (y * in_w + xx) * in_c : zero_row;
              const int8_t *w = filter + (ky * k_w + kx) * out_c;
              for (c = 0; c < out_c; ++c) acc[c] += (int32_t)w[c] * (int32_t)x[c / depth_multiplier];
            }
          }
        }
        ek_requantize_row(acc, multiplier, shift, 0, 1, rq, rq_scale, right_shifts_only, out, out_c,
                          output_offset, act_min, act_max);
      }
    }
  }
}

EK_INLINE void ek_conv_f32(const float *input, const float *filter, const float *bias,
                           float *output, int batches, int in_h, int in_w, int in_c, int out_h,
                           int out_w, int out_c, int k_h, int k_w, int stride_h, int stride_w,
                           int dil_h, int dil_w, int pad_h, int pad_w, float act_min,
                           float act_max) {
  int b, oy, ox, oc, ky, kx, ic;
  for (b = 0; b < batches; ++b) {
    for (oy = 0; oy < out_h; ++oy) {
      for (ox = 0; ox < out_w; ++ox) {
        for (oc = 0; oc < out_c; ++oc) {
          float total = 0.0f;
          for (ky = 0; ky < k_h; ++ky) {
            const int y = oy * stride_h - pad_h + dil_h * ky;
            if (y < 0 || y >= in_h) continue;
            for (kx = 0; kx < k_w; ++kx) {
              const int x = ox * stride_w - pad_w + dil_w * kx;
              const float *xp, *wp;
              if (x < 0 || x >= in_w) continue;
              xp = input + ((b * in_h + y) * in_w + x) * in_c;
              wp = filter + ((oc * k_h + ky) * k_w + kx) * in_c;
              for (ic = 0; ic < in_c; ++ic) total += xp[ic] * wp[ic];
            }
          }
          if (bias) total += bias[oc];
          output[((b * out_h + oy) * out_w + ox) * out_c + oc] = ek_clamp_f32(total, act_min, act_max);
        }
      }
    }
  }
}

EK_INLINE void ek_depthwise_conv_f32(const float *input, const float *filter, const float *bias,
                                     float *output, int batches, int in_h, int in_w, int in_c,
                                     int out_h, int out_w, int out_c, int depth_multiplier,
                                     int k_h, int k_w, int stride_h, int stride_w, int dil_h,
                                     int dil_w, int pad_h, int pad_w, float act_min,
                                     float act_max) {
  int b, oy, ox, oc, ky, kx;
  for (b = 0; b < batches; ++b) {
    for (oy = 0; oy < out_h; ++oy) {
      for (ox = 0; ox < out_w; ++ox) {
        for (oc = 0; oc < out_c; ++oc) {
          float total = 0.0f;
          const int ic = oc / depth_multiplier;
          for (ky = 0; ky < k_h; ++ky) {
            const int y = oy * stride_h - pad_h + dil_h * ky;
            if (y < 0 || y >= in_h) continue;
            for (kx = 0; kx < k_w; ++kx) {
              const int x = ox * stride_w - pad_w + dil_w * kx;
              if (x < 0 || x >= in_w) continue;
              total += input[((b * in_h + y) * in_w + x) * in_c + ic] *
                       filter[(ky * k_w + kx) * out_c + oc];
            }
          }
          if (bias) total += bias[oc];
          output[((b * out_h + oy) * out_w + ox) * out_c + oc] = ek_clamp_f32(total, act_min, act_max);
        }
      }
    }
  }
  (void)in_c;
}

#endif /* EK_CONV_H */
