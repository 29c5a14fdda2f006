/* launcher.h - what the two halves of pynsbind-run's launcher share:
 * launcher.c (the kept plans, the sandbox) and launcher_oci.c (OCI containers
 * created, started and deleted from kept plans).  Every function returns 0
 * (or a count, a pointer) on success and -1 (NULL) on failure; a failure means
 * "take the Python path". */
#ifndef NSB_LAUNCHER_H
#define NSB_LAUNCHER_H

#include <stddef.h>
#include <stdint.h>

#include "nsb.h"

/* exec pynsbind-run.py beside this program with these arguments */
void python_path(char **argv) __attribute__((noreturn));

/* a growing byte string */
struct buf {
    char *data;
    size_t len, cap;
};
int buf_add(struct buf *b, const void *data, size_t len);
/* a word of a key, after a NUL unless it is the first */
int key_word(struct buf *b, const char *word);
/* the words every key begins with (see launcher.c) */
int key_head(struct buf *key, const char *magic);
/* the value kept under the key in the plans cache: a malloc'd copy of the
 * file, *start where the value begins */
char *read_kept(const struct buf *key, size_t *len, size_t *start);

/* size bytes read from fd, into a malloc'd buffer with a NUL after them;
 * NULL when fewer came */
char *read_fd(int fd, size_t size);
/* fields first..first+n-1 of /proc/PID/stat at path (numbered as proc(5)
 * does: 3 is the state) into out, and the state letter into *state (when
 * not NULL) */
int proc_stat(const char *path, int first, int n, uint64_t *out, char *state);

/* a kept file, read in place: a short or malformed one sets bad */
struct reader {
    char *data;
    size_t at, len;
    int bad;
};
uint64_t take_uint(struct reader *r, size_t size);
/* a str (u32 length, the bytes, a NUL), in place */
char *take_str(struct reader *r);
/* the same, and its length (it may hold NULs) */
char *take_str_len(struct reader *r, size_t *len);

/* a kept plan, laid out for the engine */
struct kept {
    int inherit_stdin;
    const char *init;
    struct nsb_plan plan;
};
/* The plan at r (pynsbind._replay.encode), checked, with the command put in
 * (command NULL: the plan's own stays); gated: an OCI container's (its gate
 * and the wipes of its argv and environ, put in for this process's). */
int load_plan(struct reader *r, struct kept *k, char **command, int ncommand, int gated);
/* wait for the init the engine spawned (res): the command's exit status
 * as the init relays it (128+N for a signal N), else the init's own; -1 with
 * errno when waitid fails */
int wait_exit(const struct nsb_result *res);
/* a sealed in-memory copy of the init at path */
int sealed_init(const char *path);

/* pynsbind-run COMMAND... for an OCI command: returns only when it is not one
 * the launcher takes (the caller then goes the Python path) */
void oci_main(int argc, char **argv);

#endif
