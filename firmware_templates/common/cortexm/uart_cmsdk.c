/* ek_platform byte pipe over an ARM CMSDK APB UART (the MPS2/MPS3 boards' UART0).
 * Registers: DATA +0, STATE +4 (bit0 TX full, bit1 RX full), CTRL +8
 * (bit0 TX enable, bit1 RX enable, bit3 RX interrupt enable), INTSTATUS/
 * INTCLEAR +12, BAUDDIV +16. Bytes are polled; the RX interrupt only wakes
 * the core from WFI while it waits for the host. */
#include <stdint.h>

#include "ek_config.h"
#include "ek_nvic.h"
#include "ek_platform.h"

#define UART_REG(offset) (*(volatile uint32_t *)(EK_UART_BASE + (offset)))
#define UART_DATA UART_REG(0x00u)
#define UART_STATE UART_REG(0x04u)
#define UART_CTRL UART_REG(0x08u)
#define UART_INTCLEAR UART_REG(0x0Cu)
#define UART_BAUDDIV UART_REG(0x10u)
#define UART_RX_FULL 0x2u

void ek_uart_init(void)
{
    UART_BAUDDIV = EK_CORE_CLOCK_HZ / EK_UART_BAUD; /* the UART runs off the core clock */
    UART_CTRL = 0x3u | 0x8u;                /* TX, RX, RX interrupt */
    ek_nvic_enable(EK_UART_RX_IRQ); /* 32 on the AN505, 33 on the AN547 */
}

/* The RX interrupt only ends WFI; acknowledge it, ek_platform_getc reads. */
void ek_uart_rx_irq(void)
{
    UART_INTCLEAR = UART_RX_FULL;
}

int ek_uart_rx_ready(void)
{
    return (UART_STATE & UART_RX_FULL) != 0;
}

void ek_platform_putc(char c)
{
    while (UART_STATE & 0x1u) {
    }
    UART_DATA = (uint8_t)c;
}

int ek_platform_getc(void)
{
    if (UART_STATE & UART_RX_FULL) {
        return (int)(UART_DATA & 0xFFu);
    }
    return -1;
}
