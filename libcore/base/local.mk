# SPDX-License-Identifier: Apache-2.0
# libtu-base: libc + pthread only.  Linked (hidden) into libnss_teleport.so.2;
# compiled a second time, exported, into libteleport-unix.so.0 (see libcore/local.mk).
tu_base_sources = \
	%reldir%/cleanup.h \
	%reldir%/err.c %reldir%/err.h \
	%reldir%/log.c %reldir%/log.h \
	%reldir%/strbuf.c %reldir%/strbuf.h \
	%reldir%/parse.c %reldir%/parse.h \
	%reldir%/fsutil.c %reldir%/fsutil.h \
	%reldir%/crc32c.c %reldir%/crc32c.h \
	%reldir%/snapshot.c %reldir%/snapshot.h %reldir%/snapshot-internal.h \
	%reldir%/pack.c %reldir%/pack.h \
	%reldir%/idhash.c %reldir%/idhash.h \
	%reldir%/etcgroup.c %reldir%/etcgroup.h \
	%reldir%/sshwire.h

noinst_LTLIBRARIES += libtu-base.la
libtu_base_la_SOURCES = $(tu_base_sources)
libtu_base_la_CFLAGS = $(AM_CFLAGS)
libtu_base_la_LIBADD = -lpthread
