/* ek_platform byte pipe over an STM32 USART or LPUART (the ST-LINK virtual
 * COM port of the Nucleo boards: LPUART1 on the L4R5, USART3 on the H7A3;
 * USART1 on the emulated Netduino Plus 2's STM32F405).
 *
 * Two register layouts, one driver (EK_UART_SR_DR picks, from the chip):
 *
 * - the L4 LPUART/USART and the H7 USART (RM0432, STM32L4+ reference
 *   manual, chapters "USART registers" and "LPUART registers"; RM0455,
 *   STM32H7A3/7B3 reference manual, "USART registers"): CR1 +0x00 (UE bit
 *   0, RE bit 2, TE bit 3, RXNEIE bit 5), CR3 +0x08 (OVRDIS bit 12), BRR
 *   +0x0C, ISR +0x1C (RXNE bit 5, TXE bit 7), ICR +0x20, RDR +0x24, TDR
 *   +0x28. The H7's FIFO (CR1.FIFOEN) and prescaler (PRESC) stay at their
 *   reset values: off and divide by 1.
 * - the F4's older USART (RM0090, STM32F405/415 reference manual, "USART
 *   registers"; the F1 and F2 share it): SR +0x00 (ORE bit 3, RXNE bit 5,
 *   TXE bit 7), DR +0x04 (received and transmitted byte), BRR +0x08, CR1
 *   +0x0C (RE bit 2, TE bit 3, RXNEIE bit 5, UE bit 13), CR3 +0x14. No ICR
 *   and no overrun disable: an error flag clears by reading SR, then DR,
 *   which the RX interrupt does for every byte anyway.
 *
 * The same in both: the bits of RXNE/TXE/RXNEIE/TE/RE, the BRR value for
 * 16x oversampling, the GPIO alternate-function set-up and the RX interrupt
 * into the ring. The chip's own part (core clock, bus clocks, GPIO port
 * base, supplies) is soc_<chip>.c's ek_soc_init; pins and alternate
 * function come from ek_config.h. */
#include <stdint.h>

#include "ek_board.h"
#include "ek_nvic.h"
#include "ek_platform.h"
#include "uart_ring.h"

#define UART_REG(offset) (*(volatile uint32_t *)(EK_UART_BASE + (offset)))
#if EK_UART_SR_DR
#define UART_STATUS UART_REG(0x00u) /* SR */
#define UART_RX UART_REG(0x04u)     /* DR */
#define UART_TX UART_REG(0x04u)     /* DR */
#define UART_BRR UART_REG(0x08u)
#define UART_CR1 UART_REG(0x0Cu)
#define CR1_UE (1u << 13)
#else
#define UART_CR1 UART_REG(0x00u)
#define UART_CR3 UART_REG(0x08u)
#define UART_BRR UART_REG(0x0Cu)
#define UART_STATUS UART_REG(0x1Cu) /* ISR */
#define UART_ICR UART_REG(0x20u)
#define UART_RX UART_REG(0x24u)     /* RDR */
#define UART_TX UART_REG(0x28u)     /* TDR */
#define CR1_UE (1u << 0)
#define CR3_OVRDIS (1u << 12)
#define ICR_ERRORS 0xFu /* PECF, FECF, NECF (NCF), ORECF */
#endif

#define CR1_RE (1u << 2)
#define CR1_TE (1u << 3)
#define CR1_RXNEIE (1u << 5)
#define STATUS_RXNE (1u << 5)
#define STATUS_TXE (1u << 7)

/* GPIO registers, the same on the F4, the L4+ and the H7 (the "GPIO
 * registers" sections of RM0090, RM0432 and RM0455): MODER +0x00, OSPEEDR +0x08, PUPDR +0x0C,
 * AFRL +0x20, AFRH +0x24. */
#define GPIO_REG(port, offset) (*(volatile uint32_t *)(ek_soc_gpio_base(port) + (offset)))

uint32_t ek_soc_gpio_base(unsigned port);
void ek_soc_init(void);

/* Baud divider, rounded to nearest: a USART with 16x oversampling divides
 * its kernel clock by BRR, an LPUART by BRR / 256 (RM0432, "USART baud rate
 * generation" and "LPUART baud rate generation"; on the F4, RM0090's
 * DIV_Mantissa and DIV_Fraction read as one 12.4 number are the same BRR). */
#if EK_UART_IS_LPUART
#define EK_UART_BRR ((uint32_t)((256ull * EK_UART_CLOCK_HZ + EK_UART_BAUD / 2u) / EK_UART_BAUD))
#else
#define EK_UART_BRR ((EK_UART_CLOCK_HZ + EK_UART_BAUD / 2u) / EK_UART_BAUD)
#endif

/* Alternate function `af` on pin `pin` of `port`; the RX line pulled up so
 * an unplugged debugger does not read as a stream of zero bytes. */
static void ek_pin_alternate(unsigned port, unsigned pin, unsigned af, int pull_up)
{
    uint32_t two = 2u * pin, four = 4u * (pin % 8u);
    volatile uint32_t *afr = &GPIO_REG(port, pin < 8u ? 0x20u : 0x24u);
    *afr = (*afr & ~(0xFu << four)) | ((uint32_t)af << four);
    GPIO_REG(port, 0x08u) = (GPIO_REG(port, 0x08u) & ~(3u << two)) | (1u << two); /* medium speed */
    GPIO_REG(port, 0x0Cu) = (GPIO_REG(port, 0x0Cu) & ~(3u << two)) | ((pull_up ? 1u : 0u) << two);
    GPIO_REG(port, 0x00u) = (GPIO_REG(port, 0x00u) & ~(3u << two)) | (2u << two); /* alternate */
}

void ek_uart_init(void)
{
    ek_soc_init();
    ek_pin_alternate(EK_UART_TX_PORT, EK_UART_TX_PIN, EK_UART_AF, 0);
    ek_pin_alternate(EK_UART_RX_PORT, EK_UART_RX_PIN, EK_UART_AF, 1);
    UART_CR1 = 0;              /* BRR and CR3 are written with the UART disabled */
    UART_BRR = EK_UART_BRR;
#if !EK_UART_SR_DR
    UART_CR3 = CR3_OVRDIS;     /* an overrun drops the byte instead of stopping reception */
#endif
    UART_CR1 = CR1_UE | CR1_TE | CR1_RE | CR1_RXNEIE;
    ek_nvic_enable(EK_UART_RX_IRQ);
}

/* RXNE: reading RDR (DR) both takes the byte and clears the interrupt; on
 * the SR/DR layout the same status-then-data read also clears an overrun. */
void ek_uart_rx_irq(void)
{
    while (UART_STATUS & STATUS_RXNE) {
        ek_ring_put((uint8_t)UART_RX);
    }
#if !EK_UART_SR_DR
    UART_ICR = ICR_ERRORS;
#endif
}

int ek_uart_rx_ready(void)
{
    return ek_ring_ready();
}

void ek_platform_putc(char c)
{
    while (!(UART_STATUS & STATUS_TXE)) {
    }
    UART_TX = (uint8_t)c;
}

int ek_platform_getc(void)
{
    return ek_ring_get();
}
