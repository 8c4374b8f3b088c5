/* The one NVIC operation the UART drivers need (ARMv6-M/v7-M/v8-M alike). */
#ifndef EK_NVIC_H
#define EK_NVIC_H

#include <stdint.h>

/* Enable external interrupt `irq` in the NVIC (ISER0..ISER15: one bit per
 * interrupt, 32 to a register; an ARMv6-M core has ISER0 only). */
static inline void ek_nvic_enable(unsigned irq)
{
    ((volatile uint32_t *)0xE000E100u)[irq / 32u] = 1u << (irq % 32u);
}

#endif /* EK_NVIC_H */
