/* SPDX-License-Identifier: Apache-2.0 */
/*
 * txtpb.h - a small protobuf text-format reader for the tests: parses a
 * .txtpb file into a tree of named nodes (no schema), so tests can compare
 * decoded model structs with the values written in the golden vectors.
 * Supports: # comments, `name: scalar`, `name { ... }` / `name: { ... }`,
 * `name: [a, b]` lists (of scalars or messages), "..." strings with C
 * escapes and adjacent-string concatenation, `,`/`;` separators.  Not
 * supported (not used by the vectors): `< >` messages, Any expansion.
 */
#pragma once

#include <stdbool.h>
#include <stddef.h>

struct tnode {
	char *name;         /* field name ("" for the root) */
	char *val;          /* scalar text (unescaped for strings); NULL for a message */
	bool is_str;        /* val came from a quoted string */
	struct tnode *kids; /* message fields, in file order */
	size_t n;
};

/* Parses text; on error returns -EBADMSG and a message "line N: ..." in err. */
int txtpb_parse(const char *text, size_t len, struct tnode *ret, char *err, size_t errsz);

/* Reads the header comment "# proto-message: <type>" into out; -ENOENT when absent. */
int txtpb_message_type(const char *text, char *out, size_t outsz);

void txtpb_free(struct tnode *n);

/*
 * Collects up to max nodes reached by the dotted path from n (each step may
 * match several repeated fields).  Returns the total number of matches.
 */
size_t txtpb_find(const struct tnode *n, const char *path, const struct tnode **out, size_t max);

/* The scalar of the first match of path, or NULL. */
const char *txtpb_str(const struct tnode *n, const char *path);

/* The first match of path (message or scalar), or NULL. */
const struct tnode *txtpb_get(const struct tnode *n, const char *path);
