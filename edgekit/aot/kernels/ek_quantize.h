/* ek_quantize.h: QUANTIZE (float32 -> int8; int8 -> int8; uint8 <-> int8) and DEQUANTIZE
 * (int8 -> float32).
 *
 * float32 -> int8 is TFLM's reference_ops::AffineQuantize: round(x / scale)
 * (a float division, rounded half away from zero) plus the zero point,
 * clamped. Integer -> integer is reference_ops::Requantize: the offset input is
 * rescaled by MultiplyByQuantizedMultiplier(in_scale / out_scale). DEQUANTIZE
 * is reference_ops::Dequantize, float(double(scale) * (q - zero_point)); that
 * product is exact in double (24 x 9 bits), so one float multiply rounds it
 * identically and no double arithmetic is needed on a single-precision FPU. */
#ifndef EK_QUANTIZE_H
#define EK_QUANTIZE_H

/* std::round for the range that matters before an int8 clamp, without libm:
 * |q| is clamped to 512 first, so anything beyond saturates (+inf to 127,
 * -inf and NaN to -128). Past the int32 range TFLM's own float -> int32 cast
 * is undefined (x86 yields INT32_MIN and the zero point is added with
 * wrap-around; Arm saturates, NaN to 0), so only finite inputs below 2^31
 * after scaling are comparable with it. For |q| <= 512, q - trunc(q) is
 * exact, so the tie test is exact. */
EK_INLINE int32_t ek_round_clamped_f32(float q) {
  int32_t t;
  float frac;
  if (!(q >= -512.0f)) q = -512.0f;
  if (q > 512.0f) q = 512.0f;
  t = (int32_t)q;
  frac = q - (float)t;
  if (frac >= 0.5f) {
    ++t;
  } else if (frac <= -0.5f) {
    --t;
  }
  return t;
}

EK_INLINE void ek_quantize_f32_s8(const float *in, int8_t *out, int size, float scale,
                                  int32_t zero_point) {
  int i;
  for (i = 0; i < size; ++i) {
    const int32_t v = ek_round_clamped_f32(in[i] / scale) + zero_point;
    out[i] = (int8_t)ek_clamp_i32(v, -128, 127);
  }
}

/* Integer -> integer QUANTIZE (reference_ops::Requantize), one function per type pair:
 * ek_quantize_s8_s8, and ek_quantize_u8_s8 / ek_quantize_s8_u8 for uint8 model inputs and
 * outputs (TFLM's shortcut for a pure zero-point shift of 128, x ^ 0x80, gives what this
 * arithmetic gives). */
#define EK_DEFINE_REQUANTIZE(name, in_t, out_t, out_min, out_max)                              \
  EK_INLINE void name(const in_t *in, out_t *out, int size, int32_t in_zero_point,           \
                      int32_t out_zero_point, int32_t multiplier, int shift) {               \
    int i;                                                                                   \
    for (i = 0; i < size; ++i) {                                                             \
      const int32_t v = ek_mbqm(in[i] - in_zero_point, multiplier, shift) + out_zero_point;  \
      out[i] = (out_t)ek_clamp_i32(v, out_min, out_max);                                     \
    }                                                                                        \
  }
EK_DEFINE_REQUANTIZE(ek_quantize_s8_s8, int8_t, int8_t, -128, 127)
EK_DEFINE_REQUANTIZE(ek_quantize_u8_s8, uint8_t, int8_t, -128, 127)
EK_DEFINE_REQUANTIZE(ek_quantize_s8_u8, int8_t, uint8_t, 0, 255)

EK_INLINE void ek_dequantize_s8_f32(const int8_t *in, float *out, int size, float scale,
                                    int32_t zero_point) {
  int i;
  for (i = 0; i < size; ++i) {
    out[i] = (float)(in[i] - zero_point) * scale;
  }
}

#endif /* EK_QUANTIZE_H */
