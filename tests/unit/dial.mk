# SPDX-License-Identifier: Apache-2.0
# The Proxy paths' own pieces (libcore/dial): the WebSocket upgrade's checks
# and the socket-pair pump (test-ws), and ws-probe, the driver
# tests/integration/test_proxy_upgrade.py runs for the upgrade test dial and
# its memory in cache.dir.
check_PROGRAMS += tests/unit/ws-probe
tests_unit_ws_probe_SOURCES = tests/unit/ws-probe.c
tests_unit_ws_probe_LDADD = libteleport-unix.la
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-ws
TESTS += tests/unit/test-ws
tests_unit_test_ws_SOURCES = tests/unit/test-ws.c
tests_unit_test_ws_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_ws_LDADD = libteleport-unix.la $(CMOCKA_LIBS)
endif
