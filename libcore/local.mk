# SPDX-License-Identifier: Apache-2.0
# libteleport-unix.so.0: the private core shared by the PAM module, the CLI
# and (through dlopen only) the NSS module.  Exports tu_* under TU_0.
pkglib_LTLIBRARIES += libteleport-unix.la
libteleport_unix_la_SOURCES = \
	$(tu_base_sources) \
	$(tu_proto_sources) \
	%reldir%/model.c %reldir%/model.h \
	%reldir%/conf.c %reldir%/conf.h \
	%reldir%/creds.c %reldir%/creds.h \
	%reldir%/transport.h \
	%reldir%/h2.c %reldir%/h2.h \
	%reldir%/grpc.c %reldir%/grpc.h \
	%reldir%/auth.c %reldir%/auth.h \
	%reldir%/rbac.c %reldir%/rbac.h \
	%reldir%/decide.c %reldir%/decide.h \
	%reldir%/accounts.c %reldir%/accounts.h \
	%reldir%/cache.c %reldir%/cache.h \
	%reldir%/ctx.c %reldir%/ctx.h \
	%reldir%/online.c %reldir%/online.h
# Default visibility here: the version script decides what is exported.
libteleport_unix_la_CFLAGS = $(AM_CFLAGS) -fvisibility=default \
	$(CURL_CFLAGS) $(OPENSSL_CFLAGS) $(PROTOBUF_C_CFLAGS) $(YAML_CFLAGS)
libteleport_unix_la_LIBADD = $(CURL_LIBS) $(OPENSSL_LIBS) $(PROTOBUF_C_LIBS) $(YAML_LIBS) -lpthread
libteleport_unix_la_LDFLAGS = $(AM_LDFLAGS) -version-info 0:0:0 -Wl,-z,defs \
	-Wl,--version-script=$(top_srcdir)/%reldir%/libteleport-unix.map
EXTRA_libteleport_unix_la_DEPENDENCIES = %reldir%/libteleport-unix.map
EXTRA_DIST += %reldir%/libteleport-unix.map
