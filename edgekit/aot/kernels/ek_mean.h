/* ek_mean.h: MEAN over any set of axes, int8 and float32.
 *
 * The emitter splits the input's dimensions into kept ones (k0..k2, input
 * strides ks0..ks2, outermost first) and reduced ones (r0..r2, strides
 * rs0..rs2), after merging neighbours of the same kind; unused slots are
 * extent 1. The output is dense over the kept dimensions, so keep_dims does
 * not change the code. Each output sums its inputs in increasing memory
 * order, the order in which TFLM's reference Reduce accumulates them.
 *
 * int8 is TFLM's QuantizedMeanOrSum: the int32 sum, minus in_zero_point *
 * count, is rescaled once by a multiplier that already folds in 1 / count
 * (computed at compile time as TFLM does), then offset and clamped. float32
 * is reference_ops::Mean: sum / (float)count. */
#ifndef EK_MEAN_H
#define EK_MEAN_H

EK_INLINE void ek_mean_s8(const int8_t *in, int8_t *out,
                          int k0, int k1, int k2, int ks0, int ks1, int ks2,
                          int r0, int r1, int r2, int rs0, int rs1, int rs2,
                          int32_t in_zero_point, int32_t count, int32_t out_zero_point,
                          int32_t multiplier, int shift) {
  int a0, a1, a2, b0, b1, b2;
  for (a0 = 0; a0 < k0; ++a0) {
    for (a1 = 0; a1 < k1; ++a1) {
      for (a2 = 0; a2 < k2; ++a2) {
        const int8_t *base = in + a0 * ks0 + a1 * ks1 + a2 * ks2;
        int32_t sum = 0;
        int32_t v;
        for (b0 = 0; b0 < r0; ++b0) {
          for (b1 = 0; b1 < r1; ++b1) {
            const int8_t *p = base + b0 * rs0 + b1 * rs1;
            for (b2 = 0; b2 < r2; ++b2) {
              sum += p[b2 * rs2];
            }
          }
        }
        v = ek_mbqm(sum - in_zero_point * count, multiplier, shift) + out_zero_point;
        *out++ = (int8_t)ek_clamp_i32(v, -128, 127);
      }
    }
  }
}

EK_INLINE void ek_mean_f32(const float *in, float *out,
                           int k0, int k1, int k2, int ks0, int ks1, int ks2,
                           int r0, int r1, int r2, int rs0, int rs1, int rs2,
                           int32_t count) {
  int a0, a1, a2, b0, b1, b2;
  for (a0 = 0; a0 < k0; ++a0) {
    for (a1 = 0; a1 < k1; ++a1) {
      for (a2 = 0; a2 < k2; ++a2) {
        const float *base = in + a0 * ks0 + a1 * ks1 + a2 * ks2;
        float sum = 0.0f;
        for (b0 = 0; b0 < r0; ++b0) {
          for (b1 = 0; b1 < r1; ++b1) {
            const float *p = base + b0 * rs0 + b1 * rs1;
            for (b2 = 0; b2 < r2; ++b2) {
              sum += p[b2 * rs2];
            }
          }
        }
        *out++ = sum / (float)count;
      }
    }
  }
}

#endif /* EK_MEAN_H */
