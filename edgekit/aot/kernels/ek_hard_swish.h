/* ek_hard_swish.h: HARD_SWISH, x * relu6(x + 3) / 6.
 *
 * int8 needs no code here: the compiler tabulates TFLM's int16 fixed-point
 * HardSwish for the 256 input values and the bundle calls ek_lut_s8
 * (ek_logistic.h).
 *
 * float32: reference_ops::HardSwish, in its order: std::max(0, x + 3), then
 * std::min(6, .), then x * that / 6 (a multiplication by 1/6 would round
 * differently). */
#ifndef EK_HARD_SWISH_H
#define EK_HARD_SWISH_H

EK_INLINE void ek_hard_swish_f32(const float *in, float *out, int size) {
  int i;
  for (i = 0; i < size; ++i) {
    const float x = in[i];
    const float shifted = x + 3.0f;
    const float relu = (0.0f < shifted) ? shifted : 0.0f; /* std::max(0, x + 3) */
    const float relu6 = (relu < 6.0f) ? relu : 6.0f;      /* std::min(6, .) */
    out[i] = x * relu6 / 6.0f;
  }
}

#endif /* EK_HARD_SWISH_H */
