# SPDX-License-Identifier: Apache-2.0
# Wire tests: model.c against the golden Teleport vectors ($TU_VECTORS_DIR).
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-model
TESTS += tests/unit/test-model
tests_unit_test_model_SOURCES = \
	%reldir%/test-model.c \
	%reldir%/txtpb.c %reldir%/txtpb.h
tests_unit_test_model_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_model_LDADD = libteleport-unix.la $(CMOCKA_LIBS)

# Allocation-failure torture: replaces malloc, so not with sanitizers.
if !SANITIZED
check_PROGRAMS += tests/unit/test-model-oom
TESTS += tests/unit/test-model-oom
tests_unit_test_model_oom_SOURCES = %reldir%/test-model-oom.c %reldir%/oom-interpose.h
tests_unit_test_model_oom_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_model_oom_LDADD = libteleport-unix.la $(CMOCKA_LIBS)
endif
endif
