# SPDX-License-Identifier: Apache-2.0
# proto/: our subset of Teleport's protobuf schema (same field numbers).
# protoc-c generates proto/<name>.pb-c.[ch] into the BUILD tree (never
# committed, never installed); only libcore/model.c and libcore/auth.c may
# include them.  The Python stand-in server compiles the same .proto files
# with protoc --python_out.
tu_proto_files = \
	%reldir%/wrappers.proto \
	%reldir%/types.proto \
	%reldir%/authservice.proto \
	%reldir%/users_service.proto \
	%reldir%/trust_service.proto
tu_proto_sources = \
	proto/wrappers.pb-c.c \
	proto/types.pb-c.c \
	proto/authservice.pb-c.c \
	proto/users_service.pb-c.c \
	proto/trust_service.pb-c.c
tu_proto_headers = \
	proto/wrappers.pb-c.h \
	proto/types.pb-c.h \
	proto/authservice.pb-c.h \
	proto/users_service.pb-c.h \
	proto/trust_service.pb-c.h

EXTRA_DIST += $(tu_proto_files)
BUILT_SOURCES += $(tu_proto_sources) $(tu_proto_headers)
CLEANFILES += $(tu_proto_sources) $(tu_proto_headers)

# One protoc-c run writes both files (GNU make: a pattern rule with two
# targets is one recipe).  --proto_path is the source dir so imports resolve
# in out-of-tree (distcheck) builds; output goes to $(builddir)/proto.
proto/%.pb-c.c proto/%.pb-c.h: $(srcdir)/%reldir%/%.proto
	$(AM_V_GEN)$(MKDIR_P) proto && $(PROTOC_C) --proto_path=$(srcdir)/%reldir% --c_out=proto $<

# Imports: regenerate dependants when an imported file changes.
proto/types.pb-c.c proto/types.pb-c.h: $(srcdir)/%reldir%/wrappers.proto
proto/authservice.pb-c.c proto/authservice.pb-c.h: $(srcdir)/%reldir%/types.proto
proto/users_service.pb-c.c proto/users_service.pb-c.h: $(srcdir)/%reldir%/types.proto
proto/trust_service.pb-c.c proto/trust_service.pb-c.h: $(srcdir)/%reldir%/types.proto

# The only users of the generated headers: make sure they exist before the
# first compile even when a single target is built (BUILT_SOURCES only
# covers `make all/check/install`).
libcore/libteleport_unix_la-model.lo libcore/libteleport_unix_la-auth.lo: $(tu_proto_headers)
