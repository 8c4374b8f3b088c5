/* ek_platform_init and main() for the bare-metal Cortex-M platform. */
#include "ek_platform.h"
#include "ek_protocol.h"

void ek_uart_init(void);
int ek_uart_rx_ready(void);
void ek_timer_init(void);
void ek_timer_pause(void);

void ek_platform_init(void)
{
    ek_uart_init();
    ek_timer_init();
}

/* Sleep until the host sends a byte. Interrupts are masked around the
 * check, so a byte landing between the check and WFI still ends WFI (a
 * pending interrupt does, masked or not); its handler runs on unmasking.
 * On QEMU this also lets the emulator hand over the next byte at once
 * instead of between slices of a busy loop. */
static void ek_wait_for_host(void)
{
    __asm volatile("cpsid i" ::: "memory");
    if (!ek_uart_rx_ready()) {
        ek_timer_pause();
        __asm volatile("dsb\n\twfi" ::: "memory");
    }
    __asm volatile("cpsie i" ::: "memory");
}

int main(void)
{
    ek_platform_init();
    ek_protocol_init();
    for (;;) {
        ek_protocol_poll();
        ek_wait_for_host();
    }
}
