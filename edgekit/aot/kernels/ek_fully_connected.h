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
EK_INLINE void ek_fully_connected_s8(const int8_t *input, const int8_t *weights,
                                     const int32_t *folded_bias, const int32_t *multiplier,
                                     const int32_t *shift, int rq, int8_t *output,
                                     int8_t *x_pad,
                                     int batches, int out_depth, int accum_depth, int k_pad,
                                     int per_channel, int32_t output_offset, int32_t act_min,
                                     int32_t act_max, int right_shifts_only) {
  int32_t acc[EK_FC_BLOCK];
  int b, o0, o;
  if (k_pad != accum_depth) memset(x_pad + accum_depth, 0, (size_t)(k_pad - accum_depth));
  for (b = 0; b < batches; ++b) {
    const int8_t *x = input + b * accum_depth;
    if (k_pad != accum_depth) {
      memcpy(x_pad, x, (size_t)accum_depth);
      x = x_pad;
    }
    for (o0 = 0; o0 < out_depth; o0 += EK_FC_BLOCK) {
      const int n = out_depth - o0 < EK_FC_BLOCK ? out_depth - o0 : EK_FC_BLOCK;
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
      if (EK_USE_DSP && rq)
        ek_requantize_rq(acc, per_channel ? multiplier + rq * o0 : multiplier, rq, per_channel, 2,
                         output + b * out_depth + o0, n, act_min, act_max);
      else
        ek_requantize_s8(acc, per_channel ? multiplier + o0 : multiplier,
                       per_channel ? shift + o0 : shift, per_channel, right_shifts_only,
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
