/* ek_platform byte pipe over the nRF UART: the nRF52's (the J-Link virtual
 * COM port of the nRF52840 DK: P0.06 TX, P0.08 RX) and the nRF51's (the
 * micro:bit's UART0 on P0.24 TX, P0.25 RX); RTS/CTS left unconnected.
 *
 * Both chips have the same UART at 0x40002000 (ID 2, interrupt 2) with the
 * same registers (nRF52840 Product Specification v1.7, UART chapter; nRF51
 * Series Reference Manual v3.0, UART chapter): TASKS_STARTRX +0x000,
 * TASKS_STARTTX +0x008, EVENTS_RXDRDY +0x108, EVENTS_TXDRDY +0x11C,
 * EVENTS_ERROR +0x124, INTENSET +0x304 (RXDRDY bit 2), ERRORSRC +0x480,
 * ENABLE +0x500 (4: enabled), PSEL.RTS/TXD/CTS/RXD +0x508/+0x50C/+0x510/
 * +0x514, RXD +0x518, TXD +0x51C, BAUDRATE +0x524 (the same codes),
 * CONFIG +0x56C; the same six-byte RX FIFO with one RXDRDY per byte; the
 * same GPIO registers for port 0 at 0x50000000 and the same CLOCK task and
 * event. What differs:
 * - the nRF52 shares the peripheral with UARTE0 (EasyDMA); ENABLE = 4
 *   selects the legacy byte-at-a-time UART. The nRF51 has no UARTE.
 * - an nRF52 PSEL register holds PIN (bits 0-4), PORT (bit 5, nRF52840's
 *   P1) and CONNECT (bit 31, 0 = connected); the nRF51's holds a pin number
 *   0-31 of its one port. For a P0 pin both read the same value, so
 *   PIN_SELECT serves both, and a P1 pin is refused on an nRF51.
 * - the CPU runs at 64 MHz (nRF52) or 16 MHz (nRF51) whatever the HFCLK
 *   source; the UART's baud rate is only as accurate as that source, so
 *   the crystal (HFXO) is started first (CLOCK chapter: TASKS_HFCLKSTART
 *   +0x000, EVENTS_HFCLKSTARTED +0x100). */
#include <stdint.h>

#include "ek_board.h"
#include "ek_nvic.h"
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

/* GPIO ports P0 at 0x50000000, P1 at 0x50000300 (nRF52840 only) (GPIO chapter): OUTSET
 * +0x508, DIRSET +0x518, PIN_CNF[n] +0x700 + 4n. */
#define GPIO_BASE(port) (0x50000000u + 0x300u * (port))
#define PIN_SELECT(port, pin) (((uint32_t)(port) << 5) | (uint32_t)(pin)) /* PSEL: PIN bits 0-4, PORT bit 5 */
#define PSEL_DISCONNECTED 0xFFFFFFFFu

#if defined(__ARM_ARCH_6M__) && (EK_UART_TX_PORT != 0 || EK_UART_RX_PORT != 0)
#error "uart_nrf.c: an nRF51 has port 0 only (extras.uart_pins: P0.nn)"
#endif

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
#error "uart_nrf.c: the nRF UART has no BAUDRATE code for extras.uart_baud"
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
    UART_ENABLE = 4u;          /* the legacy UART, not UARTE */
    /* After ENABLE: the chip takes it either way, but QEMU's model of the
     * nRF51 UART drops every register write while the UART is disabled. */
    UART_INTENSET = 1u << 2;   /* RXDRDY */
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
