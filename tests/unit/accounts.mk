# SPDX-License-Identifier: Apache-2.0
# accounts engineer: the POSIX mapping and the cache.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-accounts tests/unit/test-cache
TESTS += tests/unit/test-accounts tests/unit/test-cache
tests_unit_test_accounts_SOURCES = tests/unit/test-accounts.c tests/unit/rbac-fixture.h
tests_unit_test_accounts_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_accounts_LDADD = libteleport-unix.la $(CMOCKA_LIBS)
tests_unit_test_cache_SOURCES = tests/unit/test-cache.c tests/unit/rbac-fixture.h
tests_unit_test_cache_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_cache_LDADD = libteleport-unix.la $(CMOCKA_LIBS)
endif
# Allocation-failure torture of the mapping and the cache: replaces malloc, so not with sanitizers.
if HAVE_CMOCKA
if !SANITIZED
check_PROGRAMS += tests/unit/test-accounts-oom
TESTS += tests/unit/test-accounts-oom
tests_unit_test_accounts_oom_SOURCES = tests/unit/test-accounts-oom.c tests/unit/rbac-fixture.h tests/unit/oom-interpose.h
tests_unit_test_accounts_oom_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_accounts_oom_LDADD = libteleport-unix.la $(CMOCKA_LIBS)
endif
endif
# Corpus replay of the accounts engineer's fuzzers (tests/fuzz/replay.sh runs every replay-*).
check_PROGRAMS += tests/fuzz/replay-state tests/fuzz/replay-accounts
tests_fuzz_replay_state_SOURCES = tests/fuzz/fuzz-state.c tests/fuzz/fuzz-main.c
tests_fuzz_replay_state_CFLAGS = $(AM_CFLAGS) -I$(top_srcdir)/tests/unit
tests_fuzz_replay_state_LDADD = libteleport-unix.la
tests_fuzz_replay_accounts_SOURCES = tests/fuzz/fuzz-accounts.c tests/fuzz/fuzz-main.c tests/unit/rbac-fixture.h
tests_fuzz_replay_accounts_CFLAGS = $(AM_CFLAGS) -Wno-missing-field-initializers -I$(top_srcdir)/tests/unit
tests_fuzz_replay_accounts_LDADD = libteleport-unix.la
