/* edgekit's on-device benchmark protocol (spec: docs/firmware.md).
 *
 * Lines over the UART, every line in both directions ending in a CRC-32 of
 * its text, so the host can resend what the wire damaged. Portable C: it
 * needs only ek_platform.h and ek_model.h.
 */
#ifndef EK_PROTOCOL_H
#define EK_PROTOCOL_H

#ifdef __cplusplus
extern "C" {
#endif

/* Initialise the model and announce the firmware with a `ready` line. */
void ek_protocol_init(void);

/* Handle every byte waiting on the UART; call it in the main loop. */
void ek_protocol_poll(void);

/* Report a fault (e.g. from the HardFault handler) as one `err fault` line,
 * so the host fails at once with the reason instead of timing out. */
void ek_protocol_fault(const char *what);

#ifdef __cplusplus
}
#endif

#endif /* EK_PROTOCOL_H */
