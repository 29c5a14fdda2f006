/* bpf.h - <linux/bpf.h> for the device programs of cgroup v2 (csrc/bpf.c), with
 * an NSB_HAS_* flag where an older header lacks something (see headers.h). */
#ifndef NSB_BPF_H
#define NSB_BPF_H

#include <linux/bpf.h>

#ifdef BPF_F_REPLACE
#define NSB_HAS_BPF_F_REPLACE 1
#else
#define NSB_HAS_BPF_F_REPLACE 0
#define BPF_F_REPLACE 0
#endif

/* the name pynsbind gives its device programs (BPF_OBJ_NAME_LEN: 15 + NUL),
 * which is how update() finds its own program among those attached */
#define NSB_BPF_DEV_NAME "pynsbind_dev"

#endif
