/* ek_pool.h: AVERAGE_POOL_2D and MAX_POOL_2D, int8 and float32, NHWC.
 *
 * Windows are clipped to the image (padding is not counted), as in TFLM's
 * reference pooling; the int8 average rounds half away from zero. */
#ifndef EK_POOL_H
#define EK_POOL_H

/* `acc` is channels int32 of scratch memory: sums run over contiguous channels. */
EK_INLINE void ek_average_pool_s8(const int8_t *input, int8_t *output, int32_t *acc,
                                  int batches, int in_h, int in_w, int channels, int out_h,
                                  int out_w, int k_h, int k_w, int stride_h, int stride_w,
                                  int pad_h, int pad_w, int32_t act_min, int32_t act_max) {
  int b, oy, ox, ky, kx, c;
  for (b = 0; b < batches; ++b) {
    for (oy = 0; oy < out_h; ++oy) {
      const int y0 = oy * stride_h - pad_h;
      const int ky0 = ek_max_i32(0, -y0), ky1 = ek_min_i32(k_h, in_h - y0);
      for (ox = 0; ox < out_w; ++ox) {
        const int x0 = ox * stride_w - pad_w;
        const int kx0 = ek_max_i32(0, -x0), kx1 = ek_min_i32(k_w, in_w - x0);
        const int32_t count = (ky1 - ky0) * (kx1 - kx0);
        int8_t *out = output + ((b * out_h + oy) * out_w + ox) * channels;
#if EK_USE_DSP
        if (channels % 4 == 0 && count <= 255) {
          /* four channels per word, summed in 16-bit lanes (255 taps of at most 128 fit):
           * SXTAB16 adds channels 0 and 2 of a word to one pair of lanes, the word rotated by
           * 8 channels 1 and 3 to another, one load and two adds per four inputs */
          for (c = 0; c < channels; c += 4) {
            int32_t s02 = 0, s13 = 0;
            for (ky = ky0; ky < ky1; ++ky) {
              const int8_t *x = input + ((b * in_h + y0 + ky) * in_w + x0 + kx0) * channels + c;
              for (kx = kx0; kx < kx1; ++kx, x += channels) {
                uint32_t v;
                memcpy(&v, x, 4);
                s02 = __sxtab16(s02, v);
                __asm__("sxtab16 %0, %0, %1, ror #8" : "+r"(s13) : "r"(v));
              }
            }
            acc[c] = (int16_t)(s02 & 0xFFFF);
            acc[c + 2] = s02 >> 16;
            acc[c + 1] = (int16_t)(s13 & 0xFFFF);
            acc[c + 3] = s13 >> 16;
          }
        } else
#endif
        {
          for (c = 0; c < channels; ++c) acc[c] = 0;
          for (ky = ky0; ky < ky1; ++ky)
            for (kx = kx0; kx < kx1; ++kx) {
              const int8_t *x = input + ((b * in_h + y0 + ky) * in_w + x0 + kx) * channels;
              for (c = 0; c < channels; ++c) acc[c] += x[c];
            }
        }
        for (c = 0; c < channels; ++c) {
          int32_t v = acc[c];
          if (count == 0) {
            v = 0;
          } else {
            v = v > 0 ? (v + count / 2) / count : (v - count / 2) / count;
          }
          out[c] = (int8_t)ek_clamp_i32(v, act_min, act_max);
        }
      }
    }
  }
}

EK_INLINE void ek_max_pool_s8(const int8_t *input, int8_t *output, int batches, int in_h,
                              int in_w, int channels, int out_h, int out_w, int k_h, int k_w,
                              int stride_h, int stride_w, int pad_h, int pad_w, int32_t act_min,
                              int32_t act_max) {
  int b, oy, ox, ky, kx, c;
  for (b = 0; b < batches; ++b) {
    for (oy = 0; oy < out_h; ++oy) {
      const int y0 = oy * stride_h - pad_h;
      const int ky0 = ek_max_i32(0, -y0), ky1 = ek_min_i32(k_h, in_h - y0);
      for (ox = 0; ox < out_w; ++ox) {
        const int x0 = ox * stride_w - pad_w;
        const int kx0 = ek_max_i32(0, -x0), kx1 = ek_min_i32(k_w, in_w - x0);
        int8_t *out = output + ((b * out_h + oy) * out_w + ox) * channels;
        for (c = 0; c < channels; ++c) out[c] = (int8_t)-128;
        for (ky = ky0; ky < ky1; ++ky)
          for (kx = kx0; kx < kx1; ++kx) {
            const int8_t *x = input + ((b * in_h + y0 + ky) * in_w + x0 + kx) * channels;
            for (c = 0; c < channels; ++c) out[c] = x[c] > out[c] ? x[c] : out[c];
          }
        for (c = 0; c < channels; ++c) out[c] = (int8_t)ek_clamp_i32(out[c], act_min, act_max);
      }
    }
  }
}

EK_INLINE void ek_average_pool_f32(const float *input, float *output, int batches, int in_h,
                                   int in_w, int channels, int out_h, int out_w, int k_h,
                                   int k_w, int stride_h, int stride_w, int pad_h, int pad_w,
                                   float act_min, float act_max) {
  int b, oy, ox, ky, kx, c;
  for (b = 0; b < batches; ++b)
    for (oy = 0; oy < out_h; ++oy) {
      const int y0 = oy * stride_h - pad_h;
      const int ky0 = ek_max_i32(0, -y0), ky1 = ek_min_i32(k_h, in_h - y0);
      for (ox = 0; ox < out_w; ++ox) {
        const int x0 = ox * stride_w - pad_w;
        const int kx0 = ek_max_i32(0, -x0), kx1 = ek_min_i32(k_w, in_w - x0);
        const int count = (ky1 - ky0) * (kx1 - kx0);
        for (c = 0; c < channels; ++c) {
          float total = 0.0f;
          for (ky = ky0; ky < ky1; ++ky)
            for (kx = kx0; kx < kx1; ++kx)
              total += input[((b * in_h + y0 + ky) * in_w + x0 + kx) * channels + c];
          output[((b * out_h + oy) * out_w + ox) * channels + c] =
              ek_clamp_f32(count ? total / (float)count : 0.0f, act_min, act_max);
        }
      }
    }
}

EK_INLINE void ek_max_pool_f32(const float *input, float *output, int batches, int in_h,
                               int in_w, int channels, int out_h, int out_w, int k_h, int k_w,
                               int stride_h, int stride_w, int pad_h, int pad_w, float act_min,
                               float act_max) {
  int b, oy, ox, ky, kx, c;
  for (b = 0; b < batches; ++b)
    for (oy = 0; oy < out_h; ++oy) {
      const int y0 = oy * stride_h - pad_h;
      const int ky0 = ek_max_i32(0, -y0), ky1 = ek_min_i32(k_h, in_h - y0);
      for (ox = 0; ox < out_w; ++ox) {
        const int x0 = ox * stride_w - pad_w;
        const int kx0 = ek_max_i32(0, -x0), kx1 = ek_min_i32(k_w, in_w - x0);
        for (c = 0; c < channels; ++c) {
          float m = -3.402823466e+38f;
          for (ky = ky0; ky < ky1; ++ky)
            for (kx = kx0; kx < kx1; ++kx) {
              const float v = input[((b * in_h + y0 + ky) * in_w + x0 + kx) * channels + c];
              m = v > m ? v : m;
            }
          output[((b * out_h + oy) * out_w + ox) * channels + c] = ek_clamp_f32(m, act_min, act_max);
        }
      }
    }
}

#endif /* EK_POOL_H */
