# SPDX-License-Identifier: Apache-2.0
# libnss_teleport.so.2: the NSS entry points over the public snapshot.  Links
# libc only (libtu-base, hidden); exports only _nss_teleport_* (nss.map).
# Also registers the nss engineer's tests (base snapshot/pack/idhash/etcgroup
# units, the module test, the export/NEEDED checks) and `make bench`.

nsslib_LTLIBRARIES += libnss_teleport.la
libnss_teleport_la_SOURCES = %reldir%/nss.c %reldir%/dl.c %reldir%/dl.h
libnss_teleport_la_CFLAGS = $(AM_CFLAGS)
libnss_teleport_la_LIBADD = libtu-base.la -ldl
libnss_teleport_la_LDFLAGS = $(AM_LDFLAGS) -module -version-info 2:0:0 -shared -Wl,-z,defs \
	-Wl,--version-script=$(top_srcdir)/%reldir%/nss.map
EXTRA_libnss_teleport_la_DEPENDENCIES = %reldir%/nss.map
EXTRA_DIST += %reldir%/nss.map

# Base units owned here link the libc-only convenience library, as NSS does.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-snapshot tests/unit/test-pack tests/unit/test-idhash tests/unit/test-etcgroup tests/unit/test-delta
TESTS += tests/unit/test-snapshot tests/unit/test-pack tests/unit/test-idhash tests/unit/test-etcgroup tests/unit/test-delta
tests_unit_test_delta_SOURCES = tests/unit/test-delta.c
tests_unit_test_delta_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_delta_LDADD = libtu-base.la $(CMOCKA_LIBS)
tests_unit_test_snapshot_SOURCES = tests/unit/test-snapshot.c
tests_unit_test_snapshot_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_snapshot_LDADD = libtu-base.la $(CMOCKA_LIBS)
tests_unit_test_pack_SOURCES = tests/unit/test-pack.c
tests_unit_test_pack_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_pack_LDADD = libtu-base.la $(CMOCKA_LIBS)
tests_unit_test_idhash_SOURCES = tests/unit/test-idhash.c
tests_unit_test_idhash_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_idhash_LDADD = libtu-base.la $(CMOCKA_LIBS)
tests_unit_test_etcgroup_SOURCES = tests/unit/test-etcgroup.c
tests_unit_test_etcgroup_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_etcgroup_LDADD = libtu-base.la $(CMOCKA_LIBS)
endif

# Test/bench helper: writes snapshots (generated accounts or from passwd/group files).
check_PROGRAMS += tests/nss/mksnap
tests_nss_mksnap_SOURCES = tests/nss/mksnap.c
tests_nss_mksnap_LDADD = libtu-base.la

# The module loaded with dlopen, as glibc does.
if HAVE_CMOCKA
check_PROGRAMS += tests/nss/test-nss-module
TESTS += tests/nss/test-nss-module
tests_nss_test_nss_module_SOURCES = tests/nss/test-nss-module.c
tests_nss_test_nss_module_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_nss_test_nss_module_LDADD = libtu-base.la $(CMOCKA_LIBS) -ldl -lpthread
EXTRA_tests_nss_test_nss_module_DEPENDENCIES = libnss_teleport.la tests/nss/libfake-online.la
endif

# getent/id/ls through glibc + nss_wrapper; export and NEEDED allow-lists.
TESTS += tests/nss/test-getent.sh tools/check-needed.sh tools/check-exports.sh
EXTRA_DIST += tests/nss/test-getent.sh tools/check-needed.sh tools/check-exports.sh

# `make bench`: printed, never asserted (bench/run-bench.sh, docs/PERFORMANCE.md).
check_PROGRAMS += bench/bench-nss
bench_bench_nss_SOURCES = bench/bench-nss.c
bench_bench_nss_CFLAGS = $(AM_CFLAGS) -O2
check_PROGRAMS += bench/bench-delta
bench_bench_delta_SOURCES = bench/bench-delta.c
bench_bench_delta_LDADD = libtu-base.la
EXTRA_DIST += bench/run-bench.sh bench/bench-sync.sh bench/bench-sync.c bench/bench-sync-e2e.py
bench: libnss_teleport.la tests/nss/mksnap bench/bench-nss bench/bench-delta libteleport-unix.la teleport-unix
	$(SHELL) $(top_srcdir)/bench/run-bench.sh $(abs_top_builddir) $(abs_top_srcdir) $(BENCH_SIZES)
	@echo; d=$$(mktemp -d /var/tmp/bench-delta.XXXXXX) && chmod 755 "$$d" && \
		bench/bench-delta "$$d" $(BENCH_SIZES); rc=$$?; rm -rf "$$d"; exit $$rc
	@echo; echo "sync: mapping + cache write (in process), then a real sync against the stand-in server"
	$(SHELL) $(top_srcdir)/bench/bench-sync.sh $(abs_top_builddir)
	-/usr/bin/python3 $(top_srcdir)/bench/bench-sync-e2e.py $(abs_top_builddir)
.PHONY: bench

# Snapshot reader fuzzer, replayed over tests/fuzz/corpus/snapshot by tests/fuzz/replay.sh.
check_PROGRAMS += tests/fuzz/replay-snapshot
tests_fuzz_replay_snapshot_SOURCES = tests/fuzz/fuzz-snapshot.c tests/fuzz/fuzz-main.c
tests_fuzz_replay_snapshot_CFLAGS = $(AM_CFLAGS)
tests_fuzz_replay_snapshot_LDADD = libtu-base.la
# The delta overlay reader, over tests/fuzz/corpus/delta.
check_PROGRAMS += tests/fuzz/replay-delta
tests_fuzz_replay_delta_SOURCES = tests/fuzz/fuzz-delta.c tests/fuzz/fuzz-main.c
tests_fuzz_replay_delta_CFLAGS = $(AM_CFLAGS)
tests_fuzz_replay_delta_LDADD = libtu-base.la

# A fake online table for the module test (dlopened by the NSS module on a miss).
noinst_LTLIBRARIES += tests/nss/libfake-online.la
tests_nss_libfake_online_la_SOURCES = tests/nss/fake-online.c
tests_nss_libfake_online_la_LIBADD = libtu-base.la
tests_nss_libfake_online_la_LDFLAGS = -module -avoid-version -shared -rpath $(abs_builddir)

# nsslibdir and pammoduledir are not "exec" directories to automake, so the
# modules are installed by install-data, after Makefile.am's install-exec-hook
# ran: drop the .la files and the unversioned NSS symlink here.
install-data-hook:
	rm -f $(DESTDIR)$(nsslibdir)/libnss_teleport.la $(DESTDIR)$(nsslibdir)/libnss_teleport.so
	rm -f $(DESTDIR)$(pammoduledir)/pam_teleport.la
