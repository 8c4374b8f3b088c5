/* ek_common.h: integer helpers shared by every edgekit AOT kernel.
 *
 * The requantization matches TFLM's MultiplyByQuantizedMultiplier
 * (tensorflow/lite/kernels/internal/common.h) in both of its builds:
 * EK_SINGLE_ROUNDING 1 is TFLITE_SINGLE_ROUNDING (one rounding of a 64-bit
 * product), 0 is the gemmlowp double rounding (SaturatingRoundingDoublingHighMul
 * then RoundingDivideByPOT). The compiler defines EK_SINGLE_ROUNDING to the
 * rounding of the TFLM build it matches. */
#ifndef EK_COMMON_H
#define EK_COMMON_H

#include <stdint.h>
#include <string.h>

#if defined(__GNUC__)
#define EK_ALIGNED __attribute__((aligned(16)))
#define EK_INLINE static inline __attribute__((always_inline))
#define EK_UNUSED __attribute__((unused))
#else
#define EK_ALIGNED
#define EK_INLINE static inline
#define EK_UNUSED
#endif

#ifndef EK_SINGLE_ROUNDING
#define EK_SINGLE_ROUNDING 0
#endif

/* The DSP path: Cortex-M4/M7 SIMD (SMLAD, SXTB16) through ACLE intrinsics. */
#if defined(EK_DSP) && EK_DSP && defined(__ARM_FEATURE_DSP) && __ARM_FEATURE_DSP
#include <arm_acle.h>
#define EK_USE_DSP 1
#else
#define EK_USE_DSP 0
#endif

EK_INLINE int32_t ek_min_i32(int32_t a, int32_t b) { return a < b ? a : b; }
EK_INLINE int32_t ek_max_i32(int32_t a, int32_t b) { return a > b ? a : b; }
EK_INLINE int32_t ek_clamp_i32(int32_t v, int32_t lo, int32_t hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}
EK_INLINE float ek_clamp_f32(float v, float lo, float hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

/* gemmlowp SaturatingRoundingDoublingHighMul */
EK_INLINE int32_t ek_srdhm(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) return INT32_MAX;
  {
    int64_t ab = (int64_t)a * (int64_t)b;
    int32_t nudge = ab >= 0 ? (1 << 30) : (1 - (1 << 30));
    /* division (not shift) truncates toward zero, as gemmlowp does */
    return (int32_t)((ab + nudge) / ((int64_t)1 << 31));
  }
}

/* gemmlowp RoundingDivideByPOT: round half away from zero */
EK_INLINE int32_t ek_rdbpot(int32_t x, int exponent) {
  const int32_t mask = (int32_t)(((int64_t)1 << exponent) - 1);
  const int32_t remainder = x & mask;
  const int32_t threshold = (mask >> 1) + ((x < 0) ? 1 : 0);
  return (x >> exponent) + ((remainder > threshold) ? 1 : 0);
}

/* MultiplyByQuantizedMultiplier(int32 x, multiplier, shift): shift > 0 is a left shift. */
EK_INLINE int32_t ek_mbqm(int32_t x, int32_t multiplier, int shift) {
#if EK_SINGLE_ROUNDING
  const int total_shift = 31 - shift;
  const int64_t round = (int64_t)1 << (total_shift - 1);
  return (int32_t)(((int64_t)x * (int64_t)multiplier + round) >> total_shift);
#else
  const int left_shift = shift > 0 ? shift : 0;
  const int right_shift = shift > 0 ? 0 : -shift;
  return ek_rdbpot(ek_srdhm((int32_t)((uint32_t)x << left_shift), multiplier), right_shift);
#endif
}

/* MultiplyByQuantizedMultiplierSmallerThanOneExp (double rounding build: shift <= 0). */
EK_INLINE int32_t ek_mbqm_smaller_than_one(int32_t x, int32_t multiplier, int shift) {
#if EK_SINGLE_ROUNDING
  return ek_mbqm(x, multiplier, shift);
#else
  return ek_rdbpot(ek_srdhm(x, multiplier), -shift);
#endif
}

/* sum of a[i] * b[i] over n int8 pairs: the inner loop of conv and fully connected.
 * Portable C the compiler vectorizes; on Cortex-M with DSP, SXTB16 splits
 * four bytes into two sign-extended halfword pairs and SMLAD multiplies and
 * accumulates both (same integer result, any order: no overflow in int32). */
EK_INLINE int32_t ek_dot_s8(const int8_t *a, const int8_t *b, int n) {
  int32_t acc = 0;
  int i = 0;
#if EK_USE_DSP
  for (; i + 4 <= n; i += 4) {
    uint32_t va, vb;
    memcpy(&va, a + i, 4);
    memcpy(&vb, b + i, 4);
    acc = __smlad(__sxtb16(va), __sxtb16(vb), acc);
    acc = __smlad(__sxtb16((va >> 8) | (va << 24)), __sxtb16((vb >> 8) | (vb << 24)), acc);
  }
#endif
  for (; i < n; ++i) acc += (int32_t)a[i] * (int32_t)b[i];
  return acc;
}

#endif /* EK_COMMON_H */
