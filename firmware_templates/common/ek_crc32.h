/* CRC-32 as zlib computes it (IEEE 802.3, reflected, init and xorout ~0),
 * so the host checks frames with Python's zlib.crc32. */
#ifndef EK_CRC32_H
#define EK_CRC32_H

#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Continue a CRC over `n` more bytes; start with crc = 0. */
uint32_t ek_crc32(uint32_t crc, const void *data, size_t n);

#ifdef __cplusplus
}
#endif

#endif /* EK_CRC32_H */
