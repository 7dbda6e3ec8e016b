/* SPDX-License-Identifier: Apache-2.0 */
/*
 * parse.h - strict parsers for the small textual values found in the config
 * and elsewhere: unsigned integers, durations ("90s", "1h30m"), sizes
 * ("64MiB") and "host:port" addresses.  Layer: libcore/base (libc only).
 *
 * Rules common to all: the whole string must match (no leading or trailing
 * spaces, no sign, no "0x"); failures return -EINVAL (syntax) or -ERANGE
 * (overflow / out of range) and never write the ret_ parameters.  No
 * allocation except tu_parse_hostport's host.  Thread-safe (no state).
 */
#pragma once

#include <stddef.h>
#include <stdint.h>

/* Longest host name or address tu_parse_hostport accepts (DNS limit). */
#define TU_PARSE_HOST_MAX 253

/*
 * Cursor form (curl strparse style): parses the decimal digits at *cursor,
 * reading at most up to end (exclusive), at least one digit.  On success
 * advances *cursor past the digits.  -EINVAL (no digit), -ERANGE (> UINT64_MAX).
 */
int tu_parse_digits(const char **cursor, const char *end, uint64_t *ret);

/* Whole-string decimal numbers: "0", "3025", "4294967295". -EINVAL, -ERANGE. */
int tu_parse_u64(const char *s, uint64_t *ret);
int tu_parse_u32(const char *s, uint32_t *ret);

/*
 * Durations, Go time.ParseDuration style without sign: one or more
 * <number>[.<fraction>]<unit> with units us, ms, s, m, h, d (24h), e.g.
 * "90s", "5m", "72h", "500ms", "1h30m", "1.5h", "2d".  "0" alone is allowed.
 * A bare number other than 0 is refused (ambiguous).  Fraction digits past
 * the sixth are ignored after validation; the result is truncated to whole
 * microseconds.  -EINVAL (syntax), -ERANGE (overflows uint64 usec).
 */
int tu_parse_duration(const char *s, uint64_t *ret_usec);

/*
 * Sizes in bytes: "<digits>[unit]" with unit B, K/KiB, M/MiB, G/GiB (all
 * powers of 1024), e.g. "67108864", "64MiB", "512K".  -EINVAL, -ERANGE.
 */
int tu_parse_size(const char *s, uint64_t *ret_bytes);

/*
 * Addresses: "host", "host:port", "1.2.3.4:3025", "[::1]:3025", "[fe80::1%eth0]".
 * Without a port, *ret_port = default_port (which must then be non-zero).
 * host: a DNS name (letters, digits, '-', '_', '.', not starting with '-' or
 * '.', at most TU_PARSE_HOST_MAX), a dotted IPv4 address, or a bracketed
 * IPv6 address (validated with inet_pton, optional %zone).  An unbracketed
 * IPv6 address is refused as ambiguous.  port: 1..65535, decimal.
 * *ret_host is a new string without brackets (caller frees).
 * -EINVAL (syntax, empty host, bad address), -ERANGE (port 0 or > 65535),
 * -ENOMEM.
 */
int tu_parse_hostport(const char *s, uint16_t default_port, char **ret_host, uint16_t *ret_port);

/*
 * Checks a DNS-style host name as tu_parse_hostport does (no port, no IPv6).
 * Returns 0 or -EINVAL.
 */
int tu_parse_check_hostname(const char *s);
