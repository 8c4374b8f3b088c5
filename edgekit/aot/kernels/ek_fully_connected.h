/* ek_fully_connected.h: FULLY_CONNECTED, int8 (per-tensor or per-channel) and float32.
 *
 * int8 matches TFLM's reference_integer_ops::FullyConnected(PerChannel):
 * acc = bias[o] + sum_d w[o][d] * (x[d] + input_offset), requantized per
 * output channel. The compiler folds bias[o] + input_offset * sum_d w[o][d]
 * into `bias` (exact in integers), so the inner loop is a plain int8 dot
 * product the C compiler vectorizes; weights have TFLM's [out][depth] layout. */
#ifndef EK_FULLY_CONNECTED_H
#define EK_FULLY_CONNECTED_H

EK_INLINE void ek_fully_connected_s8(const int8_t *input, const int8_t *weights,
                                     const int32_t *folded_bias, const int32_t *multiplier,
                                     const int32_t *shift, int8_t *output, int batches,
                                     int out_depth, int accum_depth, int per_channel,
                                     int32_t output_offset, int32_t act_min, int32_t act_max) {
  int b, o;
  for (b = 0; b < batches; ++b) {
    const int8_t *x = input + b * accum_depth;
    for (o = 0; o < out_depth; ++o) {
      const int q = per_channel ? o : 0;
      int32_t acc = ek_dot_s8(weights + o * accum_depth, x, accum_depth) + folded_bias[o];
      acc = ek_mbqm(acc, multiplier[q], (int)shift[q]) + output_offset;
      output[b * out_depth + o] = (int8_t)ek_clamp_i32(acc, act_min, act_max);
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
