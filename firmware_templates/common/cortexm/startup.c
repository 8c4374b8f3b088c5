/* Bare-metal Cortex-M startup: vector table, .data copy, .bss zeroing.
 *
 * No vendor code: the core's own exceptions and the UART's RX interrupt
 * only, which is all any Cortex-M0/M3/M4/M7/M33/M55 needs to boot and talk
 * to the host. An ARMv8-M core with TrustZone (M33, M55) leaves reset in the
 * Secure state and stays there: the firmware never configures the SAU, so
 * all of memory and every peripheral it touches is Secure.
 * Symbols come from linker.ld.
 */
#include <stdint.h>

#include "ek_config.h"
#include "ek_protocol.h"

/* External interrupts in the table; only the UART's RX is ever enabled, so
 * the table reaches just far enough for it (LPUART1 is IRQ 70 on an L4R5). */
#if EK_UART_RX_IRQ >= 32
#define EK_IRQ_COUNT (EK_UART_RX_IRQ + 1)
#else
#define EK_IRQ_COUNT 32
#endif

extern uint32_t _sidata, _sdata, _edata, _sbss, _ebss, _estack;
extern void (*__preinit_array_start[])(void);
extern void (*__preinit_array_end[])(void);
extern void (*__init_array_start[])(void);
extern void (*__init_array_end[])(void);

int main(void);
void Reset_Handler(void);
void SysTick_Handler(void);
void ek_uart_rx_irq(void);

#define SCB_VTOR (*(volatile uint32_t *)0xE000ED08u)
#define SCB_CPACR (*(volatile uint32_t *)0xE000ED88u)

static void ek_halt(const char *what)
{
    ek_protocol_fault(what);
    for (;;) {
    }
}

static void NMI_Handler(void) { ek_halt("nmi"); }
static void HardFault_Handler(void) { ek_halt("hardfault"); }
static void MemManage_Handler(void) { ek_halt("memmanage"); }
static void BusFault_Handler(void) { ek_halt("busfault"); }
static void UsageFault_Handler(void) { ek_halt("usagefault"); }
static void Unused_Handler(void) { ek_halt("unexpected exception"); }

__attribute__((used, section(".isr_vector")))
const void *const ek_vector_table[16 + EK_IRQ_COUNT] = {
    &_estack,
    (const void *)Reset_Handler,
    (const void *)NMI_Handler,
    (const void *)HardFault_Handler,
    (const void *)MemManage_Handler,
    (const void *)BusFault_Handler,
    (const void *)UsageFault_Handler,
    0, 0, 0, 0,
    (const void *)Unused_Handler, /* SVCall */
    (const void *)Unused_Handler, /* DebugMonitor */
    0,
    (const void *)Unused_Handler, /* PendSV */
    (const void *)SysTick_Handler,
    [16 + EK_UART_RX_IRQ] = (const void *)ek_uart_rx_irq,
};

void Reset_Handler(void)
{
    uint32_t *src, *dst;
    void (**fn)(void);
    /* Interrupts use this table wherever the chip boots from (an STM32 maps
     * its flash at 0x08000000, aliased at 0 only when booting from it). */
#if !defined(__ARM_ARCH_6M__) /* the Cortex-M0 has no VTOR: its table is at 0, where its flash is */
    SCB_VTOR = (uint32_t)ek_vector_table;
#endif
#if defined(__ARM_FP)
    /* Grant CP10/CP11 before any floating-point instruction can run. */
    SCB_CPACR |= 0xFu << 20;
    __asm volatile("dsb\n\tisb" ::: "memory");
#endif
    for (src = &_sidata, dst = &_sdata; dst < &_edata;) {
        *dst++ = *src++;
    }
    for (dst = &_sbss; dst < &_ebss;) {
        *dst++ = 0;
    }
    /* C++ static constructors (a TFLM model needs them). */
    for (fn = __preinit_array_start; fn < __preinit_array_end; fn++) (*fn)();
    for (fn = __init_array_start; fn < __init_array_end; fn++) (*fn)();
    main();
    for (;;) {
    }
}
