/* ek_fully_connected.h: FULLY_CONNECTED, int8 (per-tensor or per-channel) and float32.
 *
 * int8 matches TFLM's reference_integer_ops::FullyConnected(PerChannel):
 * acc = bias[o] + sum_d w[o][d] * (x[d] + input_offset), requantized per
 * output channel. The compiler folds bias[o] + input_offset * sum_d w[o][d]
 * into the bias (exact in integers), so the inner loop is a plain int8 dot
 * product (ek_dot); weights have TFLM's [out][depth] layout. */
#ifndef EK_FULLY_CONNECTED_H
#define EK_FULLY_CONNECTED_H

/* `acc` is out_depth int32 of scratch memory; `folded_bias` holds
 * bias + (input_offset - EK_DOT_BIAS) * sum(w) per output. */
EK_INLINE void ek_fully_connected_s8(const int8_t *input, const int8_t *weights,
                                     const int32_t *folded_bias, const int32_t *multiplier,
                                     const int32_t *shift, int8_t *output, int32_t *acc,
                                     int batches, int out_depth, int accum_depth, int per_channel,
                                     int32_t output_offset, int32_t act_min, int32_t act_max) {
  int b, o;
  for (b = 0; b < batches; ++b) {
    const int8_t *x = input + b * accum_depth;
    for (o = 0; o < out_depth; ++o)
      acc[o] = folded_bias[o] + ek_dot(x, weights + o * accum_depth, accum_depth);
    ek_requantize_s8(acc, multiplier, shift, per_channel, output + b * out_depth, out_depth,
                     output_offset, act_min, act_max);
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
