/* ek_platform clock: the DWT cycle counter where the core has one and the
 * target enables it, SysTick otherwise (QEMU models no DWT). Both count the
 * core clock; SysTick's 24 bits are extended by counting wraps in its
 * interrupt, CYCCNT's 32 bits by noticing wraps between reads. */
#include <stdint.h>

#include "ek_config.h"
#include "ek_platform.h"

#define SYST_CSR (*(volatile uint32_t *)0xE000E010u)
#define SYST_RVR (*(volatile uint32_t *)0xE000E014u)
#define SYST_CVR (*(volatile uint32_t *)0xE000E018u)
#define ICSR (*(volatile uint32_t *)0xE000ED04u)
#define DEMCR (*(volatile uint32_t *)0xE000EDFCu)
#define DWT_CTRL (*(volatile uint32_t *)0xE0001000u)
#define DWT_CYCCNT (*(volatile uint32_t *)0xE0001004u)
#define DWT_LAR (*(volatile uint32_t *)0xE0001FB0u)

#define SYSTICK_SPAN 0x1000000u

static volatile uint32_t ek_systick_wraps;
static uint32_t ek_dwt_last, ek_dwt_high; /* CYCCNT extended to 64 bits */

void SysTick_Handler(void)
{
    ek_systick_wraps++;
}

void ek_timer_init(void)
{
#if EK_USE_DWT
    DEMCR |= 1u << 24;      /* TRCENA: power the DWT */
    DWT_LAR = 0xC5ACCE55u;  /* unlock (needed on the Cortex-M7) */
    DWT_CYCCNT = 0;
    DWT_CTRL |= 1u;         /* CYCCNTENA */
#else
    SYST_RVR = SYSTICK_SPAN - 1u;
    SYST_CVR = 0;
    SYST_CSR = 0x7u;        /* processor clock, wrap interrupt, enable */
#endif
}

void ek_timer_restart(void)
{
#if EK_USE_DWT
    DWT_CYCCNT = 0;
    ek_dwt_last = 0;
    ek_dwt_high = 0;
#else
    /* Stop, zero, drop a wrap that may be pending, start, and wait for the
     * reload: counting then begins on a tick edge, whatever the phase was. */
    SYST_CSR = 0;
    SYST_CVR = 0;
    ICSR = 1u << 25; /* PENDSTCLR */
    ek_systick_wraps = 0;
    SYST_CSR = 0x7u;
    while (SYST_CVR == 0u) {
        /* the counter reloads on the next tick: start counting from there */
    }
#endif
}

/* Stop SysTick while the core sleeps between commands: a running timer
 * would wake it (and QEMU) every period for nothing. ek_timer_restart
 * starts it again before a timed run. */
void ek_timer_pause(void)
{
#if !EK_USE_DWT
    SYST_CSR = 0;
#endif
}

uint64_t ek_timer_ticks(void)
{
#if EK_USE_DWT
    uint32_t now = DWT_CYCCNT;
    if (now < ek_dwt_last) ek_dwt_high++;
    ek_dwt_last = now;
    return ((uint64_t)ek_dwt_high << 32) | now;
#else
    uint32_t wraps, value;
    do { /* a wrap between the two reads shows as a changed wrap count */
        wraps = ek_systick_wraps;
        value = SYST_CVR;
    } while (wraps != ek_systick_wraps);
    return (uint64_t)wraps * SYSTICK_SPAN + (SYSTICK_SPAN - 1u - value);
#endif
}

uint32_t ek_timer_hz(void)
{
    return EK_CORE_CLOCK_HZ;
}

const char *ek_timer_kind(void)
{
    return EK_USE_DWT ? "dwt" : "systick";
}
