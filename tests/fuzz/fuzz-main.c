/* SPDX-License-Identifier: Apache-2.0 */
/*
 * fuzz-main.c - replays libFuzzer corpora without libFuzzer (systemd's
 * model): linked with one tests/fuzz/fuzz-<input>.c under gcc, it feeds every
 * file named on the command line (directories: every regular file inside)
 * to LLVMFuzzerTestOneInput.  Run by `make check`, so every corpus entry,
 * including each crash once found, is a regression test on every build.
 */
#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

#define REPLAY_MAX_INPUT (16u * 1024u * 1024u)

static int replay_file(const char *path, size_t *count)
{
	FILE *f = fopen(path, "re");
	uint8_t *buf;
	size_t n;

	if (!f) {
		fprintf(stderr, "fuzz-main: %s: %s\n", path, strerror(errno));
		return -1;
	}
	buf = malloc(REPLAY_MAX_INPUT);
	if (!buf) {
		fclose(f);
		return -1;
	}
	n = fread(buf, 1, REPLAY_MAX_INPUT, f);
	fclose(f);
	/* A copy of exactly n bytes, so ASan/valgrind see reads past the input. */
	uint8_t *exact = malloc(n ? n : 1);
	if (!exact) {
		free(buf);
		return -1;
	}
	memcpy(exact, buf, n);
	free(buf);
	(void) LLVMFuzzerTestOneInput(exact, n);
	free(exact);
	(*count)++;
	return 0;
}

static int replay(const char *path, size_t *count)
{
	struct stat st;

	if (stat(path, &st) < 0) {
		fprintf(stderr, "fuzz-main: %s: %s\n", path, strerror(errno));
		return -1;
	}
	if (!S_ISDIR(st.st_mode))
		return replay_file(path, count);

	struct dirent **names;
	int n = scandir(path, &names, NULL, alphasort), r = 0;
	if (n < 0) {
		fprintf(stderr, "fuzz-main: %s: %s\n", path, strerror(errno));
		return -1;
	}
	for (int i = 0; i < n; i++) {
		char p[4096];
		if (names[i]->d_name[0] != '.' &&
		    snprintf(p, sizeof(p), "%s/%s", path, names[i]->d_name) < (int) sizeof(p) &&
		    stat(p, &st) == 0 && S_ISREG(st.st_mode) && replay_file(p, count) < 0)
			r = -1;
		free(names[i]);
	}
	free(names);
	return r;
}

int main(int argc, char **argv)
{
	size_t count = 0;
	int r = 0;

	for (int i = 1; i < argc; i++)
		if (replay(argv[i], &count) < 0)
			r = 1;
	printf("%s: replayed %zu input(s)\n", argc > 0 ? argv[0] : "fuzz", count);
	if (count == 0) {
		fprintf(stderr, "fuzz-main: no input replayed\n");
		return 1;
	}
	return r;
}
