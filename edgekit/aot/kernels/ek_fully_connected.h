/* ek_fully_connected.h: FULLY_CONNECTED, int8 (per-tensor or per-channel) and float32.
 *
 * int8 matches TFLM's reference_integer_ops::FullyConnected(PerChannel):
 * acc = bias[o] + sum_d w[o][d] * (x[d] + input_offset), requantized per
 * output channel. The compiler folds bias[o] + input_offset * sum_d w[o][d]
 * into the bias (exact in integers), so the inner loop is a plain int8 dot
 * product (ek_dot); weights have TFLM's [out][depth] layout. */
#ifndef EK_FULLY_CONNECTED_H
#define EK_FULLY_CONNECTED_H

/* `folded_bias` holds bias + (input_offset - EK_DOT_BIAS) * sum(w) per output.
 * Weight rows are zero-padded from accum_depth to k_pad bytes (a multiple of
 * the vector length); when they are, each input row is first copied into
 * `x_pad` (k_pad bytes of scratch). Outputs go in blocks of EK_FC_BLOCK: the
 * accumulators live on the stack (128 bytes) and each block is requantized in
 * one vectorizable loop. */
#define EK_FC_BLOCK 32

/* Outputs in SIMD lanes (x86 with AVX2, built by gcc; not on DSP bundles): one
 * 256-bit register holds eight outputs' accumulators, and each pair of inputs,
 * as two int16 (x + 128, i.e. EK_DOT_BIAS 128 as ek_dot), broadcast, meets
 * the pair's weights of eight outputs in one vpmaddwd (the int8 weights
 * sign-extended on load, vpmovsxbw). The weights are packed at compile time
 * [output block of 8][k / 2][8][2] (ops/fully_connected.py pair_packed); the
 * input row is widened into pairs once (on the stack: rows up to
 * EK_FC_LANES_DEPTH, the compiler packs longer ones for the portable path),
 * and eight blocks (64 outputs) share each broadcast pair. Exact: each
 * product is at most 255 * 128 and vpmaddwd sums two of them in int32. With a
 * batch of one the portable dot product ended every output with a horizontal
 * sum and widened the input again for every four outputs. */
#if !(defined(EK_DSP) && EK_DSP) && defined(__GNUC__) && !defined(__clang__) && defined(__AVX2__)
#define EK_FC_LANES 8
#define EK_FC_LANES_DEPTH 2048
#define EK_FC_LANES_BLOCK 64
typedef int ek_fc_v8_t __attribute__((vector_size(32)));
typedef short ek_fc_h16_t __attribute__((vector_size(32)));
typedef char ek_fc_b16_t __attribute__((vector_size(16)));

/* acc[8 * g + j] for g < groups: sum over pairs p of the two products of pairs[p] with
 * w[g][p][j][0..1] */
EK_INLINE void ek_fc_lanes_group(const uint32_t *pairs, const int8_t *w, int k2, int groups,
                                 int32_t *acc) {
  ek_fc_v8_t a[EK_FC_LANES_BLOCK / 8];
  ek_fc_b16_t wb;
  int j, g;
  for (g = 0; g < EK_FC_LANES_BLOCK / 8; ++g) a[g] = (ek_fc_v8_t){0};
  for (j = 0; j < k2; ++j) {
    const ek_fc_h16_t pair = (ek_fc_h16_t)((ek_fc_v8_t){0} + (int)pairs[j]);
    for (g = 0; g < groups; ++g) {
      memcpy(&wb, w + ((size_t)g * (size_t)k2 + (size_t)j) * 16, 16);
      a[g] += __builtin_ia32_pmaddwd256(pair, __builtin_ia32_pmovsxbw256(wb));
    }
  }
  for (g = 0; g < groups; ++g) memcpy(acc + 8 * g, &a[g], 32);
}

EK_INLINE void ek_fc_lanes_s8(const int8_t *input, const int8_t *weights, const int32_t *folded_bias,
                              const int32_t *multiplier, const int32_t *shift, int8_t *output,
                              int batches, int out_depth, int accum_depth, int per_channel,
                              int32_t output_offset, int32_t act_min, int32_t act_max,
                              int right_shifts_only) {
  const int k2 = (accum_depth + 1) / 2;
  uint32_t pairs[EK_FC_LANES_DEPTH / 2];
  int32_t acc[EK_FC_LANES_BLOCK];
  int b, o0, o, j;
  for (b = 0; b < batches; ++b) {
    const uint8_t *x = (const uint8_t *)(input + b * accum_depth);
    /* 16 bytes at a time: x ^ 0x80 zero-extended to int16 is two pairs per word (vpmovzxbw) */
    for (j = 0; j + 16 <= accum_depth; j += 16) {
      ek_fc_b16_t v;
      ek_fc_h16_t h;
      memcpy(&v, x + j, 16);
      v ^= (ek_fc_b16_t){0} + (char)-128;
      h = __builtin_ia32_pmovzxbw256(v);
      memcpy(pairs + j / 2, &h, 32);
    }
    for (; j + 1 < accum_depth; j += 2)
      pairs[j / 2] = (uint32_t)(uint8_t)(x[j] ^ 0x80u) | (uint32_t)(uint8_t)(x[j + 1] ^ 0x80u) << 16;
    if (accum_depth % 2) pairs[k2 - 1] = (uint8_t)(x[accum_depth - 1] ^ 0x80u);
    for (o0 = 0; o0 < out_depth; o0 += EK_FC_LANES_BLOCK) {
      const int n = out_depth - o0 < EK_FC_LANES_BLOCK ? out_depth - o0 : EK_FC_LANES_BLOCK;
      const int8_t *w = weights + (size_t)(o0 / 8) * (size_t)k2 * 16;
      /* a constant group count at each call keeps the accumulators in registers */
      switch ((n + 7) / 8) {
        case 8: ek_fc_lanes_group(pairs, w, k2, 8, acc); break;
        case 7: ek_fc_lanes_group(pairs, w, k2, 7, acc); break;
        case 6: ek_fc_lanes_group(pairs, w, k2, 6, acc); break;
        case 5: ek_fc_lanes_group(pairs, w, k2, 5, acc); break;
        case 4: ek_fc_lanes_group(pairs, w, k2, 4, acc); break;
        case 3: ek_fc_lanes_group(pairs, w, k2, 3, acc); break;
        case 2: ek_fc_lanes_group(pairs, w, k2, 2, acc); break;
        default: ek_fc_lanes_group(pairs, w, k2, 1, acc); break;
      }
      for (o = 0; o < n; ++o) acc[o] += folded_bias[o0 + o];
      ek_requantize_row(acc, multiplier, shift, o0, per_channel, 0, 1, right_shifts_only,
                        output + b * out_depth + o0, n, output_offset, act_min, act_max);
    }
  }
}
#else
#define EK_FC_LANES 0
#define EK_FC_LANES_DEPTH 0
#endif

