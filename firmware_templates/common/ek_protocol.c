/* Device side of edgekit's benchmark protocol; docs/firmware.md is the spec.
 *
 * A frame is one line: "<seq> <command> [args] *<crc32 as 8 hex digits>\n",
 * the CRC taken over every byte before " *". Replies echo the seq, so the
 * host can tell a reply to its retry from a late reply to an earlier try.
 * Every command is idempotent (`db` writes at an explicit offset), which is
 * what makes blind resending safe.
 */
#include "ek_protocol.h"

#include <stddef.h>
#include <stdint.h>

#include "ek_config.h"
#include "ek_crc32.h"
#include "ek_model.h"
#include "ek_platform.h"

#define EK_PROTO_VERSION 1u
#define EK_LINE_MAX 384u     /* longest accepted line, CRC included */
#define EK_CHUNK_MAX 128u    /* bytes of payload per db/results frame */
#define EK_REPLY_MAX 400u

static int8_t ek_input[EK_INPUT_BYTES] __attribute__((aligned(16)));
static int8_t ek_output[EK_OUTPUT_BYTES] __attribute__((aligned(16)));
static uint32_t ek_input_fill;   /* bytes of ek_input received so far */
static int ek_init_status;       /* ek_model_init's result */

static char ek_line[EK_LINE_MAX + 1];
static uint32_t ek_line_len;
static int ek_line_overflow;

/* ---- replies -------------------------------------------------------- */

static char ek_reply[EK_REPLY_MAX];
static uint32_t ek_reply_len;

static void reply_str(const char *s)
{
    while (*s && ek_reply_len < EK_REPLY_MAX - 12u) {
        ek_reply[ek_reply_len++] = *s++;
    }
}

static void reply_u64(uint64_t v)
{
    char digits[21];
    int n = 0;
    do {
        digits[n++] = (char)('0' + (int)(v % 10u));
        v /= 10u;
    } while (v);
    while (n && ek_reply_len < EK_REPLY_MAX - 12u) {
        ek_reply[ek_reply_len++] = digits[--n];
    }
}

static void reply_kv(const char *key, uint64_t v)
{
    reply_str(" ");
    reply_str(key);
    reply_str("=");
    reply_u64(v);
}

/* " key=-12": status codes may be negative. */
static void reply_kv_signed(const char *key, int32_t v)
{
    reply_str(" ");
    reply_str(key);
    reply_str(v < 0 ? "=-" : "=");
    reply_u64(v < 0 ? (uint64_t)(-(int64_t)v) : (uint64_t)v);
}

static const char ek_hex[] = "0123456789abcdef";

static void reply_hex(const uint8_t *p, uint32_t n)
{
    while (n-- && ek_reply_len < EK_REPLY_MAX - 14u) {
        ek_reply[ek_reply_len++] = ek_hex[*p >> 4];
        ek_reply[ek_reply_len++] = ek_hex[*p & 15u];
        p++;
    }
}

static void reply_begin(const char *seq, const char *status)
{
    ek_reply_len = 0;
    reply_str(seq);
    reply_str(" ");
    reply_str(status);
}

/* Append " *<crc>\n" and send the line. */
static void reply_send(void)
{
    uint32_t crc = ek_crc32(0, ek_reply, ek_reply_len);
    uint32_t i;
    ek_reply[ek_reply_len++] = ' ';
    ek_reply[ek_reply_len++] = '*';
    for (i = 0; i < 8u; i++) {
        ek_reply[ek_reply_len++] = ek_hex[(crc >> (28u - 4u * i)) & 15u];
    }
    ek_reply[ek_reply_len++] = '\n';
    for (i = 0; i < ek_reply_len; i++) {
        ek_platform_putc(ek_reply[i]);
    }
}

static void reply_error(const char *seq, const char *why)
{
    reply_begin(seq, "err ");
    reply_str(why);
    reply_send();
}

/* ---- parsing -------------------------------------------------------- */

static int hex_value(char c)
{
    if (c >= '0' && c <= '9') return c - '0';
    if (c >= 'a' && c <= 'f') return c - 'a' + 10;
    if (c >= 'A' && c <= 'F') return c - 'A' + 10;
    return -1;
}

/* Split `s` in place at spaces; returns the number of tokens. */
static int split(char *s, char **tokens, int max_tokens)
{
    int n = 0;
    while (*s && n < max_tokens) {
        while (*s == ' ') s++;
        if (!*s) break;
        tokens[n++] = s;
        while (*s && *s != ' ') s++;
        if (*s) *s++ = '\0';
    }
    return n;
}

