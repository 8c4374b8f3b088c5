/* bundle_test.c: run a generated bundle on stored inputs, compare with stored reference outputs.
 *
 * Built by the top-level CMakeLists.txt for one bundle (single input and
 * output). The vectors file holds, per case, the input bytes followed by
 * the expected output bytes (<NAME>_INPUT_SIZE + <NAME>_OUTPUT_SIZE).
 * Integer outputs must match exactly; float outputs within 1e-5 relative
 * to the case's largest magnitude. Exit 0 when every case matches. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include EK_BUNDLE_HEADER

#define EK_PASTE2(a, b) a##b
#define EK_PASTE(a, b) EK_PASTE2(a, b)
#define EK_MACRO(suffix) EK_PASTE(EK_NAME_UPPER, suffix)
#define EK_RUN EK_PASTE(EK_NAME, _run_io)

#define IN_SIZE EK_MACRO(_INPUT_SIZE)
#define OUT_SIZE EK_MACRO(_OUTPUT_SIZE)
#define ARENA_SIZE EK_MACRO(_ACTIVATIONS_SIZE)
#define OUT_IS_FLOAT EK_MACRO(_OUTPUT_IS_FLOAT)

static uint8_t arena[ARENA_SIZE + 16] __attribute__((aligned(16)));
static uint8_t input[IN_SIZE] __attribute__((aligned(16)));
static uint8_t expected[OUT_SIZE] __attribute__((aligned(16)));
static uint8_t output[OUT_SIZE] __attribute__((aligned(16)));

static int outputs_match(void) {
  if (!OUT_IS_FLOAT) return memcmp(output, expected, OUT_SIZE) == 0;
  {
    const float *got = (const float *)(const void *)output;
    const float *want = (const float *)(const void *)expected;
    size_t i, n = OUT_SIZE / sizeof(float);
    float scale = 0.0f;
    for (i = 0; i < n; ++i) scale = fabsf(want[i]) > scale ? fabsf(want[i]) : scale;
    for (i = 0; i < n; ++i)
      if (fabsf(got[i] - want[i]) > 1e-5f * scale + 1e-5f * fabsf(want[i])) return 0;
    return 1;
  }
}

int main(int argc, char **argv) {
  FILE *f;
  long cases = 0, failures = 0;
  if (argc != 2) {
    fprintf(stderr, "usage: %s VECTORS.bin\n", argv[0]);
    return 2;
  }
  f = fopen(argv[1], "rb");
  if (!f) {
    fprintf(stderr, "cannot open %s\n", argv[1]);
    return 2;
  }
  while (fread(input, 1, IN_SIZE, f) == IN_SIZE) {
    const void *ins[1];
    void *outs[1];
    if (fread(expected, 1, OUT_SIZE, f) != OUT_SIZE) {
      fprintf(stderr, "%s: truncated case %ld\n", argv[1], cases);
      fclose(f);
      return 2;
    }
    ins[0] = input;
    outs[0] = output;
    if (EK_RUN(ins, outs, arena) != 0 || !outputs_match()) {
      ++failures;
      if (failures <= 3) fprintf(stderr, "case %ld differs from the reference\n", cases);
    }
    ++cases;
  }
  fclose(f);
  printf("%ld cases, %ld differ\n", cases, failures);
  return (cases > 0 && failures == 0) ? 0 : 1;
}
