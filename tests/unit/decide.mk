# SPDX-License-Identifier: Apache-2.0
# Unit tests of the decision units: rbac (templates, labels, roles) and decide.
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-rbac
TESTS += tests/unit/test-rbac
tests_unit_test_rbac_SOURCES = tests/unit/test-rbac.c tests/unit/rbac-fixture.h
tests_unit_test_rbac_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) -Wno-missing-field-initializers
tests_unit_test_rbac_LDADD = libteleport-unix.la $(CMOCKA_LIBS)
endif
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-decide
TESTS += tests/unit/test-decide
tests_unit_test_decide_SOURCES = tests/unit/test-decide.c tests/unit/rbac-fixture.h
tests_unit_test_decide_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(OPENSSL_CFLAGS) -Wno-missing-field-initializers
tests_unit_test_decide_LDADD = libteleport-unix.la $(CMOCKA_LIBS) $(OPENSSL_LIBS)
endif

# The three languages beside rbac.c, each on its own (rx.c, template.c, labelexpr.c).
if HAVE_CMOCKA
check_PROGRAMS += tests/unit/test-rx tests/unit/test-template tests/unit/test-labelexpr
TESTS += tests/unit/test-rx tests/unit/test-template tests/unit/test-labelexpr
tests_unit_test_rx_SOURCES = tests/unit/test-rx.c
tests_unit_test_rx_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS)
tests_unit_test_rx_LDADD = libteleport-unix.la $(CMOCKA_LIBS)
tests_unit_test_template_SOURCES = tests/unit/test-template.c tests/unit/rbac-fixture.h
tests_unit_test_template_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) -Wno-missing-field-initializers
tests_unit_test_template_LDADD = libteleport-unix.la $(CMOCKA_LIBS)
tests_unit_test_labelexpr_SOURCES = tests/unit/test-labelexpr.c tests/unit/rbac-fixture.h
tests_unit_test_labelexpr_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) -Wno-missing-field-initializers
tests_unit_test_labelexpr_LDADD = libteleport-unix.la $(CMOCKA_LIBS)
endif

# pam_teleport.so in a real Linux-PAM stack (pam_start_confdir), offline from a snapshot.
if HAVE_CMOCKA
check_PROGRAMS += tests/pam/test-pam-module
TESTS += tests/pam/test-pam-module
tests_pam_test_pam_module_SOURCES = tests/pam/test-pam-module.c tests/unit/rbac-fixture.h
tests_pam_test_pam_module_CFLAGS = $(AM_CFLAGS) $(CMOCKA_CFLAGS) $(PAM_CFLAGS) -Wno-missing-field-initializers -I$(top_srcdir)/tests/unit
tests_pam_test_pam_module_LDADD = libteleport-unix.la $(CMOCKA_LIBS) $(PAM_LIBS)
EXTRA_tests_pam_test_pam_module_DEPENDENCIES = pam_teleport.la
endif
