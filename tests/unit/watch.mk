# SPDX-License-Identifier: Apache-2.0
# WatchEvents (issue 13): event decoding, applying events, backoff, the watch state file,
# tu_grpc_stream over a fake streaming transport.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-watch
TESTS += tests/unit/test-watch
tests_unit_test_watch_SOURCES = %reldir%/test-watch.c
tests_unit_test_watch_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_watch_LDADD = libteleport-unix.la $(CMOCKA_LIBS)
endif
