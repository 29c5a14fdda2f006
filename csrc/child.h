/* child.h - what the two halves of the child (child.c: the walk, identity, fds,
 * exec; child_fs.c: paths and mounts) share.  Same rules as child.c: raw system
 * calls only, nothing allocated, the plan read-only. */
#ifndef NSB_CHILD_H
#define NSB_CHILD_H

#include "engine.h"
#include "rawsys.h"

#define NSB_PATH_MAX 4096

struct child {
    const struct nsb_ctx *ctx;
    const struct nsb_plan *plan;
    int sync_fd;
    int nfds;
    int fds[NSB_MAX_FDS];     /* the spawn's fd table, relocated where needed */
    int regs[NSB_MAX_REGS];   /* fds opened by the child itself (register 0: the root) */
    int resume;               /* second fork, CLONE_VM: the op the new process starts at */
    unsigned long nofile_max; /* the RLIMIT_NOFILE limits before an RLIMIT op changed them */
};

long nsb_open_path(struct child *c, const struct nsb_op *op, const char *path, int flags);
long nsb_mkdirs(struct child *c, const struct nsb_op *op, const char *path, long mode);
long nsb_open_parent(struct child *c, const struct nsb_op *op, const char *path, char *dir,
                     const char **base);
long nsb_keep(struct child *c, int out, long fd);
long op_fsmount(struct child *c, const struct nsb_op *op);
long op_bind(struct child *c, const struct nsb_op *op);
long op_preopen(struct child *c, const struct nsb_op *op);
long op_mount(struct child *c, const struct nsb_op *op);
long op_setattr(struct child *c, const struct nsb_op *op);
long op_remount(struct child *c, const struct nsb_op *op);
long op_mask(struct child *c, const struct nsb_op *op);
long op_ropath(struct child *c, const struct nsb_op *op);
long op_pivot(struct child *c, const struct nsb_op *op);
long op_sysctl(struct child *c, const struct nsb_op *op);
long op_copyup(struct child *c, const struct nsb_op *op);

#endif
