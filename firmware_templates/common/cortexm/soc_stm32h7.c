/* STM32H7A3 part of the STM32 UART driver: bus clocks and GPIO ports.
 * Registers from RM0455 (STM32H7A3/7B3 reference manual): RCC chapter;
 * memory map in its section 2.
 *
 * The firmware leaves the core on its reset clock, HSI at 64 MHz (HSIDIV
 * and every bus prescaler divide by 1 after reset),
 * with no PLL and the power supply configuration untouched: the CPU, APB1
 * and USART3's kernel clock (RCC_CDCCIP2R.USART234578SEL = 000: PCLK1 after
 * reset) all run at 64 MHz, so extras.firmware_clock_hz and
 * extras.uart_clock_hz are both 64000000. Running at 280 MHz would need
 * the SMPS/LDO supply configured, voltage scale 0 and the PLL: not done. */
#include <stdint.h>

#include "ek_board.h"

#define REG(address) (*(volatile uint32_t *)(address))
#define RCC_BASE 0x58024400u
#define RCC_AHB4ENR (*(volatile uint32_t *)(RCC_BASE + 0x0E0u))  /* GPIOxEN: bit x */
#define RCC_APB1LENR (*(volatile uint32_t *)(RCC_BASE + 0x0E8u)) /* USART2EN 17, USART3EN 18 */
#define RCC_APB2ENR (*(volatile uint32_t *)(RCC_BASE + 0x0F0u))  /* USART1EN bit 4 */

/* GPIOA at 0x58020000, one port every 0x400 on AHB4 . */
uint32_t ek_soc_gpio_base(unsigned port)
{
    return 0x58020000u + 0x400u * port;
}

/* The Cortex-M7's L1 caches (Cortex-M7 Technical Reference Manual, "Level
 * 1 memory system"; ARMv7-M Architecture Reference Manual, "Cache
 * maintenance operations"): both are off after reset, and a model's weights
 * stream from flash, so a benchmark without them measures the flash wait
 * states. Each cache is invalidated before it is turned on; nothing here
 * uses DMA, so the D-cache needs no maintenance afterwards. */
#define SCB_CCR REG(0xE000ED14u)    /* IC bit 17, DC bit 16 */
#define SCB_CCSIDR REG(0xE000ED80u) /* of the cache CSSELR selects */
#define SCB_CSSELR REG(0xE000ED84u) /* 0: L1 data cache */
#define SCB_ICIALLU REG(0xE000EF50u)
#define SCB_DCISW REG(0xE000EF60u)

static void ek_caches_on(void)
{
    uint32_t ccsidr, sets, ways, set, way;
    __asm volatile("dsb\n\tisb" ::: "memory");
    SCB_ICIALLU = 0;
    __asm volatile("dsb\n\tisb" ::: "memory");
    SCB_CCR |= 1u << 17;
    __asm volatile("dsb\n\tisb" ::: "memory");

    SCB_CSSELR = 0;
    __asm volatile("dsb" ::: "memory");
    ccsidr = SCB_CCSIDR;
    sets = ((ccsidr >> 13) & 0x7FFFu) + 1u;
    ways = ((ccsidr >> 3) & 0x3FFu) + 1u;
    for (set = 0; set < sets; set++) {
        for (way = 0; way < ways; way++) {
            /* 32-byte lines: set from bit 5; 4 ways: way in bits 31:30 */
            SCB_DCISW = (set << 5) | (way << 30);
        }
    }
    __asm volatile("dsb" ::: "memory");
    SCB_CCR |= 1u << 16;
    __asm volatile("dsb\n\tisb" ::: "memory");
}

void ek_soc_init(void)
{
    ek_caches_on();
    RCC_AHB4ENR |= (1u << EK_UART_TX_PORT) | (1u << EK_UART_RX_PORT);
    (void)RCC_AHB4ENR; /* a read back lets the clock reach the port before it is written */
#if EK_UART_BASE == 0x40004800u /* USART3 */
    RCC_APB1LENR |= 1u << 18;
    (void)RCC_APB1LENR;
#elif EK_UART_BASE == 0x40004400u /* USART2 */
    RCC_APB1LENR |= 1u << 17;
    (void)RCC_APB1LENR;
#elif EK_UART_BASE == 0x40011000u /* USART1 */
    RCC_APB2ENR |= 1u << 4;
    (void)RCC_APB2ENR;
#else
#error "soc_stm32h7.c: no clock enable known for this UART base (extras.uart_base)"
#endif
}
