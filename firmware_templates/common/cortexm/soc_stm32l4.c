/* STM32L4+ (L4R5) part of the STM32 UART driver: core clock, GPIO ports and
 * the VDDIO2 supply. Registers from RM0432 (STM32L4+ reference manual): RCC,
 * PWR and FLASH chapters; memory map in its section 2.2.
 *
 * The core leaves reset on MSI at 4 MHz. EK_CORE_CLOCK_HZ (the target's
 * extras.firmware_clock_hz) picks what the firmware runs at:
 *   120 MHz: the PLL from MSI (4 MHz / M 1 * N 60 / R 2), in range 1 boost
 *            mode with 5 flash wait states (RM0432 table "Number of wait
 *            states according to CPU clock (HCLK) frequency");
 *   4 MHz:   the reset clock, untouched.
 * APB1 stays undivided and LPUART1's kernel clock is PCLK1 (CCIPR.LPUART1SEL
 * = 00 after reset), so EK_UART_CLOCK_HZ equals the core clock. */
#include <stdint.h>

#include "ek_board.h"

#define REG(address) (*(volatile uint32_t *)(address))
#define RCC_BASE 0x40021000u
#define RCC_CR REG(RCC_BASE + 0x00u)       /* PLLON bit 24, PLLRDY bit 25 */
#define RCC_CFGR REG(RCC_BASE + 0x08u)     /* SW [1:0], SWS [3:2], HPRE [7:4] */
#define RCC_PLLCFGR REG(RCC_BASE + 0x0Cu)  /* PLLSRC [1:0], PLLM [7:4], PLLN [14:8], PLLREN 24, PLLR [26:25] */
#define RCC_AHB2ENR REG(RCC_BASE + 0x4Cu)  /* GPIOxEN: bit x */
#define RCC_APB1ENR1 REG(RCC_BASE + 0x58u) /* PWREN bit 28, USART2EN 17, USART3EN 18 */
#define RCC_APB1ENR2 REG(RCC_BASE + 0x5Cu) /* LPUART1EN bit 0 */
#define RCC_APB2ENR REG(RCC_BASE + 0x60u)  /* USART1EN bit 14 */
#define PWR_CR2 REG(0x40007004u)           /* IOSV bit 9 */
#define PWR_CR5 REG(0x40007080u)           /* R1MODE bit 8: 0 = range 1 boost */
#define FLASH_ACR REG(0x40022000u)         /* LATENCY [3:0] */

/* GPIOA at 0x48000000, one port every 0x400 on AHB2. */
uint32_t ek_soc_gpio_base(unsigned port)
{
    return 0x48000000u + 0x400u * port;
}

#if EK_CORE_CLOCK_HZ == 120000000u
/* RM0432 "Dynamic voltage scaling management": going above 80 MHz needs
 * range 1 boost mode, entered with HCLK halved, and the wait states set
 * before the faster clock is selected. */
static void ek_clock_120mhz(void)
{
    volatile uint32_t spin;
    RCC_CFGR = (RCC_CFGR & ~(0xFu << 4)) | (0x8u << 4); /* HPRE: SYSCLK / 2 */
    PWR_CR5 &= ~(1u << 8);                               /* R1MODE = 0: boost */
    FLASH_ACR = (FLASH_ACR & ~0xFu) | 5u;                /* 5 wait states */
    while ((FLASH_ACR & 0xFu) != 5u) {
    }
    RCC_PLLCFGR = (1u << 0)      /* PLLSRC: MSI */
                | (0u << 4)      /* PLLM: / 1 -> 4 MHz into the VCO */
                | (60u << 8)     /* PLLN: * 60 -> VCO 240 MHz */
                | (0u << 25)     /* PLLR: / 2 -> 120 MHz */
                | (1u << 24);    /* PLLREN: the R output feeds SYSCLK */
    RCC_CR |= 1u << 24;                                  /* PLLON */
    while (!(RCC_CR & (1u << 25))) {                     /* PLLRDY */
    }
    RCC_CFGR = (RCC_CFGR & ~0x3u) | 0x3u;                /* SW: PLL */
    while ((RCC_CFGR & (0x3u << 2)) != (0x3u << 2)) {    /* SWS: PLL */
    }
    for (spin = 0; spin < 200u; spin++) { /* at least 1 us at 60 MHz HCLK */
    }
    RCC_CFGR &= ~(0xFu << 4);                            /* HPRE: / 1 */
}
#elif EK_CORE_CLOCK_HZ != 4000000u
#error "soc_stm32l4.c: the firmware runs the core at 120 MHz (PLL) or 4 MHz (reset MSI): set extras.firmware_clock_hz to one of them"
#endif

void ek_soc_init(void)
{
    /* PWR's clock first: the boost mode and VDDIO2 are PWR registers. */
    RCC_APB1ENR1 |= 1u << 28;
    (void)RCC_APB1ENR1; /* a read back lets the clock reach PWR before it is written */
#if EK_CORE_CLOCK_HZ == 120000000u
    ek_clock_120mhz();
#endif
    /* PG[15:2] are supplied by VDDIO2, isolated until software declares it
     * valid (PWR_CR2.IOSV); the Nucleo's LPUART1 pins are PG7/PG8. */
    PWR_CR2 |= 1u << 9;
    RCC_AHB2ENR |= (1u << EK_UART_TX_PORT) | (1u << EK_UART_RX_PORT);
    (void)RCC_AHB2ENR;
#if EK_UART_BASE == 0x40008000u /* LPUART1 */
    RCC_APB1ENR2 |= 1u << 0;
    (void)RCC_APB1ENR2;
#elif EK_UART_BASE == 0x40013800u /* USART1 */
    RCC_APB2ENR |= 1u << 14;
    (void)RCC_APB2ENR;
#elif EK_UART_BASE == 0x40004400u /* USART2 */
    RCC_APB1ENR1 |= 1u << 17;
    (void)RCC_APB1ENR1;
#elif EK_UART_BASE == 0x40004800u /* USART3 */
    RCC_APB1ENR1 |= 1u << 18;
    (void)RCC_APB1ENR1;
#else
#error "soc_stm32l4.c: no clock enable known for this UART base (extras.uart_base)"
#endif
}
