# SPDX-License-Identifier: Apache-2.0
# Config loading (libcore/conf.c) and the base parsers / file helpers it uses.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-parse tests/unit/test-fsutil tests/unit/test-log tests/unit/test-conf
TESTS += tests/unit/test-parse tests/unit/test-fsutil tests/unit/test-log tests/unit/test-conf

# Base-only units link the libc-only convenience library, as NSS does.
tests_unit_test_parse_SOURCES = tests/unit/test-parse.c
tests_unit_test_parse_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_parse_LDADD = libtu-base.la $(CMOCKA_LIBS)

tests_unit_test_fsutil_SOURCES = tests/unit/test-fsutil.c
tests_unit_test_fsutil_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_fsutil_LDADD = libtu-base.la $(CMOCKA_LIBS)
tests_unit_test_log_SOURCES = tests/unit/test-log.c
tests_unit_test_log_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_log_LDADD = libtu-base.la $(CMOCKA_LIBS) -lpthread

tests_unit_test_conf_SOURCES = tests/unit/test-conf.c
tests_unit_test_conf_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_conf_LDADD = libteleport-unix.la $(CMOCKA_LIBS)
endif
