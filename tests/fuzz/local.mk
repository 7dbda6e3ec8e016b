# SPDX-License-Identifier: Apache-2.0
# Corpus replay: each fuzzer linked with fuzz-main.c under the normal
# compiler, fed its whole corpus by tests/fuzz/replay.sh during make check.
tu_fuzz_replay_cflags = $(AM_CFLAGS) -Wno-missing-field-initializers -I$(top_srcdir)/tests/unit
tu_fuzz_replay_ldadd = libteleport-unix.la

check_PROGRAMS += \
	tests/fuzz/replay-conf tests/fuzz/replay-parse tests/fuzz/replay-grpc tests/fuzz/replay-pem \
	tests/fuzz/replay-model tests/fuzz/replay-template tests/fuzz/replay-labels \
	tests/fuzz/replay-dns tests/fuzz/replay-ws tests/fuzz/replay-profile
tests_fuzz_replay_conf_SOURCES = tests/fuzz/fuzz-conf.c tests/fuzz/fuzz-main.c
tests_fuzz_replay_conf_CFLAGS = $(tu_fuzz_replay_cflags)
tests_fuzz_replay_conf_LDADD = $(tu_fuzz_replay_ldadd)
tests_fuzz_replay_parse_SOURCES = tests/fuzz/fuzz-parse.c tests/fuzz/fuzz-main.c
tests_fuzz_replay_parse_CFLAGS = $(tu_fuzz_replay_cflags)
tests_fuzz_replay_parse_LDADD = $(tu_fuzz_replay_ldadd)
tests_fuzz_replay_grpc_SOURCES = tests/fuzz/fuzz-grpc.c tests/fuzz/fuzz-main.c
tests_fuzz_replay_grpc_CFLAGS = $(tu_fuzz_replay_cflags)
tests_fuzz_replay_grpc_LDADD = $(tu_fuzz_replay_ldadd)
tests_fuzz_replay_pem_SOURCES = tests/fuzz/fuzz-pem.c tests/fuzz/fuzz-main.c
tests_fuzz_replay_pem_CFLAGS = $(tu_fuzz_replay_cflags)
tests_fuzz_replay_pem_LDADD = $(tu_fuzz_replay_ldadd)
tests_fuzz_replay_model_SOURCES = tests/fuzz/fuzz-model.c tests/fuzz/fuzz-main.c
tests_fuzz_replay_model_CFLAGS = $(tu_fuzz_replay_cflags)
tests_fuzz_replay_model_LDADD = $(tu_fuzz_replay_ldadd)
tests_fuzz_replay_template_SOURCES = tests/fuzz/fuzz-template.c tests/fuzz/fuzz-main.c
tests_fuzz_replay_template_CFLAGS = $(tu_fuzz_replay_cflags)
tests_fuzz_replay_template_LDADD = $(tu_fuzz_replay_ldadd)
tests_fuzz_replay_labels_SOURCES = tests/fuzz/fuzz-labels.c tests/fuzz/fuzz-main.c
tests_fuzz_replay_labels_CFLAGS = $(tu_fuzz_replay_cflags)
tests_fuzz_replay_labels_LDADD = $(tu_fuzz_replay_ldadd)
tests_fuzz_replay_dns_SOURCES = tests/fuzz/fuzz-dns.c tests/fuzz/fuzz-main.c
tests_fuzz_replay_dns_CFLAGS = $(tu_fuzz_replay_cflags)
tests_fuzz_replay_dns_LDADD = $(tu_fuzz_replay_ldadd)
tests_fuzz_replay_ws_SOURCES = tests/fuzz/fuzz-ws.c tests/fuzz/fuzz-main.c \
	libcore/dial/tunnel-pump.c libcore/dial/ws-tls.c libcore/dial/ws.c
tests_fuzz_replay_ws_CFLAGS = $(tu_fuzz_replay_cflags) $(OPENSSL_CFLAGS)
tests_fuzz_replay_ws_LDADD = $(tu_fuzz_replay_ldadd) $(OPENSSL_LIBS)

tests_fuzz_replay_profile_SOURCES = tests/fuzz/fuzz-profile.c tests/fuzz/fuzz-main.c
tests_fuzz_replay_profile_CFLAGS = $(tu_fuzz_replay_cflags)
tests_fuzz_replay_profile_LDADD = $(tu_fuzz_replay_ldadd)

TESTS += tests/fuzz/replay.sh
EXTRA_DIST += tests/fuzz/replay.sh tests/fuzz/fuzz-main.c
