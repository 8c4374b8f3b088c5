/* ek_fc_dsp.h: FULLY_CONNECTED int8 on the Cortex-M DSP path (EK_USE_DSP).
 *
 * With a batch of one every weight is used once, so the weights stay int8 in
 * flash and are unpacked by SXTB16 as they are read, while the input row is
 * widened to int16 once per layer and shared by every output:
 * - the row goes onto the stack as halfword pairs in SMLAD order: for each 4
 *   bytes x0..x3, the words (x0, x2) and (x1, x3), which SXTB16 of the word
 *   and of the word rotated by 8 make (ek_fc_widen). Doubled when the
 *   requantization takes doubled accumulators (ek_rq): exact, |2 x| <= 256.
 * - weight rows go in groups of four, interleaved by 32-bit word at compile
 *   time ([group][word j][4 rows][4 taps], ops/fully_connected.py
 *   `row_groups`): one LDM loads word j of all four rows, and each word's
 *   SXTB16 and SXTB16-with-ROR-8 give (w0, w2) and (w1, w3), the halfword
 *   pairs that meet the widened input in two SMLADs.
 * Per 4 taps of 4 rows (16 multiply-accumulates): one LDM of the input's two
 * words, one LDM of the rows' four, eight SXTB16 and eight SMLAD, 18
 * instructions. gcc's loop over ek_dot4 took about 2 per multiply-accumulate
 * (one load per row and word, the input unpacked again for every four rows);
 * the loop is assembly for the reasons of ek_dot2x4_q15 (kernels/ek_common.h). */
#ifndef EK_FC_DSP_H
#define EK_FC_DSP_H

#if EK_USE_DSP
/* The longest rows (in taps, padded) taken this way: the widened row is on the stack
 * (2 bytes a tap); ops/fully_connected.py Q15_DEPTH is the same number. */
#define EK_FC_Q15_DEPTH 1024
#define EK_FC_Q15_ROWS 32 /* outputs accumulated per pass, requantized together */

/* x[0..k) as n = k_pad / 2 words in SMLAD order (above), taps past k zero, times
 * (1 + doubled); k_pad a multiple of 8. */
EK_INLINE void ek_fc_widen(const int8_t *x, int k, int k_pad, int doubled, int32_t *out) {
  int i = 0;
  const int8_t *p = x;
  int32_t *q = out;
  for (; i + 4 <= k; i += 4, p += 4, q += 2) { /* pointers stepped: no index arithmetic */
    uint32_t v;
    int32_t e, o;
    memcpy(&v, p, 4);
    e = __sxtb16(v);
    o = __sxtb16((v >> 8) | (v << 24));
    if (doubled) {
      e = __sadd16(e, e);
      o = __sadd16(o, o);
    }
    q[0] = e;
    q[1] = o;
  }
  for (; i < k_pad; i += 4) { /* the ragged end and the zero padding */
    uint32_t v = 0;
    int j;
    int32_t e, o;
    for (j = 0; j < 4 && i + j < k; ++j) v |= (uint32_t)(uint8_t)x[i + j] << (8 * j);
    e = __sxtb16(v);
    o = __sxtb16((v >> 8) | (v << 24));
    if (doubled) {
      e = __sadd16(e, e);
      o = __sadd16(o, o);
    }
    out[i / 2] = e;
    out[i / 2 + 1] = o;
  }
}

typedef struct {
  const int32_t *x;   /* the widened row */
  const int8_t *w;    /* `groups` groups of four rows, interleaved by word */
  const int32_t *bias;
  int32_t *out;
  int32_t x_bytes;    /* 2 * k_pad */
  int32_t groups;
  int32_t odd;        /* k_pad / 8 is odd */
} ek_fc4_job;

#if defined(__GNUC__) && defined(__OPTIMIZE__) && defined(__thumb2__)
#define EK_FC4_ASM 1
/* Four taps of the four rows (16 MACs): the input pair (x0, x2), (x1, x3), one word of each
 * row, unpacked with SXTB16 into (w0, w2) and (w1, w3). The loop below runs it twice per half
 * pass, from two places (a row of 8 (mod 16) taps enters at the second half). */
