# SPDX-License-Identifier: Apache-2.0
# Host-process safety: C programs that load the real modules the way sshd,
# login and getpwnam() callers do (real libpam with pam_start_confdir, the
# NSS module through dlopen) and check that nothing process-wide changed
# (tests/safety/test-host-safety.c).  Also `make lint` (tools/lint.sh) and
# `make fuzz-smoke` (tools/fuzz.sh).

if HAVE_CMOCKA
check_PROGRAMS += tests/safety/test-host-safety
TESTS += tests/safety/test-host-safety
tests_safety_test_host_safety_SOURCES = tests/safety/test-host-safety.c tests/unit/rbac-fixture.h
tests_safety_test_host_safety_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(PAM_CFLAGS) \
	-Wno-missing-field-initializers -I$(top_srcdir)/tests/unit
# --export-dynamic: the program's getpw*/getgr* interposers must win over
# libc's for the dlopened NSS module (the recursion check).
tests_safety_test_host_safety_LDFLAGS = $(AM_LDFLAGS) -Wl,--export-dynamic
tests_safety_test_host_safety_LDADD = libteleport-unix.la $(CMOCKA_LIBS) $(PAM_LIBS) -ldl -lpthread
EXTRA_tests_safety_test_host_safety_DEPENDENCIES = pam_teleport.la libnss_teleport.la \
	tests/safety/secure-probe
endif

# pam_teleport.so in the real libpam while the Nth allocation fails: out of
# memory is PAM_BUF_ERR, never an allow.  Replaces malloc, so not with
# sanitizers (they own malloc).
if HAVE_CMOCKA
if !SANITIZED
check_PROGRAMS += tests/safety/test-pam-oom
TESTS += tests/safety/test-pam-oom
tests_safety_test_pam_oom_SOURCES = tests/safety/test-pam-oom.c tests/unit/rbac-fixture.h
tests_safety_test_pam_oom_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(PAM_CFLAGS) \
	-Wno-missing-field-initializers -I$(top_srcdir)/tests/unit
tests_safety_test_pam_oom_LDFLAGS = $(AM_LDFLAGS) -Wl,--export-dynamic
tests_safety_test_pam_oom_LDADD = libteleport-unix.la $(CMOCKA_LIBS) $(PAM_LIBS)
EXTRA_tests_safety_test_pam_oom_DEPENDENCIES = pam_teleport.la
endif
endif

# Plain program (no libtool wrapper, nothing linked but libc/libdl): copied
# setuid-nobody by the test to check AT_SECURE handling.
check_PROGRAMS += tests/safety/secure-probe
tests_safety_secure_probe_SOURCES = tests/safety/secure-probe.c
tests_safety_secure_probe_LDADD = -ldl

lint:
	$(SHELL) $(top_srcdir)/tools/lint.sh $(abs_top_builddir)

# `make fuzz-smoke [FUZZ_SECONDS=N]`: every libFuzzer target for N seconds
# (clang; its own configured dir under this build dir).
FUZZ_SECONDS = 10
fuzz-smoke:
	FUZZ_BUILD=$(abs_top_builddir)/fuzz bash $(top_srcdir)/tools/fuzz.sh $(FUZZ_SECONDS)
.PHONY: lint fuzz-smoke
