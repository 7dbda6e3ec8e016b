# SPDX-License-Identifier: Apache-2.0
# Host-process safety: C programs that load the real modules the way sshd,
# login and getpwnam() callers do (real libpam with pam_start_confdir, the
# NSS module through dlopen) and check that nothing process-wide changed.
# Also `make lint` (tools/lint.sh) and `make harden` (tools/harden.sh).

lint:
	$(SHELL) $(top_srcdir)/tools/lint.sh $(abs_top_builddir)
.PHONY: lint
