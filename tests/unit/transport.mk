# SPDX-License-Identifier: Apache-2.0
# Transport: gRPC framing (libcore/grpc.c), the Auth client over a fake
# transport (libcore/auth.c), credential loading (libcore/creds.c) and the
# libcurl transport's failure paths (libcore/h2.c), and the Auth name
# resolver (libcore/resolve.c).
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-grpc tests/unit/test-auth tests/unit/test-creds tests/unit/test-h2 \
	tests/unit/test-resolve tests/unit/test-dial
TESTS += tests/unit/test-grpc tests/unit/test-auth tests/unit/test-creds tests/unit/test-h2 \
	tests/unit/test-resolve tests/unit/test-dial

tests_unit_test_grpc_SOURCES = tests/unit/test-grpc.c tests/unit/fake-transport.h
tests_unit_test_grpc_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_grpc_LDADD = libteleport-unix.la $(CMOCKA_LIBS)

tests_unit_test_auth_SOURCES = tests/unit/test-auth.c tests/unit/fake-transport.h
tests_unit_test_auth_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_auth_LDADD = libteleport-unix.la $(CMOCKA_LIBS)

tests_unit_test_creds_SOURCES = tests/unit/test-creds.c
tests_unit_test_creds_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_creds_LDADD = libteleport-unix.la $(CMOCKA_LIBS)

tests_unit_test_h2_SOURCES = tests/unit/test-h2.c
tests_unit_test_h2_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_h2_LDADD = libteleport-unix.la $(CMOCKA_LIBS) -lpthread

tests_unit_test_resolve_SOURCES = tests/unit/test-resolve.c
tests_unit_test_resolve_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_resolve_LDADD = libteleport-unix.la $(CMOCKA_LIBS) -lpthread

# dial.c and find-parse.c live in the transport module (not exported): compiled in here.
tests_unit_test_dial_SOURCES = tests/unit/test-dial.c libcore/dial/dial.c libcore/dial/find-parse.c
tests_unit_test_dial_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_dial_LDADD = libteleport-unix.la $(CMOCKA_LIBS)
endif