#define EK_FC4_STEP \
  "ldm r0!, {r8, r9}\n\t"          /* (x0, x2), (x1, x3) */          \
  "ldm r1!, {r10, r11, r12, lr}\n\t" /* taps 0-3 of the four rows */ \
  "sxtb16 r3, r10\n\t"                                               \
  "smlad r4, r8, r3, r4\n\t"                                         \
  "sxtb16 r10, r10, ror #8\n\t"                                      \
  "smlad r4, r9, r10, r4\n\t"                                        \
  "sxtb16 r3, r11\n\t"                                               \
  "smlad r5, r8, r3, r5\n\t"                                         \
  "sxtb16 r11, r11, ror #8\n\t"                                      \
  "smlad r5, r9, r11, r5\n\t"                                        \
  "sxtb16 r3, r12\n\t"                                               \
  "smlad r6, r8, r3, r6\n\t"                                         \
  "sxtb16 r12, r12, ror #8\n\t"                                      \
  "smlad r6, r9, r12, r6\n\t"                                        \
  "sxtb16 r3, lr\n\t"                                                \
  "smlad r7, r8, r3, r7\n\t"                                         \
  "sxtb16 lr, lr, ror #8\n\t"                                        \
  "smlad r7, r9, lr, r7\n\t"

/* The loop around a step (EK_FC4_STEP, or EK_FC4W_STEP for int16 rows): for each group of
 * four rows, the accumulators start from the bias, the row runs in 8-tap halves of two steps
 * (an odd number of halves enters at the second), and the four sums are stored. */
#define EK_FC4_LOOP(STEP) \
  "push {r4-r11, lr}\n\t"                                                           \
  "ldm r0, {r1-r7}\n\t" /* x, w, bias, out, x_bytes, groups, odd */                 \
  "add r5, r1, r5\n\t"  /* the end of x */                                          \
  "push {r1, r3, r4, r6, r7}\n\t" /* [sp]: x, bias, out, groups left, odd */        \
  "mov r1, r2\n\t"                                                                  \
  "mov r2, r5\n\t"                                                                  \
  "2:\n\t"                                                                          \
  "ldr r0, [sp]\n\t"                                                                \
  "ldr r3, [sp, #4]\n\t"                                                            \
  "ldm r3!, {r4-r7}\n\t" /* the accumulators start from the bias */                 \
  "str r3, [sp, #4]\n\t"                                                            \
  "ldr r3, [sp, #16]\n\t" /* an odd number of 8-tap halves: enter at the second */  \
  "cmp r3, #0\n\t"                                                                  \
  "bne 3f\n\t"                                                                      \
  "1:\n\t"                                                                          \
  ".rept 2\n\t"                                                                     \
  STEP                                                                              \
  ".endr\n\t"                                                                       \
  "3:\n\t"                                                                          \
  ".rept 2\n\t"                                                                     \
  STEP                                                                              \
  ".endr\n\t"                                                                       \
  "cmp r0, r2\n\t"                                                                  \
  "bne 1b\n\t"                                                                      \
  "ldr r3, [sp, #8]\n\t"                                                            \
  "stm r3!, {r4-r7}\n\t"                                                            \
  "str r3, [sp, #8]\n\t"                                                            \
  "ldr r3, [sp, #12]\n\t"                                                           \
  "subs r3, r3, #1\n\t"                                                             \
  "str r3, [sp, #12]\n\t"                                                           \
  "bne 2b\n\t"                                                                      \
  "add sp, sp, #20\n\t"                                                             \
  "pop {r4-r11, pc}\n\t"

/* out[4 g + r] = bias[4 g + r] + sum over taps of x * w_gr, for g < groups (> 0),
 * 16 taps per pass (the first pass of a row of 8 (mod 16) taps enters half way). Registers: r4-r7 the four accumulators, r8/r9 the input's
 * pair of words, r10-r12/lr the four rows' words, r3 the unpacked temporary,
 * r0/r1 the input and weight pointers, r2 the input's end. */