EK_INLINE void ek_fully_connected_s8(const int8_t *input, const int8_t *weights, int dsp_rows,
                                     const int32_t *folded_bias, const int32_t *multiplier,
                                     const int32_t *shift, int rq, int8_t *output,
                                     int8_t *x_pad,
                                     int batches, int out_depth, int accum_depth, int k_pad,
                                     int per_channel, int32_t output_offset, int32_t act_min,
                                     int32_t act_max, int right_shifts_only) {
  int32_t acc[EK_FC_BLOCK];
  int b, o0, o;
  /* dsp_rows: how the compiler laid the weights out for ek_fc_dsp.h, 0 when it did not
   * (hosts, rows past EK_FC_Q15_DEPTH, layers too small to pay for its code): 1 int8, 2 int16 */
  (void)dsp_rows;
#if EK_FC_LANES
  /* the compiler packed these weights for the lanes (rows up to EK_FC_LANES_DEPTH) */
  if (accum_depth <= EK_FC_LANES_DEPTH) {
    ek_fc_lanes_s8(input, weights, folded_bias, multiplier, shift, output, batches, out_depth,
                   accum_depth, per_channel, output_offset, act_min, act_max, right_shifts_only);
    return;
  }
#endif
#if EK_USE_DSP
  if (dsp_rows) {
    (void)x_pad;
    ek_fc_q15_s8(input, weights, dsp_rows == 2, folded_bias, multiplier, shift, rq, output, batches, out_depth,
                 accum_depth, k_pad, per_channel, output_offset, act_min, act_max, right_shifts_only);
    return;
  }
#endif
  /* x_pad is null when k_pad == accum_depth (tested too: a call not inlined cannot tell) */
  if (k_pad != accum_depth && x_pad) memset(x_pad + accum_depth, 0, (size_t)(k_pad - accum_depth));
  for (b = 0; b < batches; ++b) {
    const int8_t *x = input + b * accum_depth;
    if (k_pad != accum_depth && x_pad) {
      memcpy(x_pad, x, (size_t)accum_depth);
      x = x_pad;
    }
    for (o0 = 0; o0 < out_depth; o0 += EK_FC_BLOCK) {
      const int n = out_depth - o0 < EK_FC_BLOCK ? out_depth - o0 : EK_FC_BLOCK;
#if EK_MVE
      /* Helium (ek_mve.h): rows grouped by four (ops/conv.py mve_groups), VMLADAVA over
       * 16 bytes, vector requantization */
      ek_mve_fc_dot(x, weights + (size_t)o0 * (size_t)k_pad, k_pad / 16, n, folded_bias + o0, acc);
      ek_mve_requantize(acc, per_channel ? multiplier + o0 : multiplier,
                        per_channel ? shift + o0 : shift, per_channel, right_shifts_only,
                        output + b * out_depth + o0, n, output_offset, act_min, act_max);
      continue;
#endif
      if (n >= 4) {
        /* whole groups of four; a ragged end recomputes the last four rows */
        for (o = 0; o < n; o += 4) {
          const int first = o + 4 <= n ? o : n - 4;
          ek_dot4(x, weights + (size_t)(o0 + first) * (size_t)k_pad, k_pad, k_pad, acc + first);
        }
      } else {
        for (o = 0; o < n; ++o) acc[o] = ek_dot(x, weights + (size_t)(o0 + o) * (size_t)k_pad, k_pad);
      }
      for (o = 0; o < n; ++o) acc[o] += folded_bias[o0 + o];
      ek_requantize_row(acc, multiplier, shift, o0, per_channel, rq, 2, right_shifts_only,
                        output + b * out_depth + o0, n, output_offset, act_min, act_max);
    }
  }
}

EK_INLINE void ek_fully_connected_f32(const float *input, const float *weights,
                                      const float *bias, float *output, int batches,
                                      int out_depth, int accum_depth, float act_min,
                                      float act_max) {
  int b, o, d;
  for (b = 0; b < batches; ++b) {
    const float *x = input + b * accum_depth;
    for (o = 0; o < out_depth; ++o) {
      const float *w = weights + o * accum_depth;
      float total = 0.0f;
      for (d = 0; d < accum_depth; ++d) total += x[d] * w[d];
      if (bias) total += bias[o];
      output[b * out_depth + o] = ek_clamp_f32(total, act_min, act_max);
    }
  }
}

#endif /* EK_FULLY_CONNECTED_H */
