# SPDX-License-Identifier: Apache-2.0
# pam_teleport.so: the account-phase shim over tu_decide() (STYLE §2.4).
# Links libteleport-unix.so.0 and libpam; exports only pam_sm_* (pam.map).
pammodule_LTLIBRARIES += pam_teleport.la
pam_teleport_la_SOURCES = %reldir%/pam.c
pam_teleport_la_CFLAGS = $(AM_CFLAGS) $(PAM_CFLAGS)
pam_teleport_la_LIBADD = libteleport-unix.la $(PAM_LIBS)
pam_teleport_la_LDFLAGS = $(AM_LDFLAGS) -module -avoid-version -shared -Wl,-z,defs \
	-Wl,--version-script=$(top_srcdir)/%reldir%/pam.map
EXTRA_pam_teleport_la_DEPENDENCIES = %reldir%/pam.map
EXTRA_DIST += %reldir%/pam.map