/* A decimal number below 2^31; -1 when `s` is not one. */
static int32_t parse_u31(const char *s)
{
    int32_t v = 0;
    if (!*s) return -1;
    for (; *s; s++) {
        if (*s < '0' || *s > '9' || v > 99999999) return -1;
        v = v * 10 + (*s - '0');
    }
    return v;
}

/* The line's CRC is right: strips " *<crc>" and returns 1; otherwise 0. */
static int check_crc(char *line, uint32_t len)
{
    uint32_t expected = 0, i;
    if (len < 10u || line[len - 10u] != ' ' || line[len - 9u] != '*') return 0;
    for (i = len - 8u; i < len; i++) {
        int d = hex_value(line[i]);
        if (d < 0) return 0;
        expected = (expected << 4) | (uint32_t)d;
    }
    if (ek_crc32(0, line, len - 10u) != expected) return 0;
    line[len - 10u] = '\0';
    return 1;
}

/* ---- commands ------------------------------------------------------- */

static void cmd_name(const char *seq)
{
    reply_begin(seq, "ok name model=");
    reply_str(ek_model_name());
    reply_kv("in", ek_model_input_bytes());
    reply_kv("out", ek_model_output_bytes());
    reply_str(" timer=");
    reply_str(ek_timer_kind());
    reply_kv("tick_hz", ek_timer_hz());
    reply_str(" target=" EK_TARGET_NAME " id=" EK_FIRMWARE_ID);
    reply_kv("proto", EK_PROTO_VERSION);
    reply_send();
}

static void cmd_db_load(const char *seq, const char *count)
{
    int32_t n = parse_u31(count);
    if (n < 0 || (uint32_t)n != ek_model_input_bytes()) {
        reply_begin(seq, "err size: the model takes");
        reply_kv("in", ek_model_input_bytes());
        reply_send();
        return;
    }
    ek_input_fill = 0;
    reply_begin(seq, "ok db load");
    reply_kv("n", (uint32_t)n);
    reply_send();
}

static void cmd_db_data(const char *seq, const char *offset_text, const char *hex)
{
    int32_t offset = parse_u31(offset_text);
    uint32_t len = 0, i;
    uint8_t chunk[EK_CHUNK_MAX];
    while (hex[len]) len++;
    if (offset < 0 || (len & 1u) || len / 2u > EK_CHUNK_MAX) {
        reply_error(seq, "bad db frame");
        return;
    }
    len /= 2u;
    /* No gaps: the host sends in order, a retry rewrites the same bytes. */
    if ((uint32_t)offset > ek_input_fill || (uint32_t)offset + len > ek_model_input_bytes()) {
        reply_begin(seq, "err db offset out of order");
        reply_kv("fill", ek_input_fill);
        reply_send();
        return;
    }
    for (i = 0; i < len; i++) {
        int hi = hex_value(hex[2u * i]), lo = hex_value(hex[2u * i + 1u]);
        if (hi < 0 || lo < 0) {
            reply_error(seq, "bad db frame");
            return;
        }
        chunk[i] = (uint8_t)((hi << 4) | lo);
    }
    for (i = 0; i < len; i++) {
        ek_input[(uint32_t)offset + i] = (int8_t)chunk[i];
    }
    if ((uint32_t)offset + len > ek_input_fill) ek_input_fill = (uint32_t)offset + len;
    reply_begin(seq, "ok db");
    reply_kv("off", (uint32_t)offset);
    reply_kv("len", len);
    reply_kv("fill", ek_input_fill);
    reply_send();
}

