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

/* Kernels are forced inline so every call is specialized for its constant
 * shapes; define EK_INLINE before this header to override (e.g. to profile). */
#if defined(__GNUC__)
#define EK_ALIGNED __attribute__((aligned(16)))
#ifndef EK_INLINE
#define EK_INLINE static inline __attribute__((always_inline))
#endif
#else
#define EK_ALIGNED
#ifndef EK_INLINE
#define EK_INLINE static inline
#endif
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
/* ek_clamp_i32 into an int8 range: on Cortex-M one SSAT does the saturation to
 * [-128, 127], and the activation bounds (constants in every call) cost only
 * when they are narrower. */
EK_INLINE int32_t ek_clamp_s8(int32_t v, int32_t lo, int32_t hi) {
#if EK_USE_DSP
  v = __ssat(v, 8);
  if (lo > -128) v = ek_max_i32(v, lo);
  if (hi < 127) v = ek_min_i32(v, hi);
  return v;
#else
  return ek_clamp_i32(v, lo, hi);
#endif
}
EK_INLINE float ek_clamp_f32(float v, float lo, float hi) {
  return v < lo ? lo : (v > hi ? hi : v);
}

/* gemmlowp SaturatingRoundingDoublingHighMul.
 * gemmlowp adds a nudge of 2^30 (1 - 2^30 when a*b < 0) and divides by 2^31
 * truncating toward zero; for integers that is exactly floor((a*b + 2^30) / 2^31),
 * one add and one arithmetic shift, which vectorizes and is cheap on Cortex-M. */
EK_INLINE int32_t ek_srdhm(int32_t a, int32_t b) {
  if (a == b && a == INT32_MIN) return INT32_MAX;
  return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 30)) >> 31);
}

