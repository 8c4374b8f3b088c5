/* What the protocol needs from a board: a byte pipe and a clock.
 *
 * The bare-metal Cortex-M platform in cortexm/ implements it over a CMSDK
 * UART and SysTick or the DWT cycle counter; other platforms (an Arduino
 * sketch, an RTOS) implement the same five functions over their own drivers.
 */
#ifndef EK_PLATFORM_H
#define EK_PLATFORM_H

#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* Bring up the UART and start the clock. */
void ek_platform_init(void);

/* Send one byte; blocks until the transmitter takes it. */
void ek_platform_putc(char c);

/* The next received byte, or -1 when none is waiting (never blocks). */
int ek_platform_getc(void);

/* A monotonic tick count; wraps only after years at any real clock. */
uint64_t ek_timer_ticks(void);

/* Ticks per second of ek_timer_ticks(). */
uint32_t ek_timer_hz(void);

/* What ticks: "systick", "dwt" (core cycles) or "micros". */
const char *ek_timer_kind(void);

/* Optional (weak): restart the timer from zero, called before each timed
 * run so the count does not depend on the timer's phase. Platforms whose
 * timer has a coarse tick (SysTick under QEMU: 40 instructions) provide it;
 * others may leave it out. */
void ek_timer_restart(void) __attribute__((weak));

#ifdef __cplusplus
}
#endif

#endif /* EK_PLATFORM_H */