static void cmd_infer(const char *seq, const char *count_text, const char *warmup_text)
{
    int32_t count = parse_u31(count_text), warmup = parse_u31(warmup_text), i;
    uint64_t total = 0, min = 0, max = 0;
    if (count < 1 || warmup < 0) {
        reply_error(seq, "bad infer frame: infer N W with N >= 1");
        return;
    }
    if (ek_input_fill != ek_model_input_bytes()) {
        reply_begin(seq, "err input incomplete");
        reply_kv("fill", ek_input_fill);
        reply_send();
        return;
    }
    for (i = 0; i < warmup + count; i++) {
        uint64_t start;
        if (ek_timer_restart) ek_timer_restart(); /* same phase for every run: same count */
        start = ek_timer_ticks();
        int status = ek_model_run(ek_input, ek_output);
        uint64_t ticks = ek_timer_ticks() - start;
        if (status != 0) {
            reply_begin(seq, "err model run failed");
            reply_kv_signed("code", status);
            reply_send();
            return;
        }
        if (i < warmup) continue;
        total += ticks;
        if (i == warmup || ticks < min) min = ticks;
        if (ticks > max) max = ticks;
    }
    reply_begin(seq, "ok infer");
    reply_kv("n", (uint32_t)count);
    reply_kv("w", (uint32_t)warmup);
    reply_kv("ticks", total);
    reply_kv("min", min);
    reply_kv("max", max);
    reply_kv("tick_hz", ek_timer_hz());
    reply_kv("in_crc", ek_crc32(0, ek_input, ek_model_input_bytes()));
    reply_kv("out_crc", ek_crc32(0, ek_output, ek_model_output_bytes()));
    reply_send();
}

static void cmd_results(const char *seq, const char *offset_text, const char *len_text)
{
    int32_t offset = parse_u31(offset_text), len = parse_u31(len_text);
    if (offset < 0 || len < 0 || (uint32_t)len > EK_CHUNK_MAX ||
        (uint32_t)offset + (uint32_t)len > ek_model_output_bytes()) {
        reply_error(seq, "bad results frame");
        return;
    }
    reply_begin(seq, "ok results");
    reply_kv("off", (uint32_t)offset);
    reply_str(" hex=");
    reply_hex((const uint8_t *)ek_output + offset, (uint32_t)len);
    reply_send();
}

static int streq(const char *a, const char *b)
{
    while (*a && *a == *b) {
        a++;
        b++;
    }
    return *a == *b;
}

static void handle_line(char *line, uint32_t len)
{
    char *tok[5];
    int n;
    const char *seq;
    if (!check_crc(line, len)) {
        reply_error("-", "crc");
        return;
    }
    n = split(line, tok, 5);
    if (n < 2 || parse_u31(tok[0]) < 0) {
        reply_error("-", "bad frame");
        return;
    }
    seq = tok[0];
    if (ek_init_status != 0) {
        reply_begin(seq, "err model init failed");
        reply_kv_signed("code", ek_init_status);
        reply_send();
    } else if (n == 2 && streq(tok[1], "name")) {
        cmd_name(seq);
    } else if (n == 4 && streq(tok[1], "db") && streq(tok[2], "load")) {
        cmd_db_load(seq, tok[3]);
    } else if (n == 4 && streq(tok[1], "db")) {
        cmd_db_data(seq, tok[2], tok[3]);
    } else if (n == 4 && streq(tok[1], "infer")) {
        cmd_infer(seq, tok[2], tok[3]);
    } else if (n == 4 && streq(tok[1], "results")) {
        cmd_results(seq, tok[2], tok[3]);
    } else {
        reply_error(seq, "unknown command");
    }
}

void ek_protocol_init(void)
{
    ek_init_status = ek_model_init();
    if (ek_init_status == 0 && (ek_model_input_bytes() > EK_INPUT_BYTES ||
                                ek_model_output_bytes() > EK_OUTPUT_BYTES)) {
        ek_init_status = -1000; /* the rendered buffers do not fit the model */
    }
    if (ek_init_status != 0) {
        reply_begin("-", "err model init failed");
        reply_kv_signed("code", ek_init_status);
    } else {
        reply_begin("-", "ready model=");
        reply_str(ek_model_name());
        reply_kv("proto", EK_PROTO_VERSION);
    }
    reply_send();
}

void ek_protocol_poll(void)
{
    int c;
    while ((c = ek_platform_getc()) >= 0) {
        if (c == '\r') continue;
        if (c != '\n') {
            if (ek_line_len < EK_LINE_MAX) {
                ek_line[ek_line_len++] = (char)c;
            } else {
                ek_line_overflow = 1;
            }
            continue;
        }
        if (ek_line_overflow) {
            reply_error("-", "line too long");
        } else if (ek_line_len) {
            ek_line[ek_line_len] = '\0';
            handle_line(ek_line, ek_line_len);
        }
        ek_line_len = 0;
        ek_line_overflow = 0;
    }
}

void ek_protocol_fault(const char *what)
{
    reply_begin("-", "err fault ");
    reply_str(what);
    reply_send();
}
