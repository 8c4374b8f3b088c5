/* STM32F405/415 part of the STM32 UART driver: bus clocks and GPIO ports.
 * Registers from RM0090 (STM32F405/415, F407/417, F42x, F43x reference
 * manual): RCC chapter; memory map in its section 2.3. The USART here has
 * the SR/DR register layout (EK_UART_SR_DR in uart_stm32.c).
 *
 * The firmware leaves the clock tree as it finds it. On the emulated
 * Netduino Plus 2 (QEMU -M netduinoplus2) the core runs at 168 MHz without
 * any RCC programming, and the baud rate divider is ignored, so
 * extras.firmware_clock_hz is 168000000: what SysTick counts. A real F405
 * leaves reset on the 16 MHz HSI and would need its PLL set up (HSE,
 * PLLM/N/P, 5 flash wait states, APB1 / 4, APB2 / 2) to run at 168 MHz:
 * not done, as no real board is a target here. */
#include <stdint.h>

#include "ek_board.h"

#define RCC_BASE 0x40023800u
#define RCC_AHB1ENR (*(volatile uint32_t *)(RCC_BASE + 0x30u)) /* GPIOxEN: bit x */
#define RCC_APB1ENR (*(volatile uint32_t *)(RCC_BASE + 0x40u)) /* USART2EN 17, USART3EN 18 */
#define RCC_APB2ENR (*(volatile uint32_t *)(RCC_BASE + 0x44u)) /* USART1EN 4, USART6EN 5 */

/* GPIOA at 0x40020000, one port every 0x400 on AHB1. */
uint32_t ek_soc_gpio_base(unsigned port)
{
    return 0x40020000u + 0x400u * port;
}

void ek_soc_init(void)
{
    RCC_AHB1ENR |= (1u << EK_UART_TX_PORT) | (1u << EK_UART_RX_PORT);
    (void)RCC_AHB1ENR; /* a read back lets the clock reach the port before it is written */
#if EK_UART_BASE == 0x40011000u /* USART1 */
    RCC_APB2ENR |= 1u << 4;
    (void)RCC_APB2ENR;
#elif EK_UART_BASE == 0x40011400u /* USART6 */
    RCC_APB2ENR |= 1u << 5;
    (void)RCC_APB2ENR;
#elif EK_UART_BASE == 0x40004400u /* USART2 */
    RCC_APB1ENR |= 1u << 17;
    (void)RCC_APB1ENR;
#elif EK_UART_BASE == 0x40004800u /* USART3 */
    RCC_APB1ENR |= 1u << 18;
    (void)RCC_APB1ENR;
#else
#error "soc_stm32f4.c: no clock enable known for this UART base (extras.uart_base)"
#endif
}