__attribute__((naked, noinline, unused)) static void ek_fc4_q15_asm(
    const ek_fc4_job *job __attribute__((unused))) {
  __asm__(EK_FC4_LOOP(EK_FC4_STEP));
}
#else
#define EK_FC4_ASM 0
#endif

/* out[4 g + r] = bias[4 g + r] + sum x * w_gr: the assembly loop, or its C twin */
EK_INLINE void ek_fc4_q15(const int32_t *x, const int8_t *w, int k_pad, int groups,
                          const int32_t *bias, int32_t *out) {
#if EK_FC4_ASM
  ek_fc4_job job;
  job.x = x;
  job.w = w;
  job.bias = bias;
  job.out = out;
  job.x_bytes = 2 * k_pad;
  job.groups = groups;
  job.odd = (k_pad / 8) % 2;
  if (groups > 0) ek_fc4_q15_asm(&job);
#else
  int g, j, r;
  for (g = 0; g < groups; ++g, bias += 4, out += 4) {
    int32_t a[4];
    for (r = 0; r < 4; ++r) a[r] = bias[r];
    for (j = 0; j < k_pad / 4; ++j, w += 16)
      for (r = 0; r < 4; ++r) {
        uint32_t v;
        memcpy(&v, w + 4 * r, 4);
        a[r] = __smlad(x[2 * j], __sxtb16(v), a[r]);
        a[r] = __smlad(x[2 * j + 1], __sxtb16((v >> 8) | (v << 24)), a[r]);
      }
    for (r = 0; r < 4; ++r) out[r] = a[r];
  }
#endif
}

/* `--optimize speed`: the rows stored as int16 in SMLAD order (each 4 taps as (w0, w2), (w1, w3),
 * ops/fully_connected.py `wide_row_groups`), twice the flash of int8 and no unpacking: per 4 taps
 * of 4 rows one LDM of the input, two of the rows and eight SMLAD, 11 instructions per 16 MACs. */
#if EK_FC4_ASM
/* Four taps of four int16 rows (16 MACs): the input pair, then rows 0 and 1 and rows 2 and 3
 * as (w0, w2), (w1, w3), no unpacking. */
#define EK_FC4W_STEP \
  "ldm r0!, {r8, r9}\n\t"            /* (x0, x2), (x1, x3) */                 \
  "ldm r1!, {r10, r11, r12, lr}\n\t"  /* rows 0 and 1: (w0, w2), (w1, w3) */  \
  "smlad r4, r8, r10, r4\n\t"                                                 \
  "smlad r4, r9, r11, r4\n\t"                                                 \
  "smlad r5, r8, r12, r5\n\t"                                                 \
  "smlad r5, r9, lr, r5\n\t"                                                  \
  "ldm r1!, {r10, r11, r12, lr}\n\t"  /* rows 2 and 3 */                      \
  "smlad r6, r8, r10, r6\n\t"                                                 \
  "smlad r6, r9, r11, r6\n\t"                                                 \
  "smlad r7, r8, r12, r7\n\t"                                                 \
  "smlad r7, r9, lr, r7\n\t"

__attribute__((naked, noinline, unused)) static void ek_fc4_q15w_asm(
    const ek_fc4_job *job __attribute__((unused))) {
  __asm__(EK_FC4_LOOP(EK_FC4W_STEP));
}
#endif

EK_INLINE void ek_fc4_q15w(const int32_t *x, const int32_t *w, int k_pad, int groups,
                           const int32_t *bias, int32_t *out) {
#if EK_FC4_ASM
  ek_fc4_job job;
  job.x = x;
  job.w = (const int8_t *)w;
  job.bias = bias;
  job.out = out;
  job.x_bytes = 2 * k_pad;
  job.groups = groups;
  job.odd = (k_pad / 8) % 2;
  if (groups > 0) ek_fc4_q15w_asm(&job);
#else
  int g, j, r;
  for (g = 0; g < groups; ++g, bias += 4, out += 4) {
    int32_t a[4];
    for (r = 0; r < 4; ++r) a[r] = bias[r];
    for (j = 0; j < k_pad / 4; ++j, w += 8)
      for (r = 0; r < 4; ++r) {
        a[r] = __smlad(x[2 * j], w[2 * r], a[r]);
        a[r] = __smlad(x[2 * j + 1], w[2 * r + 1], a[r]);
      }
    for (r = 0; r < 4; ++r) out[r] = a[r];
  }
#endif
}

