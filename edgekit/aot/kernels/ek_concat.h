/* ek_concat.h: CONCATENATION, one call per input.
 *
 * Viewed around the concatenation axis, every tensor is [outer][axis*inner].
 * Input i contributes a block of `block` elements to each of the `outer`
 * rows of the output, at column `dst` offset; the output row is `row`
 * elements long. TFLM copies the blocks (reference_ops::Concatenation).
 *
 * TFLM's int8 kernel insists that every input has the output's scale and
 * zero point. When an input does not, it is requantized on the way with
 * the arithmetic of TFLM's int8 -> int8 QUANTIZE (reference_ops::Requantize),
 * which is the op the converter would have put in front of it. */
#ifndef EK_CONCAT_H
#define EK_CONCAT_H

EK_INLINE void ek_concat_copy(void *dst, const void *src, size_t elem_size,
                              int outer, int block, int row) {
  unsigned char *d = (unsigned char *)dst;
  const unsigned char *s = (const unsigned char *)src;
  const size_t block_bytes = (size_t)block * elem_size;
  const size_t row_bytes = (size_t)row * elem_size;
  int k;
  for (k = 0; k < outer; ++k) {
    memcpy(d, s, block_bytes);
    d += row_bytes;
    s += block_bytes;
  }
}

/* Needs ek_quantize.h (ek_quantize_s8_s8). */
EK_INLINE void ek_concat_requantize_s8(int8_t *dst, const int8_t *src, int outer, int block,
                                       int row, int32_t in_zero_point, int32_t out_zero_point,
                                       int32_t multiplier, int shift) {
  int k;
  for (k = 0; k < outer; ++k) {
    ek_quantize_s8_s8(src, dst, block, in_zero_point, out_zero_point, multiplier, shift);
    dst += row;
    src += block;
  }
}

#endif /* EK_CONCAT_H */
