/* ek_platform_init and main() for the bare-metal Cortex-M platform. */
#include "ek_platform.h"
#include "ek_protocol.h"

void ek_uart_init(void);
void ek_timer_init(void);

void ek_platform_init(void)
{
    ek_uart_init();
    ek_timer_init();
}

int main(void)
{
    ek_platform_init();
    ek_protocol_init();
    for (;;) {
        ek_protocol_poll();
    }
}
