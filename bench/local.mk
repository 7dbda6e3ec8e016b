# SPDX-License-Identifier: Apache-2.0
# The online-path benchmarks (printed, never asserted), run by `make bench`
# before the NSS lookup tables of nss/local.mk's recipe.
check_PROGRAMS += bench/bench-decide
bench_bench_decide_SOURCES = bench/bench-decide.c
bench_bench_decide_CFLAGS = $(AM_CFLAGS) -O2
bench_bench_decide_LDADD = libteleport-unix.la
EXTRA_DIST += bench/bench-auth.py
check_PROGRAMS += bench/bench-pam-decide bench/bench-watch-apply
bench_bench_watch_apply_SOURCES = bench/bench-watch-apply.c
bench_bench_watch_apply_CFLAGS = $(AM_CFLAGS) -O2
bench_bench_watch_apply_LDADD = libteleport-unix.la
bench_bench_pam_decide_SOURCES = bench/bench-pam-decide.c
bench_bench_pam_decide_CFLAGS = $(AM_CFLAGS) -O2
bench_bench_pam_decide_LDADD = libteleport-unix.la
EXTRA_DIST += bench/bench-watch.py bench/bench-fleet.py

bench: bench-online
bench-online: bench/bench-decide bench/bench-pam-decide bench/bench-watch-apply teleport-unix pam_teleport.la
	@echo "== decision engine (in-process)"
	$(builddir)/bench/bench-decide 2000
	@echo "== online path against the stand-in Auth server (loopback)"
	/usr/bin/python3 $(top_srcdir)/bench/bench-auth.py $(abs_top_builddir) 30 10000 || test $$? = 77
	@echo "== teleport-unix watch (issue 13): the work per user or role event, before and after the memo"
	$(builddir)/bench/bench-watch-apply $${BENCH_WATCH_APPLY_USERS:-100000} 10
	@echo "== teleport-unix watch (issue 13): change-to-getent latency, write cost, idle cost, PAM decision"
	/usr/bin/python3 $(top_srcdir)/bench/bench-watch.py $(abs_top_builddir) $${BENCH_WATCH_USERS:-1000 10000} || test $$? = 77
	@echo "== a fleet of watchers against one stand-in Auth (issue 13 item 5)"
	/usr/bin/python3 $(top_srcdir)/bench/bench-fleet.py $(abs_top_builddir) $${BENCH_FLEET_HOSTS:-20} || test $$? = 77
.PHONY: bench-online
