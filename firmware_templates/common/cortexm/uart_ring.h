/* Received bytes between a UART's RX interrupt and ek_platform_getc.
 *
 * The STM32 and nRF UARTs hold one byte (nRF: six) and clear their RX
 * interrupt only when it is read, so their interrupt handlers read each
 * byte into this ring: nothing is lost while the core runs the model, and
 * the handler never re-enters for a byte it could not acknowledge. One
 * producer (the handler) and one consumer (the protocol's poll), so the
 * two indices need no lock. */
#ifndef EK_UART_RING_H
#define EK_UART_RING_H

#include <stdint.h>

#define EK_RING_BYTES 512u /* a power of two; a host frame line is far shorter than a second of bytes */

static volatile uint8_t ek_ring_data[EK_RING_BYTES];
static volatile uint32_t ek_ring_head, ek_ring_tail;

/* From the RX interrupt; a byte arriving while the ring is full is dropped
 * (the host's CRC then rejects the frame and it resends). */
static inline void ek_ring_put(uint8_t byte)
{
    uint32_t head = ek_ring_head;
    if (head - ek_ring_tail < EK_RING_BYTES) {
        ek_ring_data[head % EK_RING_BYTES] = byte;
        ek_ring_head = head + 1u;
    }
}

static inline int ek_ring_ready(void)
{
    return ek_ring_head != ek_ring_tail;
}

static inline int ek_ring_get(void)
{
    uint32_t tail = ek_ring_tail;
    int byte;
    if (tail == ek_ring_head) return -1;
    byte = ek_ring_data[tail % EK_RING_BYTES];
    ek_ring_tail = tail + 1u;
    return byte;
}

#endif /* EK_UART_RING_H */
