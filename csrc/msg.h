/* msg.h - the senders of sync-socket messages, shared by the cloned child
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

/* Send one message of `type` with the fd `pass` attached (SCM_RIGHTS): the
 * parent's copy exists once this returns, whatever this process does next. */
static inline long nsb_send_fd(int fd, uint32_t type, int pass)
{
    struct nsb_msg m;
    struct iovec iov;
    struct msghdr mh;
    union {
        char buf[CMSG_SPACE(sizeof(int))];
        struct cmsghdr align;
    } u;
    struct cmsghdr *cm;
    nsb_memzero(&m, sizeof(m));
    nsb_memzero(&mh, sizeof(mh));
    nsb_memzero(&u, sizeof(u));
    m.type = type;
    iov.iov_base = &m;
    iov.iov_len = sizeof(m);
    mh.msg_iov = &iov;
    mh.msg_iovlen = 1;
    mh.msg_control = u.buf;
    mh.msg_controllen = sizeof(u.buf);
    cm = CMSG_FIRSTHDR(&mh);
    cm->cmsg_level = SOL_SOCKET;
    cm->cmsg_type = SCM_RIGHTS;
    cm->cmsg_len = CMSG_LEN(sizeof(int));
    nsb_memcpy(CMSG_DATA(cm), &pass, sizeof(int));
    return NSB_RETRY(nsb_sys3(SYS_sendmsg, fd, (long)&mh, MSG_NOSIGNAL));
}

#endif
