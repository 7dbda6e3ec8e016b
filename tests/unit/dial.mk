# SPDX-License-Identifier: Apache-2.0
# The Proxy paths' own pieces (libcore/dial): the WebSocket upgrade's checks
# and the socket-pair pump (test-ws), and ws-probe, the driver
# tests/integration/test_proxy_upgrade.py runs for the upgrade test dial and
# its memory in cache.dir.
# The dialers are built into the transport module (teleport-unix-h2.so, which exports one
# symbol): the tests compile them in.
tu_dial_test_sources = libcore/dial/tunnel-pump.c libcore/dial/ws-tls.c libcore/dial/ws.c
check_PROGRAMS += tests/unit/ws-probe
tests_unit_ws_probe_SOURCES = tests/unit/ws-probe.c $(tu_dial_test_sources)
tests_unit_ws_probe_CFLAGS = $(AM_CFLAGS) $(OPENSSL_CFLAGS)
tests_unit_ws_probe_LDADD = libteleport-unix.la $(OPENSSL_LIBS)
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-ws
TESTS += tests/unit/test-ws
tests_unit_test_ws_SOURCES = tests/unit/test-ws.c $(tu_dial_test_sources)
tests_unit_test_ws_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(OPENSSL_CFLAGS)
tests_unit_test_ws_LDADD = libteleport-unix.la $(CMOCKA_LIBS) $(OPENSSL_LIBS)
endif