/* ek_fully_connected_s8 on this path: rows of k_pad taps (<= EK_FC_Q15_DEPTH) in groups
 * of four (out_depth padded to whole groups with zero rows and bias), int8 or, when `wide`,
 * int16; requantized by ek_rq when `rq` (its parameter stride; accumulators doubled) else
 * ek_requantize_s8. */
EK_INLINE void ek_fc_q15_rows(const int8_t *input, const void *weights, int wide,
                              const int32_t *folded_bias, const int32_t *multiplier,
                              const int32_t *shift, int rq, int8_t *output, int batches,
                              int out_depth, int accum_depth, int k_pad, int per_channel,
                              int32_t output_offset, int32_t act_min, int32_t act_max,
                              int right_shifts_only, int32_t *xq) {
  int32_t acc[EK_FC_Q15_ROWS];
  int b, o0;
  for (b = 0; b < batches; ++b) {
    ek_fc_widen(input + b * accum_depth, accum_depth, k_pad, rq != 0, xq);
    for (o0 = 0; o0 < out_depth; o0 += EK_FC_Q15_ROWS) {
      const int n = out_depth - o0 < EK_FC_Q15_ROWS ? out_depth - o0 : EK_FC_Q15_ROWS;
      if (wide)
        ek_fc4_q15w(xq, (const int32_t *)weights + (size_t)o0 * (size_t)k_pad / 2, k_pad, (n + 3) / 4,
                    folded_bias + o0, acc);
      else
        ek_fc4_q15(xq, (const int8_t *)weights + (size_t)o0 * (size_t)k_pad, k_pad, (n + 3) / 4,
                   folded_bias + o0, acc);
      ek_requantize_row(acc, multiplier, shift, o0, per_channel, rq, 1, right_shifts_only,
                        output + b * out_depth + o0, n, output_offset, act_min, act_max);
    }
  }
}

/* The widened row lives on the stack, 2 bytes a tap, in an array of the smallest of a few
 * sizes that holds it: inlined with its constant k_pad, a call keeps one of them, and gcc
 * shares the slot between calls, so a bundle's frame grows by its longest row, not by
 * EK_FC_Q15_DEPTH (a 64-tap row: 128 B; AD's 640: 1,536 B). */
#define EK_FC_Q15_WITH_ROW(taps)                                                              \
  {                                                                                           \
    int32_t xq[(taps) / 2];                                                                   \
    ek_fc_q15_rows(input, weights, wide, folded_bias, multiplier, shift, rq, output, batches, \
                   out_depth, accum_depth, k_pad, per_channel, output_offset, act_min,        \
                   act_max, right_shifts_only, xq);                                           \
  }
EK_INLINE void ek_fc_q15_s8(const int8_t *input, const void *weights, int wide, const int32_t *folded_bias,
                            const int32_t *multiplier, const int32_t *shift, int rq, int8_t *output,
                            int batches, int out_depth, int accum_depth, int k_pad, int per_channel,
                            int32_t output_offset, int32_t act_min, int32_t act_max,
                            int right_shifts_only) {
  if (k_pad <= 64)
    EK_FC_Q15_WITH_ROW(64)
  else if (k_pad <= 256)
    EK_FC_Q15_WITH_ROW(256)
  else if (k_pad <= 512)
    EK_FC_Q15_WITH_ROW(512)
  else if (k_pad <= 768)
    EK_FC_Q15_WITH_ROW(768)
  else
    EK_FC_Q15_WITH_ROW(EK_FC_Q15_DEPTH)
}
#undef EK_FC_Q15_WITH_ROW
#else
#define EK_FC_Q15_DEPTH 0
#endif

#endif /* EK_FC_DSP_H */
