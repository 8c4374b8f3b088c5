// ek_platform.h over the Arduino core: Serial (the Nano 33 BLE's USB CDC
// port) as the byte pipe, micros() as the clock.
#include <Arduino.h>

#include "common/ek_config.h"
#include "common/ek_platform.h"

void ek_platform_init(void) {
  Serial.begin(EK_UART_BAUD);  // USB CDC ignores the rate; kept for boards with a real UART
  while (!Serial) {
    // wait for the host to open the port, so the `ready` line is not lost
  }
}

void ek_platform_putc(char c) { Serial.write(static_cast<uint8_t>(c)); }

int ek_platform_getc(void) { return Serial.available() > 0 ? Serial.read() : -1; }

uint64_t ek_timer_ticks(void) {
  // micros() wraps every 71 minutes: extend it to 64 bits by counting wraps
  static uint32_t last = 0;
  static uint32_t high = 0;
  const uint32_t now = micros();
  if (now < last) ++high;
  last = now;
  return (static_cast<uint64_t>(high) << 32) | now;
}

uint32_t ek_timer_hz(void) { return 1000000u; }

const char *ek_timer_kind(void) { return "micros"; }
