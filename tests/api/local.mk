# SPDX-License-Identifier: Apache-2.0
# A program using only the public header (include/teleport-unix/): no config.h, no
# libcore include path, so an internal declaration cannot slip into the example.
# Run by tests/integration/test_embed.py against the stand-in Auth.
check_PROGRAMS += tests/api/embed-ping
tests_api_embed_ping_SOURCES = tests/api/embed-ping.c
tests_api_embed_ping_CPPFLAGS = -I$(top_srcdir)/include
tests_api_embed_ping_CFLAGS = $(AM_CFLAGS)
tests_api_embed_ping_LDADD = libteleport-unix.la
