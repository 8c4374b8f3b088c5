/* ek_platform byte pipe over the nRF52 UART (the J-Link virtual COM port of
 * the nRF52840 DK: P0.06 TX, P0.08 RX; RTS/CTS left unconnected).
 *
 * UARTE0 and the legacy UART0 share one peripheral at 0x40002000 (ID 2,
 * interrupt UARTE0_UART0 = 2); ENABLE = 4 selects the legacy UART, whose
 * TXD/RXD registers move one byte at a time without EasyDMA. Registers
 * (nRF52840 Product Specification v1.7, UART chapter): TASKS_STARTRX
 * +0x000, TASKS_STARTTX +0x008, EVENTS_RXDRDY +0x108, EVENTS_TXDRDY +0x11C,
 * EVENTS_ERROR +0x124, INTENSET +0x304 (RXDRDY bit 2), ERRORSRC +0x480,
 * ENABLE +0x500, PSEL.RTS/TXD/CTS/RXD +0x508/+0x50C/+0x510/+0x514,
 * RXD +0x518, TXD +0x51C, BAUDRATE +0x524, CONFIG +0x56C.
 *
 * The CPU runs at 64 MHz whatever the HFCLK source; the UART's baud rate is
 * only as accurate as that source, so the crystal (HFXO) is started first
 * (CLOCK chapter: TASKS_HFCLKSTART +0x000, EVENTS_HFCLKSTARTED +0x100). */
#include <stdint.h>

#include "ek_board.h"
#include "ek_platform.h"
#include "uart_ring.h"

#define REG(address) (*(volatile uint32_t *)(address))
#define UART_REG(offset) REG(EK_UART_BASE + (offset))
#define UART_TASKS_STARTRX UART_REG(0x000u)
#define UART_TASKS_STARTTX UART_REG(0x008u)
#define UART_EVENTS_RXDRDY UART_REG(0x108u)
#define UART_EVENTS_TXDRDY UART_REG(0x11Cu)
#define UART_EVENTS_ERROR UART_REG(0x124u)
#define UART_INTENSET UART_REG(0x304u)
#define UART_ERRORSRC UART_REG(0x480u)
#define UART_ENABLE UART_REG(0x500u)
#define UART_PSEL_RTS UART_REG(0x508u)
#define UART_PSEL_TXD UART_REG(0x50Cu)
#define UART_PSEL_CTS UART_REG(0x510u)
#define UART_PSEL_RXD UART_REG(0x514u)
#define UART_RXD UART_REG(0x518u)
#define UART_TXD UART_REG(0x51Cu)
#define UART_BAUDRATE UART_REG(0x524u)
#define UART_CONFIG UART_REG(0x56Cu)

#define CLOCK_TASKS_HFCLKSTART REG(0x40000000u)
#define CLOCK_EVENTS_HFCLKSTARTED REG(0x40000100u)

/* GPIO ports P0 at 0x50000000, P1 at 0x50000300 (GPIO chapter): OUTSET
 * +0x508, DIRSET +0x518, PIN_CNF[n] +0x700 + 4n. */
#define GPIO_BASE(port) (0x50000000u + 0x300u * (port))
#define PIN_SELECT(port, pin) (((uint32_t)(port) << 5) | (uint32_t)(pin)) /* PSEL: PIN bits 0-4, PORT bit 5 */
#define PSEL_DISCONNECTED 0xFFFFFFFFu

/* BAUDRATE holds fixed codes, not a divider (UART chapter, BAUDRATE). */
#if EK_UART_BAUD == 9600
#define EK_UART_BAUD_CODE 0x00275000u
#elif EK_UART_BAUD == 19200
#define EK_UART_BAUD_CODE 0x004EA000u
#elif EK_UART_BAUD == 38400
#define EK_UART_BAUD_CODE 0x009D5000u
#elif EK_UART_BAUD == 57600
#define EK_UART_BAUD_CODE 0x00EBF000u
#elif EK_UART_BAUD == 115200
#define EK_UART_BAUD_CODE 0x01D7E000u
#elif EK_UART_BAUD == 230400
#define EK_UART_BAUD_CODE 0x03AFB000u
#elif EK_UART_BAUD == 460800
#define EK_UART_BAUD_CODE 0x07400000u
#elif EK_UART_BAUD == 921600
#define EK_UART_BAUD_CODE 0x0F000000u
#elif EK_UART_BAUD == 1000000
#define EK_UART_BAUD_CODE 0x10000000u
#else
#error "uart_nrf52.c: the nRF52 UART has no BAUDRATE code for extras.uart_baud"
#endif

void ek_uart_init(void)
{
    CLOCK_EVENTS_HFCLKSTARTED = 0;
    CLOCK_TASKS_HFCLKSTART = 1;
    while (CLOCK_EVENTS_HFCLKSTARTED == 0u) {
    }
    /* TX idles high while the UART is off; RX pulled up, input connected. */
    REG(GPIO_BASE(EK_UART_TX_PORT) + 0x508u) = 1u << EK_UART_TX_PIN;
    REG(GPIO_BASE(EK_UART_TX_PORT) + 0x518u) = 1u << EK_UART_TX_PIN;
    REG(GPIO_BASE(EK_UART_RX_PORT) + 0x700u + 4u * EK_UART_RX_PIN) = 3u << 2;
    UART_ENABLE = 0;
    UART_PSEL_TXD = PIN_SELECT(EK_UART_TX_PORT, EK_UART_TX_PIN);
    UART_PSEL_RXD = PIN_SELECT(EK_UART_RX_PORT, EK_UART_RX_PIN);
    UART_PSEL_RTS = PSEL_DISCONNECTED;
    UART_PSEL_CTS = PSEL_DISCONNECTED;
    UART_BAUDRATE = EK_UART_BAUD_CODE;
    UART_CONFIG = 0;           /* no parity, one stop bit, no flow control */
    UART_INTENSET = 1u << 2;   /* RXDRDY */
    UART_ENABLE = 4u;          /* the legacy UART, not UARTE */
    UART_TASKS_STARTTX = 1;
    UART_TASKS_STARTRX = 1;
    ek_nvic_enable(EK_UART_RX_IRQ);
}

/* RXDRDY: one event per byte of the six-byte RX FIFO; the event is cleared
 * (and read back, so the write lands before the handler returns and the
 * interrupt does not fire again) before RXD is read for the next one. */
void ek_uart_rx_irq(void)
{
    while (UART_EVENTS_RXDRDY) {
        UART_EVENTS_RXDRDY = 0;
        (void)UART_EVENTS_RXDRDY;
        ek_ring_put((uint8_t)UART_RXD);
    }
    if (UART_EVENTS_ERROR) {
        UART_EVENTS_ERROR = 0;
        UART_ERRORSRC = UART_ERRORSRC; /* write 1s to clear */
    }
}

int ek_uart_rx_ready(void)
{
    return ek_ring_ready();
}

void ek_platform_putc(char c)
{
    UART_EVENTS_TXDRDY = 0;
    UART_TXD = (uint8_t)c;
    while (UART_EVENTS_TXDRDY == 0u) {
    }
}

int ek_platform_getc(void)
{
    return ek_ring_get();
}
