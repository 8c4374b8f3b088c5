/* The one interface between edgekit's on-device protocol and a model.
 *
 * Every firmware template implements these five functions over its backend
 * (an aot bundle, TFLite Micro, ...). Buffers are raw bytes: an int8 model
 * reads and writes int8 values, any other model its tensors' little-endian
 * bytes. A model with several inputs (outputs) takes them concatenated in
 * the order of the artifact's inputs (outputs).
 */
#ifndef EK_MODEL_H
#define EK_MODEL_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Called once at boot, before any other ek_model_* call; 0 on success. */
int ek_model_init(void);

/* One inference: reads ek_model_input_bytes() from `in`, writes
 * ek_model_output_bytes() to `out`; 0 on success. Both buffers are 16-byte
 * aligned and owned by the caller. */
int ek_model_run(const int8_t *in, int8_t *out);

size_t ek_model_input_bytes(void);
size_t ek_model_output_bytes(void);

/* A short name without spaces, reported by the `name` command. */
const char *ek_model_name(void);

#ifdef __cplusplus
}
#endif

#endif /* EK_MODEL_H */
