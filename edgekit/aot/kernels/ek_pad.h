/* ek_pad.h: PAD / PADV2 for any element type (reference_ops::PadImpl).
 *
 * The emitter folds the shapes into four dimensions (outermost first); the
 * output has out_d = left_d + in_d + right_d elements along each. Elements
 * outside the input take `pad_value` (one element of the tensor's type: the
 * output zero point for int8 PAD, the constant input for PADV2). */
#ifndef EK_PAD_H
#define EK_PAD_H

EK_INLINE unsigned char *ek_pad_fill(unsigned char *dst, const void *pad_value,
                                     size_t elem_size, int count) {
  int i;
  if (elem_size == 1) {
    memset(dst, *(const unsigned char *)pad_value, (size_t)count);
    return dst + count;
  }
  for (i = 0; i < count; ++i) {
    memcpy(dst, pad_value, elem_size);
    dst += elem_size;
  }
  return dst;
}

EK_INLINE void ek_pad(const void *in, void *out, const void *pad_value, size_t elem_size,
                      int in0, int in1, int in2, int in3,
                      int left0, int left1, int left2, int left3,
                      int out0, int out1, int out2, int out3) {
  const unsigned char *src = (const unsigned char *)in;
  unsigned char *dst = (unsigned char *)out;
  const size_t row_bytes = (size_t)in3 * elem_size;
  int i0, i1, i2;
  for (i0 = 0; i0 < out0; ++i0) {
    const int in_0 = i0 >= left0 && i0 < left0 + in0;
    for (i1 = 0; i1 < out1; ++i1) {
      const int in_01 = in_0 && i1 >= left1 && i1 < left1 + in1;
      for (i2 = 0; i2 < out2; ++i2) {
        if (in_01 && i2 >= left2 && i2 < left2 + in2) {
          dst = ek_pad_fill(dst, pad_value, elem_size, left3);
          memcpy(dst, src, row_bytes);
          dst += row_bytes;
          src += row_bytes;
          dst = ek_pad_fill(dst, pad_value, elem_size, out3 - left3 - in3);
        } else {
          dst = ek_pad_fill(dst, pad_value, elem_size, out3);
        }
      }
    }
  }
}

#endif /* EK_PAD_H */