/* gemmlowp RoundingDivideByPOT: round half away from zero */
EK_INLINE int32_t ek_rdbpot(int32_t x, int exponent) {
  /* 32-bit arithmetic throughout (exponent <= 31) keeps requantization loops vectorizable */
  const int32_t mask = (int32_t)((1u << exponent) - 1u);
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

/* The int8 dot product of conv and fully connected, in the form each CPU does fastest.
 *
 * ek_dot(x, w, n) = sum over i of (x[i] + EK_DOT_BIAS) * w[i], exactly:
 * - on Cortex-M with DSP, EK_DOT_BIAS is 0: SXTB16 splits four bytes into two
 *   sign-extended halfword pairs and SMLAD multiplies and accumulates both;
 * - elsewhere EK_DOT_BIAS is 128: x ^ 0x80 is x + 128 as an unsigned byte, and
 *   an unsigned-by-signed byte dot product is what x86 VNNI (vpdpbusd), Arm
 *   i8mm and friends vectorize, and what compilers recognize in this loop.
 * Callers subtract EK_DOT_BIAS * sum(w) (folded into the bias at compile time
 * where the window is whole). Integer sums are exact in any order. */
#if EK_USE_DSP
#define EK_DOT_BIAS 0
#else
#define EK_DOT_BIAS 128
#endif

EK_INLINE int32_t ek_dot(const int8_t *x, const int8_t *w, int n) {
  int32_t acc = 0;
  int i = 0;
#if EK_USE_DSP
  for (; i + 4 <= n; i += 4) {
    uint32_t vx, vw;
    memcpy(&vx, x + i, 4);
    memcpy(&vw, w + i, 4);
    acc = __smlad(__sxtb16(vx), __sxtb16(vw), acc);
    acc = __smlad(__sxtb16((vx >> 8) | (vx << 24)), __sxtb16((vw >> 8) | (vw << 24)), acc);
  }
  for (; i < n; ++i) acc += (int32_t)x[i] * (int32_t)w[i];
#else
  for (; i < n; ++i) acc += (int32_t)(uint8_t)((uint8_t)x[i] ^ 0x80u) * (int32_t)w[i];
#endif
  return acc;
}

/* Four dot products sharing one x: out[j] = ek_dot(x, w + j * stride, n) for j < 4.
 * Sharing x halves the byte unpacking of the DSP path (x is sign-extended
 * once for four filter rows) and the loads of the portable one. */
EK_INLINE void ek_dot4(const int8_t *x, const int8_t *w, int stride, int n, int32_t *out) {
  const int8_t *w0 = w, *w1 = w + stride, *w2 = w + 2 * stride, *w3 = w + 3 * stride;
  int32_t a0 = 0, a1 = 0, a2 = 0, a3 = 0;
  int i = 0;
#if EK_USE_DSP
  for (; i + 4 <= n; i += 4) {
    uint32_t vx, v0, v1, v2, v3;
    int32_t xe, xo;
    memcpy(&vx, x + i, 4);
    xe = __sxtb16(vx);
    xo = __sxtb16((vx >> 8) | (vx << 24));
    memcpy(&v0, w0 + i, 4);
    a0 = __smlad(xe, __sxtb16(v0), a0);
    a0 = __smlad(xo, __sxtb16((v0 >> 8) | (v0 << 24)), a0);
    memcpy(&v1, w1 + i, 4);
    a1 = __smlad(xe, __sxtb16(v1), a1);
    a1 = __smlad(xo, __sxtb16((v1 >> 8) | (v1 << 24)), a1);
    memcpy(&v2, w2 + i, 4);
    a2 = __smlad(xe, __sxtb16(v2), a2);
    a2 = __smlad(xo, __sxtb16((v2 >> 8) | (v2 << 24)), a2);
    memcpy(&v3, w3 + i, 4);
    a3 = __smlad(xe, __sxtb16(v3), a3);
    a3 = __smlad(xo, __sxtb16((v3 >> 8) | (v3 << 24)), a3);
  }
  for (; i < n; ++i) {
    const int32_t xv = x[i];
    a0 += xv * w0[i];
    a1 += xv * w1[i];
    a2 += xv * w2[i];
    a3 += xv * w3[i];
  }
#else
  for (; i < n; ++i) {
    const int32_t xv = (int32_t)(uint8_t)((uint8_t)x[i] ^ 0x80u);
    a0 += xv * w0[i];
    a1 += xv * w1[i];
    a2 += xv * w2[i];
    a3 += xv * w3[i];
  }
#endif
  out[0] = a0;
  out[1] = a1;
  out[2] = a2;
  out[3] = a3;
}

/* Two inputs against two rows: out0[j] = ek_dot(x0, wj, n), out1[j] = ek_dot(x1, wj, n).
 * On the DSP path each unpacked word of input and of weights feeds two SMLADs
 * (the 2x2 blocking CMSIS-NN uses), a quarter fewer instructions per MAC than
 * ek_dot4. */
EK_INLINE void ek_dot2x2(const int8_t *x0, const int8_t *x1, const int8_t *w0, const int8_t *w1,
                         int n, int32_t *out0, int32_t *out1) {
  int32_t a00 = 0, a01 = 0, a10 = 0, a11 = 0;
  int i = 0;
#if EK_USE_DSP
  for (; i + 4 <= n; i += 4) {
    uint32_t v;
    int32_t x0e, x0o, x1e, x1o, we, wo;
    memcpy(&v, x0 + i, 4);
    x0e = __sxtb16(v);
    x0o = __sxtb16((v >> 8) | (v << 24));
    memcpy(&v, x1 + i, 4);
    x1e = __sxtb16(v);
    x1o = __sxtb16((v >> 8) | (v << 24));
    memcpy(&v, w0 + i, 4);
    we = __sxtb16(v);
    wo = __sxtb16((v >> 8) | (v << 24));
    a00 = __smlad(x0e, we, a00);
    a00 = __smlad(x0o, wo, a00);
    a10 = __smlad(x1e, we, a10);
    a10 = __smlad(x1o, wo, a10);
    memcpy(&v, w1 + i, 4);
    we = __sxtb16(v);
    wo = __sxtb16((v >> 8) | (v << 24));
    a01 = __smlad(x0e, we, a01);
    a01 = __smlad(x0o, wo, a01);
    a11 = __smlad(x1e, we, a11);
    a11 = __smlad(x1o, wo, a11);
  }
  for (; i < n; ++i) {
    a00 += (int32_t)x0[i] * w0[i];
    a01 += (int32_t)x0[i] * w1[i];
    a10 += (int32_t)x1[i] * w0[i];
    a11 += (int32_t)x1[i] * w1[i];
  }
#else
  for (; i < n; ++i) {
    const int32_t u0 = (int32_t)(uint8_t)((uint8_t)x0[i] ^ 0x80u);
    const int32_t u1 = (int32_t)(uint8_t)((uint8_t)x1[i] ^ 0x80u);
    a00 += u0 * w0[i];
    a01 += u0 * w1[i];
    a10 += u1 * w0[i];
    a11 += u1 * w1[i];
  }
#endif
  out0[0] = a00;
  out0[1] = a01;
  out1[0] = a10;
  out1[1] = a11;
}

#if EK_USE_DSP
/* Two windows int8 -> int16 once, in SMLAD order and interleaved by word. For every
 * 4 bytes x0..x3 of a window, SXTB16 of the word and of it rotated by 8 give the
 * halfword pairs (x0, x2) and (x1, x3); out[2 * j + p] is pixel p's j-th such
 * word, so one LDRD loads word j of both pixels. Weights stored in the same
 * order at compile time (ops/conv.py smlad_groups) need no unpacking in the dot
 * products: a window is widened once per output pixel and serves every channel. */
EK_INLINE void ek_widen_q15_pair(const int8_t *x0, const int8_t *x1, int32_t *out, int n4) {
  int i;
  for (i = 0; i < n4; ++i) {
    uint32_t v, u;
    memcpy(&v, x0 + 4 * i, 4);
    memcpy(&u, x1 + 4 * i, 4);
    out[4 * i] = __sxtb16(v);
    out[4 * i + 1] = __sxtb16(u);
    out[4 * i + 2] = __sxtb16((v >> 8) | (v << 24));
    out[4 * i + 3] = __sxtb16((u >> 8) | (u << 24));
  }
}

/* Two pixels (x: n words each, interleaved as ek_widen_q15_pair makes them)
 * against `groups` groups of four int16 filter rows, each interleaved by word
 * (w[4 * j + c] is row c's j-th word), n a multiple of 4:
 * out_p[4 * g + c] = bias[4 * g + c] + sum x_p * w_gc.
 * Eight accumulators, and per word one LDRD of both pixels, two LDRDs of the
 * four rows and eight SMLADs: 11 instructions per 16 multiply-accumulates.
 * gcc loads one word per instruction and reloads its loop bound (17 per 16),
 * and inline assembly with the 14 registers this needs is refused wherever gcc
 * keeps a frame pointer, so optimized gcc builds call the assembly function
 * below (ARM ABI: its own registers, the loop state on its stack). */
typedef struct {
  const int32_t *x;
  const int32_t *w;
  const int32_t *bias;
  int32_t *out0;
  int32_t *out1;
  int32_t x_bytes; /* 8 * n */
  int32_t groups;
} ek_dot2x4_job;

#if defined(__GNUC__) && defined(__OPTIMIZE__) && defined(__thumb2__)
#define EK_DOT2X4_ASM 1
__attribute__((naked, noinline, unused)) static void ek_dot2x4_q15_asm(
    const ek_dot2x4_job *job __attribute__((unused))) {
  __asm__(
      "push {r4-r11, lr}\n\t"
      "ldm r0, {r1-r7}\n\t" /* x, w, bias, out0, out1, x_bytes, groups */
      "add r6, r1, r6\n\t"  /* the end of x */
      "push {r1, r3, r4, r5, r6, r7}\n\t" /* [sp]: x, bias, out0, out1, x end, groups left */
      "mov r1, r2\n\t"
      "2:\n\t"
      "ldr r0, [sp]\n\t"
      "ldr r2, [sp, #4]\n\t"
      "ldm r2!, {r4-r7}\n\t" /* pixel 0's accumulators start from the bias */
      "str r2, [sp, #4]\n\t"
      "mov r8, r4\n\t"
      "mov r9, r5\n\t"
      "mov r10, r6\n\t"
      "mov r11, r7\n\t"
      "1:\n\t"
      ".rept 4\n\t"
      "ldrd r2, r3, [r0], #8\n\t"  /* word j of pixels 0 and 1 */
      "ldrd r12, lr, [r1], #8\n\t" /* word j of rows 0 and 1 */
      "smlad r4, r2, r12, r4\n\t"
      "smlad r8, r3, r12, r8\n\t"
      "smlad r5, r2, lr, r5\n\t"
      "smlad r9, r3, lr, r9\n\t"
      "ldrd r12, lr, [r1], #8\n\t" /* rows 2 and 3 */
      "smlad r6, r2, r12, r6\n\t"
      "smlad r10, r3, r12, r10\n\t"
      "smlad r7, r2, lr, r7\n\t"
      "smlad r11, r3, lr, r11\n\t"
      ".endr\n\t"
      "ldr r12, [sp, #16]\n\t"
      "cmp r0, r12\n\t"
      "bne 1b\n\t"
      "ldr r2, [sp, #8]\n\t"
      "stm r2!, {r4-r7}\n\t"
      "str r2, [sp, #8]\n\t"
      "ldr r2, [sp, #12]\n\t"
      "stm r2!, {r8-r11}\n\t"
      "str r2, [sp, #12]\n\t"
      "ldr r2, [sp, #20]\n\t"
      "subs r2, r2, #1\n\t"
      "str r2, [sp, #20]\n\t"
      "bne 2b\n\t"
      "add sp, sp, #24\n\t"
      "pop {r4-r11, pc}\n\t");
}
#else
#define EK_DOT2X4_ASM 0
#endif

EK_INLINE void ek_dot2x4_q15(const int32_t *x, const int32_t *w, int n, int groups,
                             const int32_t *bias, int32_t *out0, int32_t *out1) {
#if EK_DOT2X4_ASM
  ek_dot2x4_job job;
  job.x = x;
  job.w = w;
  job.bias = bias;
  job.out0 = out0;
  job.out1 = out1;
  job.x_bytes = 8 * n;
  job.groups = groups;
  if (groups > 0) ek_dot2x4_q15_asm(&job);
#else
  int g, j, c;
  for (g = 0; g < groups; ++g, bias += 4, out0 += 4, out1 += 4) {
    int32_t a[4], b[4];
    for (c = 0; c < 4; ++c) a[c] = b[c] = bias[c];
    for (j = 0; j < n; ++j, w += 4)
      for (c = 0; c < 4; ++c) {
        a[c] = __smlad(x[2 * j], w[c], a[c]);
        b[c] = __smlad(x[2 * j + 1], w[c], b[c]);
      }
    for (c = 0; c < 4; ++c) {
      out0[c] = a[c];
      out1[c] = b[c];
    }
  }
#endif
}

/* One int16 row (n words, SMLAD order) against the interleaved pair: the channels
 * past the last group of four. */
EK_INLINE void ek_dot2x1_q15(const int32_t *x, const int32_t *w, int n, int32_t bias,
                             int32_t *out0, int32_t *out1) {
  int32_t a = bias, c = bias;
  int j;
  for (j = 0; j < n; ++j) {
    a = __smlad(x[2 * j], w[j], a);
    c = __smlad(x[2 * j + 1], w[j], c);
  }
  *out0 = a;
  *out1 = c;
}
#endif

/* Output channels in SIMD lanes (x86 with AVX-512 VNNI, built by gcc): one
 * 512-bit register holds the accumulators of 16 output channels, and each
 * 4-byte word of the input, broadcast, meets 64 bytes of weights packed
 * [channel block][k / 4][16 channels][4] at compile time (ops/conv.py
 * lane_packed), one vpdpbusd per 64 multiply-accumulates. No horizontal sum
 * ends a dot product (with the short rows of 1x1 convolutions that sum cost
 * more than the products), and one broadcast input word feeds every block of
 * channels. Like ek_dot it sums (x + EK_DOT_BIAS) * w with EK_DOT_BIAS 128.
 * Not on DSP bundles (EK_DSP), whose weights are laid out for SMLAD. */
#if !(defined(EK_DSP) && EK_DSP) && defined(__GNUC__) && !defined(__clang__) && \
    defined(__AVX512F__) && defined(__AVX512VNNI__)
#define EK_LANES 16
typedef int32_t ek_lanes_t __attribute__((vector_size(64)));
typedef uint8_t ek_bytes16_t __attribute__((vector_size(16)));

#define EK_LANES_PIXELS 4 /* inputs (output pixels) sharing each weight load */

/* `groups` (1, 2 or 4) blocks of 16 channels for `npix` (1 to 4) inputs:
 * out[p][16 * g + j] = sum over k < 4 * k4 of (x[p][k] + 128) * w[g][k / 4][j][k % 4],
 * where x[p] is read XORed with `flip` (0x80808080, or 0 when the caller stored
 * x + 128 already); out[p] is `out + p * out_stride`. `groups` and `npix` are
 * constants at every call, so the accumulators stay in registers and each
 * weight load feeds `npix` vpdpbusd. With few pixels and blocks, consecutive
 * input words also go to separate accumulators (summed at the end): each
 * vpdpbusd waits on its accumulator's previous one, and with one chain per
 * pixel the 16-channel layers ran at a third of the multiply rate. */
EK_INLINE void ek_lanes_group(const int8_t *const *x, int npix, uint32_t flip, const int8_t *w,
                              int k4, int groups, int32_t *out, int out_stride) {
  const int chains = npix * groups;
  const int splits = chains >= 8 ? 1 : (8 / chains > 4 / groups ? 4 / groups : 8 / chains);
  ek_lanes_t a[EK_LANES_PIXELS][4];
  int k, g, s, p;
  for (p = 0; p < npix; ++p)
    for (g = 0; g < 4; ++g) a[p][g] = (ek_lanes_t){0};
  for (k = 0; k < k4; k += splits) {
    for (s = 0; s < splits && k + s < k4; ++s) {
      ek_lanes_t bx[EK_LANES_PIXELS];
      for (p = 0; p < npix; ++p) {
        uint32_t u;
        memcpy(&u, x[p] + 4 * (k + s), 4);
        bx[p] = (ek_lanes_t){0} + (int32_t)(u ^ flip); /* broadcast, bytes + 128 */
      }
      for (g = 0; g < groups; ++g) {
        ek_lanes_t wv;
        memcpy(&wv, w + ((size_t)g * (size_t)k4 + (size_t)(k + s)) * 64, 64);
        /* an empty asm that "changes" wv: gcc then loads the weights into a register
         * once for all pixels instead of folding a 64-byte load into every vpdpbusd
         * (the loads, not the multiplies, were the bottleneck) */
        __asm__("" : "+v"(wv));
        for (p = 0; p < npix; ++p)
          a[p][s * groups + g] = __builtin_ia32_vpdpbusd_v16si(a[p][s * groups + g], bx[p], wv);
      }
    }
  }
  for (p = 0; p < npix; ++p) {
    for (g = 0; g < groups; ++g) {
      ek_lanes_t r = a[p][g];
      for (s = 1; s < splits; ++s) r += a[p][s * groups + g];
      memcpy(out + (size_t)p * (size_t)out_stride + 16 * g, &r, 64);
    }
  }
}

/* Every one of `blocks` blocks of 16 channels, four blocks per pass over the inputs. */
EK_INLINE void ek_lanes_dot(const int8_t *const *x, int npix, uint32_t flip, const int8_t *w,
                            int k4, int blocks, int32_t *out, int out_stride) {
  int b = 0;
  const size_t block_bytes = (size_t)k4 * 64;
  for (; b + 4 <= blocks; b += 4)
    ek_lanes_group(x, npix, flip, w + b * block_bytes, k4, 4, out + 16 * b, out_stride);
  if (b + 2 <= blocks) {
    ek_lanes_group(x, npix, flip, w + b * block_bytes, k4, 2, out + 16 * b, out_stride);
    b += 2;
  }
  if (b < blocks) ek_lanes_group(x, npix, flip, w + b * block_bytes, k4, 1, out + 16 * b, out_stride);
}

typedef long long ek_lanes64_t __attribute__((vector_size(64)));
typedef char ek_bytes16s_t __attribute__((vector_size(16))); /* the builtins take char; signed on x86 */

/* ek_mbqm_smaller_than_one (double rounding) on 16 lanes, with per-lane
 * multipliers m and right shifts e (= -shift >= 0): the 64-bit products of the
 * even and odd lanes come from vpmuldq (gcc's own vectorization of ek_srdhm
 * widened every lane and used the slower vpmullq), the rest is 32-bit lane
 * arithmetic; comparisons give -1 for true. */
EK_INLINE ek_lanes_t ek_lanes_mbqm(ek_lanes_t x, ek_lanes_t m, ek_lanes_t e) {
  const ek_lanes_t one = (ek_lanes_t){0} + 1;
  const ek_lanes64_t nudge = (ek_lanes64_t){0} + ((int64_t)1 << 30);
  ek_lanes64_t even, odd;
  ek_lanes_t r, mask, rem, thr;
  /* SaturatingRoundingDoublingHighMul: floor((x * m + 2^30) / 2^31), m never INT32_MIN */
  even = (ek_lanes64_t)__builtin_ia32_pmuldq512_mask(x, m, (ek_lanes64_t){0}, (uint8_t)0xff);
  odd = (ek_lanes64_t)__builtin_ia32_pmuldq512_mask(
      (ek_lanes_t)((ek_lanes64_t)x >> 32), (ek_lanes_t)((ek_lanes64_t)m >> 32), (ek_lanes64_t){0},
      (uint8_t)0xff);
  even = (even + nudge) >> 31;
  odd = (odd + nudge) >> 31;
  r = (ek_lanes_t)((even & 0xffffffffLL) | (odd << 32));
  /* RoundingDivideByPOT */
  mask = (one << e) - one;
  rem = r & mask;
  thr = (mask >> 1) - (r < 0);
  return (r >> e) - (rem > thr);
}

/* 16 int32 lanes + offset to int8 with the activation bounds: the saturating
 * narrowing (vpmovsdb) is the clamp to [-128, 127]; narrower bounds (constants
 * in every call) clamp the bytes. */
EK_INLINE void ek_lanes_store_s8(ek_lanes_t r, int8_t *out, int32_t offset, int32_t act_min,
                                 int32_t act_max) {
  ek_bytes16s_t narrow, sel;
  r += offset;
  narrow = __builtin_ia32_pmovsdb512_mask(r, (ek_bytes16s_t){0}, (uint16_t)0xffff);
  if (act_min > -128) {
    const ek_bytes16s_t lo = (ek_bytes16s_t){0} + (char)act_min;
    sel = narrow < lo;
    narrow = (narrow & ~sel) | (lo & sel);
  }
  if (act_max < 127) {
    const ek_bytes16s_t hi = (ek_bytes16s_t){0} + (char)act_max;
    sel = narrow > hi;
    narrow = (narrow & ~sel) | (hi & sel);
  }
  memcpy(out, &narrow, 16);
}

/* A row of n accumulators (+ folded bias) requantized to int8 like
 * ek_requantize_s8 with per-channel shifts all <= 0 in the double-rounding build,
 * 16 channels per step; channels past the last whole block go through the
 * scalar loop. */
EK_INLINE void ek_lanes_requantize(const int32_t *acc, const int32_t *bias,
                                   const int32_t *multiplier, const int32_t *shift, int8_t *out,
                                   int n, int32_t offset, int32_t act_min, int32_t act_max) {
  int c = 0;
  for (; c + 16 <= n; c += 16) {
    ek_lanes_t x, b, m, e;
    memcpy(&x, acc + c, 64);
    memcpy(&b, bias + c, 64);
    memcpy(&m, multiplier + c, 64);
    memcpy(&e, shift + c, 64);
    ek_lanes_store_s8(ek_lanes_mbqm(x + b, m, -e), out + c, offset, act_min, act_max);
  }
  for (; c < n; ++c)
    out[c] = (int8_t)ek_clamp_i32(
        ek_mbqm_smaller_than_one(acc[c] + bias[c], multiplier[c], (int)shift[c]) + offset, act_min,
        act_max);
}

/* ek_lanes_dot for a run-time count of inputs (1 to EK_LANES_PIXELS): one
 * specialized body per count. */
EK_INLINE void ek_lanes_dot_n(const int8_t *const *x, int npix, uint32_t flip, const int8_t *w,
                              int k4, int blocks, int32_t *out, int out_stride) {
  switch (npix) {
    case 4: ek_lanes_dot(x, 4, flip, w, k4, blocks, out, out_stride); break;
    case 3: ek_lanes_dot(x, 3, flip, w, k4, blocks, out, out_stride); break;
    case 2: ek_lanes_dot(x, 2, flip, w, k4, blocks, out, out_stride); break;
    default: ek_lanes_dot(x, 1, flip, w, k4, blocks, out, out_stride); break;
  }
}
#else
#define EK_LANES 0
#endif

/* ek_mbqm_smaller_than_one for shift <= -1 and multiplier >= 0 (as QuantizeMultiplier
 * makes them), double rounding, without the mask/threshold compare: with
 * q = x * m + 2^30, SaturatingRoundingDoublingHighMul is r = floor(q / 2^31) (no
 * saturation: m is never INT32_MIN), and RoundingDivideByPOT by e is
 * floor((r + 2^(e-1) - [r < 0]) / 2^e), where r < 0 exactly when q < 0; floors of
 * floors by powers of two merge into floor((q + 2^31 * (2^(e-1) - [q < 0])) / 2^(31+e)),
 * and since 31 + e >= 32 that is the high word of the 64-bit sum shifted by e - 1.
 * On Cortex-M4 that is SMLAL, two adds with shifted operands and two shifts. */
EK_INLINE int32_t ek_mbqm_right(int32_t x, int32_t multiplier, int shift) {
  const int e1 = -shift - 1;
  const int64_t q = (int64_t)x * (int64_t)multiplier + ((int64_t)1 << 30);
  const int32_t t = (int32_t)(1u << e1) + (int32_t)(q >> 63); /* 2^(e-1) - [q < 0] */
  const int64_t v = q + (int64_t)((uint64_t)(int64_t)t << 31);
  return (int32_t)(v >> 32) >> e1;
}

/* The high word of a * b rounded: (a * b + 2^31) >> 32, SMMULR on Cortex-M (gcc does not
 * emit it for this expression, but an SMLAL with a preloaded 2^31: three instructions). */
EK_INLINE int32_t ek_smmulr(int32_t a, int32_t b) {
#if EK_USE_DSP
  int32_t r;
  __asm__("smmulr %0, %1, %2" : "=r"(r) : "r"(a), "r"(b));
  return r;
#else
  return (int32_t)(((int64_t)a * (int64_t)b + ((int64_t)1 << 31)) >> 32);
#endif
}

/* a + ((b * c + 2^31) >> 32): SMMLAR on Cortex-M (one instruction, where SMMULR and an add
 * take two). Exact: a * 2^32 + b * c + 2^31 fits in 64 bits and the floor of a sum with a
 * multiple of 2^32 splits off. */
EK_INLINE int32_t ek_smmlar(int32_t b, int32_t c, int32_t a) {
#if EK_USE_DSP
  int32_t r;
  __asm__("smmlar %0, %1, %2, %3" : "=r"(r) : "r"(b), "r"(c), "r"(a));
  return r;
#else
  return (int32_t)(((int64_t)a * ((int64_t)1 << 32) + (int64_t)b * (int64_t)c + ((int64_t)1 << 31)) >> 32);
#endif
}

EK_INLINE int ek_ctz(uint32_t v) { /* v != 0 */
#if defined(__GNUC__)
  return __builtin_ctz(v);
#else
  int n = 0;
  while (!(v & 1u)) {
    v >>= 1;
    ++n;
  }
  return n;
#endif
}

/* The double-rounding requantization plus the output offset, from parameters per
 * channel computed at compile time (ops/conv.py requant_params): p = {multiplier m,
 * 2^(e-1) + offset * 2^e, e} with e = -shift >= 1 (`stride` 3), or the first two
 * only (`stride` 2: 2^(e-1) * (1 + 2 offset) has e - 1 trailing zeros, since
 * 1 + 2 offset is odd, so RBIT and CLZ recover e; as much flash as the multipliers
 * and shifts it replaces, two more instructions), given x2 = 2 * acc (the compiler
 * checks |acc| < 2^30 and doubles the accumulator where it is free: the int16
 * filters are stored doubled).
 * SaturatingRoundingDoublingHighMul(acc, m) = floor((acc * m + 2^30) / 2^31)
 * = floor((2 acc * m + 2^31) / 2^32) = SMMULR(2 acc, m) (no saturation: m is
 * never INT32_MIN), and RoundingDivideByPOT(r, e) + offset
 * = floor((r + 2^(e-1) - [r < 0] + offset * 2^e) / 2^e), with -[r < 0] = r >> 31.
 * On Cortex-M4: SMMLAR (r plus the rounding term), an add of x2 ASR 31, one ASR. */
EK_INLINE int32_t ek_rq(int32_t x2, const int32_t *p, int stride) {
  /* r + p[1] + [r < 0], with [x2 < 0] for [r < 0]: they differ only where r is 0 and x2 < 0,
   * and there floor((2^(e-1) - 1 + offset * 2^e) / 2^e) = offset = floor((2^(e-1) + offset * 2^e)
   * / 2^e) (r < 0 needs x2 < 0: m > 0); then SMMLAR computes r + p[1] in one instruction */
  const int32_t t = ek_smmlar(x2, p[0], p[1]) + (x2 >> 31);
  if (stride == 3) return t >> p[2];
  return (t >> ek_ctz((uint32_t)p[1])) >> 1;
}

/* A row of n accumulators through ek_rq: out[i] = clamp(ek_rq(scale * acc[i], p_i)), with
 * p_i = rq + stride * i for per-channel parameters, rq for one set. `scale` (a constant: 1
 * when the accumulators are doubled already, else 2) completes x2. */
EK_INLINE void ek_requantize_rq(const int32_t *acc, const int32_t *rq, int stride, int per_channel,
                                int scale, int8_t *out, int n, int32_t act_min, int32_t act_max) {
  int i;
  for (i = 0; i < n; ++i)
    out[i] = (int8_t)ek_clamp_s8(ek_rq(acc[i] * scale, rq + (per_channel ? stride * i : 0), stride),
                                 act_min, act_max);
}

/* out[i] = clamp(MultiplyByQuantizedMultiplier(acc[i], mult[i or 0], shift[i or 0]) + offset):
 * one loop over a row of channels, which the compiler vectorizes.
 * `right_shifts_only` is a constant in the call: 2 when every shift is <= -1
 * (ek_mbqm_right in the double-rounding build on Cortex-M; x86's vectorized
 * loop ran 5% slower with it), 1 when every shift is <= 0 (the left-shift step
 * is dropped), 0 otherwise; same results, fewer instructions. */
EK_INLINE void ek_requantize_s8(const int32_t *acc, const int32_t *multiplier, const int32_t *shift,
                                int per_channel, int right_shifts_only, int8_t *out, int n,
                                int32_t offset, int32_t act_min, int32_t act_max) {
  int i;
  for (i = 0; i < n; ++i) {
    const int q = per_channel ? i : 0;
    int32_t scaled;
    if (right_shifts_only == 2 && !EK_SINGLE_ROUNDING && EK_USE_DSP)
      scaled = ek_mbqm_right(acc[i], multiplier[q], (int)shift[q]);
    else if (right_shifts_only)
      scaled = ek_mbqm_smaller_than_one(acc[i], multiplier[q], (int)shift[q]);
    else
      scaled = ek_mbqm(acc[i], multiplier[q], (int)shift[q]);
    out[i] = (int8_t)ek_clamp_s8(scaled + offset, act_min, act_max);
  }
}

/* Channels first .. first + n - 1 of a row of accumulators, requantized the way the compiler
 * chose: ek_rq's parameters (`rq` their stride, on the DSP path; `rq_scale` as for
 * ek_requantize_rq) or TFLM's multipliers and shifts. Per-tensor parameters are the same for
 * every channel, so `first` only moves per-channel ones. */
EK_INLINE void ek_requantize_row(const int32_t *acc, const int32_t *multiplier, const int32_t *shift,
                                 int first, int per_channel, int rq, int rq_scale,
                                 int right_shifts_only, int8_t *out, int n, int32_t offset,
                                 int32_t act_min, int32_t act_max) {
  if (EK_USE_DSP && rq)
    ek_requantize_rq(acc, per_channel ? multiplier + rq * first : multiplier, rq, per_channel, rq_scale,
                     out, n, act_min, act_max);
  else
    ek_requantize_s8(acc, per_channel ? multiplier + first : multiplier,
                     per_channel ? shift + first : shift, per_channel, right_shifts_only, out, n,
                     offset, act_min, act_max);
}

#endif /* EK_COMMON_H */
