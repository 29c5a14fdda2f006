/* msg.h - the one sender of sync-socket messages, shared by the cloned child
 * (child.c) and the container init (init.c).  Raw system calls only. */
#ifndef NSB_MSG_H
#define NSB_MSG_H

#include "nsb.h"
#include "rawsys.h"

#include <sys/socket.h>

/* Send one fixed-size message; returns what sendto returned (-errno or the size). */
static inline long nsb_send_msg(int fd, uint32_t type, int32_t stage, int32_t op, int32_t err,
                                int64_t val)
{
    struct nsb_msg m;
    m.type = type;
    m.stage = stage;
    m.op = op;
    m.err = err;
    m.val = val;
    return NSB_RETRY(nsb_sys6(SYS_sendto, fd, (long)&m, sizeof(m), MSG_NOSIGNAL, 0, 0));
}

#endif
