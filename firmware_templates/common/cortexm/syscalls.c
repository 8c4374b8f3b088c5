/* The few newlib hooks a bare-metal program links against: a heap between
 * the end of .bss and the reserved stack, and stdout on the UART (lines that
 * are not protocol frames are ignored by the host, so printf debugging is
 * harmless). libnosys covers the rest. */
#include <errno.h>
#include <stddef.h>
#include <stdint.h>

#include "ek_platform.h"

extern char _heap_start, _heap_limit;

void *_sbrk(ptrdiff_t increment)
{
    static char *brk = &_heap_start;
    char *previous = brk;
    if (increment > &_heap_limit - brk) {
        errno = ENOMEM;
        return (void *)-1;
    }
    brk += increment;
    return previous;
}

int _write(int fd, const char *data, int n)
{
    int i;
    (void)fd;
    for (i = 0; i < n; i++) ek_platform_putc(data[i]);
    return n;
}
