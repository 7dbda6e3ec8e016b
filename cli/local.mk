# SPDX-License-Identifier: Apache-2.0
bin_PROGRAMS += teleport-unix
teleport_unix_SOURCES = \
	%reldir%/cli.h \
	%reldir%/main.c \
	%reldir%/out.c \
	%reldir%/cmd-ping.c \
	%reldir%/cmd-sync.c \
	%reldir%/cmd-watch.c \
	%reldir%/cmd-user.c \
	%reldir%/cmd-check.c \
	%reldir%/cmd-passwd.c \
	%reldir%/cmd-status.c \
	%reldir%/cmd-doctor.c \
	%reldir%/doctor-parse.c \
	%reldir%/doctor.h \
	%reldir%/cmd-cache.c \
	%reldir%/cmd-ssh-principals.c
teleport_unix_LDADD = libteleport-unix.la
# doctor dlopen()s the installed NSS and PAM modules, as glibc and libpam would.
teleport_unix_LDADD += -ldl
# doctor: the path the sshd drop-in names the installed CLI by.
teleport_unix_CPPFLAGS = $(AM_CPPFLAGS) -DTU_BINDIR=\"$(bindir)\"
