# SPDX-License-Identifier: Apache-2.0
# Tests: one fragment per area so they can grow independently.
# TU_VECTORS_DIR: the golden wire vectors; an environment value wins (default: the copy in
# tests/vectors/teleport), set-but-empty skips them.
TEST_EXTENSIONS = .sh
SH_LOG_COMPILER = $(SHELL)
AM_TESTS_ENVIRONMENT = \
	top_srcdir='$(abs_top_srcdir)'; export top_srcdir; \
	top_builddir='$(abs_top_builddir)'; export top_builddir; \
	TU_VECTORS_DIR="$${TU_VECTORS_DIR-$(abs_top_srcdir)/tests/vectors/teleport}"; export TU_VECTORS_DIR;

include tests/unit/wire.mk
include tests/unit/transport.mk
include tests/unit/dial.mk
include tests/unit/conf.mk
include tests/unit/decide.mk
include tests/unit/accounts.mk
include tests/unit/cli.mk
include tests/unit/doctor.mk
include tests/unit/watch.mk
include tests/fuzz/local.mk
include tests/safety/local.mk
include tests/api/local.mk
