# SPDX-License-Identifier: Apache-2.0
# `teleport-unix doctor`: the nsswitch, PAM stack and sshd_config parsers and judges
# (cli/doctor-parse.c, compiled in directly: they are CLI code, not part of libteleport-unix).
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-doctor
TESTS += tests/unit/test-doctor
tests_unit_test_doctor_SOURCES = tests/unit/test-doctor.c cli/doctor-parse.c cli/doctor.h
tests_unit_test_doctor_CPPFLAGS = $(AM_CPPFLAGS) -I$(top_srcdir)/cli
tests_unit_test_doctor_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_doctor_LDADD = libteleport-unix.la $(CMOCKA_LIBS)
endif
