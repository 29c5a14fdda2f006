#!/usr/bin/env bash
# v2vm.sh - run a command as root in a throw-away QEMU guest whose kernel has
# only cgroup v2, so that the cgroup test tier can run on a pure-v2 host.
#
#   .ci/v2vm.sh 'COMMAND STRING'     runs /bin/bash -c 'COMMAND STRING'
#   .ci/v2vm.sh PROG ARG...          runs PROG ARG... (no shell)
#
# The command runs in the current directory, which must lie inside the shared
# directory (the project checkout by default).  Its stdout and stderr are
# streamed live to ours, separately; its stdin is /dev/null.  We exit with the
# command's exit status, or with:
#   124  the guest ran longer than V2VM_TIMEOUT and was killed
#   125  v2vm itself failed (bad usage, host setup, guest never ran the command)
#
# What the guest is (docs/testing-vm.md has the full picture):
#   kernel   Debian's stock linux-image-amd64, fetched with `apt-get download`
#            (not installed), booted with cgroup_no_v1=all,named
#   /        the host's / shared read-only over virtio-9p, with a tmpfs overlay
#            on top: the guest sees the host's programs and can write anywhere,
#            and every write outside the shared directory vanishes at power-off
#   share    the shared directory, mounted writable at the same absolute path
#   cgroups  cgroup2 on /sys/fs/cgroup (nsdelegate,memory_recursiveprot), every
#            controller enabled in the root's cgroup.subtree_control, PID 1 in
#            /init.scope, the command in /v2vm.scope (what it leaves running
#            there is killed when it exits)
#   output   the command writes to two FIFOs (pipes, as in a CI job); the
#            guest copies them to two virtio-serial ports, which qemu hands to
#            our stdout and stderr.  The kernel console goes to ttyS0 (shown
#            when the guest fails, or live with V2VM_VERBOSE=2)
#
# Knobs (environment):
#   V2VM_MEM=2G            guest RAM (qemu -m syntax)
#   V2VM_CPUS=$(nproc)     guest vCPUs
#   V2VM_TIMEOUT=3600      seconds before the guest is killed (exit 124)
#   V2VM_BOOT_TIMEOUT=180  seconds the guest may take to reach its init
#   V2VM_DUMP_AFTER=TIMEOUT-150  seconds after the command starts when the
#                          guest lists its tasks on the console, printed on a
#                          timeout (0: never; default 0 when TIMEOUT <= 300)
#   V2VM_ACCEL=auto        auto | kvm | tcg (auto: KVM when usable, else TCG)
#   V2VM_CPU=max,la57=off  the emulated CPU model under TCG
#   V2VM_VERBOSE=0         0 quiet, 1 progress and timings, 2 also the console
#   V2VM_ENV="A B"         names of host variables to export in the guest
#   V2VM_SHARE=<project>   host directory shared writable (default: the
#                          checkout this script lives in)
#   V2VM_SHARE_CACHE=loose 9p cache mode of the share: loose (fast; the guest
#                          does not see changes the host makes meanwhile),
#                          mmap or none (coherent, several times slower)
#   V2VM_CACHE=/var/tmp/pynsbind-v2vm   kernel and initramfs cache
#   V2VM_KERNEL_PKG=       Debian kernel package (default: the one that
#                          linux-image-amd64 depended on when the cache was
#                          filled)
#   V2VM_APPEND=           more kernel parameters (e.g. loglevel=7 to see the
#                          kernel's messages with V2VM_VERBOSE=2)
#
# Needs root (apt-get, and qemu's 9p passthrough must be able to act as any
# user).  Installs qemu-system-x86, cpio, kmod, busybox-static and xz-utils
# with apt-get when they are missing.

# shellcheck disable=SC2317   # functions run from traps and watchdogs look unreachable
set -euo pipefail

readonly EX_TIMEOUT=124 EX_V2VM=125

SCRIPT=$(readlink -f "${BASH_SOURCE[0]}")
readonly SCRIPT
readonly CACHE=${V2VM_CACHE:-/var/tmp/pynsbind-v2vm}
readonly MEM=${V2VM_MEM:-2G}
readonly TIMEOUT=${V2VM_TIMEOUT:-3600}
readonly BOOT_TIMEOUT=${V2VM_BOOT_TIMEOUT:-180}
readonly DUMP_AFTER=${V2VM_DUMP_AFTER:-$((TIMEOUT > 300 ? TIMEOUT - 150 : 0))}
readonly VERBOSE=${V2VM_VERBOSE:-0}
CPUS=${V2VM_CPUS:-$(nproc)}
readonly CPUS

say() { echo "[v2vm] $*" >&2; }
info() { if [ "$VERBOSE" -ge 1 ]; then say "$*"; fi; }
die() { say "error: $*"; exit "$EX_V2VM"; }

# Single-quote a string for a POSIX shell (busybox sh reads what we write too,
# so bash's printf %q, which may produce $'...', is not an option).
shq() { printf "'%s'" "${1//\'/\'\\\'\'}"; }

# ----------------------------------------------------------------- arguments

[ $# -ge 1 ] || die "usage: $0 'COMMAND STRING' | $0 PROG ARG..."
[ "$(id -u)" = 0 ] || die "must run as root (apt-get, 9p passthrough)"
for knob in MEM CPUS TIMEOUT BOOT_TIMEOUT DUMP_AFTER VERBOSE; do
    case $knob in MEM) re='^[0-9]+[KMGT]?$' ;; *) re='^[0-9]+$' ;; esac
    [[ ${!knob} =~ $re ]] || die "V2VM_$knob: invalid value '${!knob}'"
done
case ${V2VM_ACCEL:-auto} in auto | kvm | tcg) ;; *) die "V2VM_ACCEL: invalid value '$V2VM_ACCEL' (auto, kvm or tcg)" ;; esac
readonly SHARE_CACHE=${V2VM_SHARE_CACHE:-loose}
case $SHARE_CACHE in loose | mmap | none) ;; *) die "V2VM_SHARE_CACHE: invalid value '$SHARE_CACHE' (loose, mmap or none)" ;; esac

SHARE=$(cd "${V2VM_SHARE:-$(dirname "$SCRIPT")/..}" 2>/dev/null && pwd -P) \
    || die "V2VM_SHARE: no such directory '${V2VM_SHARE:-}'"
readonly SHARE
CWD=$(pwd -P)
readonly CWD
case $CWD/ in "$SHARE"/*) ;; *) die "current directory '$CWD' is not inside the shared directory '$SHARE'" ;; esac
[ "$SHARE" != / ] || die "V2VM_SHARE: sharing / writable is not supported"
for name in ${V2VM_ENV:-}; do
    [[ $name =~ ^[A-Za-z_][A-Za-z0-9_]*$ ]] || die "V2VM_ENV: invalid variable name '$name'"
done

# ------------------------------------------------------------ host packages

apt_quiet() { DEBIAN_FRONTEND=noninteractive apt-get -qq "$@" >/dev/null; }

# Run an apt-get command; if it fails (typically: stale or missing package
# lists on a fresh machine), refresh the lists once and try again.
apt_retry() {
    apt_quiet "$@" 2>/dev/null && return 0
    info "apt-get $1 failed, running apt-get update"
    apt_quiet update
    apt_quiet "$@"
}

ensure_host_packages() {
    local pkg missing=()
    for pkg in qemu-system-x86 cpio kmod busybox-static xz-utils; do
        dpkg-query -W -f='${Status}' "$pkg" 2>/dev/null | grep -q ' installed$' || missing+=("$pkg")
    done
    [ ${#missing[@]} -eq 0 ] && return 0
    say "installing ${missing[*]}"
    apt_retry install -y --no-install-recommends "${missing[@]}" \
        || die "apt-get install ${missing[*]} failed"
}

# --------------------------------------------------------- kernel, initramfs

# The guest kernel: a Debian kernel package unpacked (never installed) into
# $CACHE/<package>, with modules.dep generated.  The guest later bind-mounts
# its lib/modules so that modprobe (and the kernel's module autoloading) work.
prepare_kernel() {
    local pkg=${V2VM_KERNEL_PKG:-}
    # Resolving linux-image-amd64 costs a second or two of apt-cache: the
    # answer is remembered, which also pins the kernel until the cache goes.
    if [ -z "$pkg" ] && [ -s "$CACHE/kernel-package" ]; then
        pkg=$(cat "$CACHE/kernel-package")
    fi
    if [ -z "$pkg" ]; then
        pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
        if [ -z "$pkg" ]; then
            apt_quiet update
            pkg=$(apt-cache depends linux-image-amd64 2>/dev/null | awk '/Depends: linux-image-[0-9]/ { print $2; exit }')
        fi
        [ -n "$pkg" ] || die "cannot find the kernel package that linux-image-amd64 depends on"
        echo "$pkg" >"$CACHE/kernel-package"
    fi
    KVER=${pkg#linux-image-}
    KDIR=$CACHE/$pkg
    KERNEL=$KDIR/vmlinux
    [ -e "$KDIR/.complete" ] && return 0

    say "downloading $pkg (once; cached in $CACHE)"
    rm -rf "$KDIR" "$KDIR.dl"
    mkdir -p "$KDIR.dl"
    chown _apt "$KDIR.dl" 2>/dev/null || true     # apt downloads as _apt when it can
    (cd "$KDIR.dl" && apt_retry download "$pkg") || die "apt-get download $pkg failed"
    dpkg-deb -x "$KDIR.dl"/*.deb "$KDIR"
    rm -rf "$KDIR.dl"
    [ -f "$KDIR/boot/vmlinuz-$KVER" ] || die "$pkg has no boot/vmlinuz-$KVER"
    extract_vmlinux "$KDIR/boot/vmlinuz-$KVER" "$KERNEL"
    depmod -b "$KDIR" "$KVER"
    touch "$KDIR/.complete"
}

# Under emulation, unpacking the xz-compressed bzImage takes the guest some 3
# seconds of every boot.  Unpack it once here instead: qemu boots the plain
# ELF vmlinux directly through its PVH entry point (CONFIG_PVH, set in Debian's
# kernels).  If that fails, the bzImage will do.
extract_vmlinux() {
    local bzimage=$1 out=$2 offset
    offset=$(LC_ALL=C grep -abo -m1 $'\xfd7zXZ\x00' "$bzimage" | head -n1 | cut -d: -f1)
    if [ -n "$offset" ]; then
        # xz complains about the bytes after the payload; the ELF check decides
        tail -c +$((offset + 1)) "$bzimage" | xz -dcq >"$out.tmp" 2>/dev/null || true
        if [ "$(head -c4 "$out.tmp" | od -An -c | tr -d ' ')" = '177ELF' ]; then
            mv "$out.tmp" "$out"
            return 0
        fi
    fi
    rm -f "$out.tmp"
    info "cannot unpack vmlinux from $bzimage, booting the bzImage"
    ln -sf "$bzimage" "$out"
}

# Modules stage 1 needs before it can mount anything, dependencies first.
readonly INITRD_MODULES="virtio_pci virtio_console 9pnet_virtio 9p overlay"

# Print the .ko paths (relative to lib/modules/$KVER) that loading module $1
# takes, dependencies before dependents, skipping those already in $seen.
module_closure() {
    local moddir=$KDIR/lib/modules/$KVER name=$1 line dep
    grep -q "/$name\.ko\$" "$moddir/modules.builtin" && return 0
    line=$(grep -m1 "/$name\.ko:" "$moddir/modules.dep") || die "kernel $KVER has no module $name"
    case " $seen " in *" ${line%%:*} "*) return 0 ;; esac
    for dep in ${line#*:}; do
        dep=${dep##*/}
        module_closure "${dep%.ko}"
    done
    seen+=" ${line%%:*}"
    echo "${line%%:*}"
}

# The initramfs holds static busybox, the two init stages below and the
# modules.  It is keyed by kernel version and by the hash of this script, so
# editing the guest's init here rebuilds it.
prepare_initrd() {
    local hash root mods mod seen=""
    hash=$(sha256sum "$SCRIPT" | cut -c1-16)
    INITRD=$CACHE/initrd-$KVER-$hash.cpio.gz
    [ -e "$INITRD" ] && return 0

    info "building $INITRD"
    # Initramfs images of older versions of this script: qemu reads its image
    # when it starts, so one an hour old is no longer in use.
    find "$CACHE" -maxdepth 1 -name "initrd-*.cpio.gz" -mmin +60 -delete
    root=$(mktemp -d "$CACHE/initrd.XXXXXX")
    mkdir -p "$root"/{bin,dev,proc,sys,modules,host,rw,newroot}
    cp /bin/busybox "$root/bin/busybox"
    mods=$(for m in $INITRD_MODULES; do module_closure "$m"; done) || exit
    for mod in $mods; do
        cp "$KDIR/lib/modules/$KVER/$mod" "$root/modules/"
        basename "$mod" >>"$root/modules/order"
    done
    stage1 >"$root/init"
    stage2 >"$root/stage2"
    chmod 0755 "$root/init" "$root/stage2"
    (cd "$root" && find . | LC_ALL=C sort | cpio -o -H newc --quiet | gzip -1) >"$INITRD.tmp"
    mv "$INITRD.tmp" "$INITRD"
    rm -rf "$root"
}

# Stage 1: PID 1 in the initramfs.  Loads the modules, builds the root (host /
# over 9p, read-only, under a tmpfs overlay) and switches to it.
stage1() {
    cat <<'EOF'
#!/bin/busybox sh
# v2vm stage 1 (generated by .ci/v2vm.sh)
/bin/busybox --install -s /bin
export PATH=/bin
fail() { echo "v2vm stage 1: $*"; poweroff -f; }

mount -t proc proc /proc && mount -t sysfs sysfs /sys && mount -t devtmpfs devtmpfs /dev \
    || fail "cannot mount /proc, /sys, /dev"
while read -r mod; do insmod "/modules/$mod" || fail "insmod $mod"; done </modules/order

p9=trans=virtio,version=9p2000.L,msize=512000
# The host root does not change while we run: cache it freely.
mount -t 9p -o "ro,cache=loose,$p9" v2vm.root /host || fail "cannot mount the host root"
mount -t tmpfs -o mode=0755 tmpfs /rw && mkdir /rw/upper /rw/work || fail "cannot mount /rw"
mount -t overlay -o lowerdir=/host,upperdir=/rw/upper,workdir=/rw/work overlay /newroot \
    || fail "cannot mount the overlay root"

# /run is a tmpfs, as on a systemd host; /run/v2vm holds our busybox, stage 2
# and the per-run control directory (the command, its environment, its status).
mount -t tmpfs -o mode=0755,nosuid,nodev tmpfs /newroot/run || fail "cannot mount /run"
mkdir -p /newroot/run/v2vm/ctl /newroot/run/v2vm/bin
mount -t 9p -o "cache=none,$p9" v2vm.ctl /newroot/run/v2vm/ctl || fail "cannot mount the control directory"
cp /bin/busybox /stage2 /newroot/run/v2vm/
for fs in proc sys dev; do mount --move "/$fs" "/newroot/$fs"; done
exec switch_root /newroot /run/v2vm/busybox sh /run/v2vm/stage2
EOF
}

# Stage 2: PID 1 on the real root.  Sets the system up like a pure cgroup v2
# host, runs the command in /v2vm.scope, reports its status, powers off.
stage2() {
    cat <<'EOF'
# v2vm stage 2 (generated by .ci/v2vm.sh)
V=/run/v2vm
C=$V/ctl
$V/busybox --install -s $V/bin
export PATH=$V/bin
cat /proc/uptime >$C/booted     # tells the host we are up
. $C/guest.conf                 # V2VM_SHARE, V2VM_MODULES

fail() {
    echo "$*" >$C/error
    echo "v2vm stage 2: $*"
    poweroff -f
}

# cgroup2 only (cgroup_no_v1 keeps v1 out), with systemd's mount options.  PID 1
# leaves the root cgroup first; every controller is then enabled in the root's
# subtree_control, so that every child of the root can use all of them.
G=/sys/fs/cgroup
mount -t cgroup2 -o nosuid,nodev,noexec,nsdelegate,memory_recursiveprot cgroup2 $G \
    || fail "cannot mount cgroup2"
mkdir $G/init.scope $G/v2vm.scope && echo 1 >$G/init.scope/cgroup.procs \
    || fail "cannot move PID 1 to /init.scope"
for c in $(cat $G/cgroup.controllers); do
    echo "+$c" >$G/cgroup.subtree_control || fail "cannot enable controller $c in the root cgroup"
done

# The rest of a usual /dev, and /tmp.
mkdir -p /dev/pts /dev/shm /dev/mqueue
mount -t devpts -o nosuid,noexec,newinstance,gid=5,mode=0620,ptmxmode=0666 devpts /dev/pts \
    || fail "cannot mount /dev/pts"
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /dev/shm || fail "cannot mount /dev/shm"
mount -t mqueue -o nosuid,nodev,noexec mqueue /dev/mqueue || fail "cannot mount /dev/mqueue"
mount -t tmpfs -o nosuid,nodev,mode=1777 tmpfs /tmp || fail "cannot mount /tmp"
ln -sf /proc/self/fd /dev/fd
ln -sf /proc/self/fd/0 /dev/stdin
ln -sf /proc/self/fd/1 /dev/stdout
ln -sf /proc/self/fd/2 /dev/stderr

# This kernel's modules, so that modprobe and module autoloading work.
mkdir -p "/lib/modules/$(uname -r)" && mount --bind "$V2VM_MODULES" "/lib/modules/$(uname -r)" \
    || fail "cannot bind the kernel modules"

hostname v2vm
ip link set lo up || fail "cannot bring up lo"
# Debian kernels can forbid unprivileged user namespaces; allow them (root's
# always work).
[ -e /proc/sys/kernel/unprivileged_userns_clone ] && echo 1 >/proc/sys/kernel/unprivileged_userns_clone

# Mounts propagate like on a systemd host (everything shared).
mount --make-rshared /

# The shared directory.  With cache=loose (the default) the guest caches
# metadata and data, which makes Python imports several times faster under
# emulation; writes reach the host at the latest at the `sync` below.
# Its mount point may not exist in the guest (a checkout under /tmp, which is a
# fresh tmpfs here): make it.
mkdir -p "$V2VM_SHARE" || fail "cannot make the mount point $V2VM_SHARE"
mount -t 9p -o trans=virtio,version=9p2000.L,msize=512000,cache=$V2VM_SHARE_CACHE,access=client \
    v2vm.share "$V2VM_SHARE" || fail "cannot mount the shared directory on $V2VM_SHARE"

# The virtio-serial ports show up asynchronously; find them by name.
port() {
    for p in /sys/class/virtio-ports/*; do
        [ "$(cat "$p/name" 2>/dev/null)" = "$1" ] && [ -c "/dev/${p##*/}" ] && echo "/dev/${p##*/}" && return 0
    done
    return 1
}
tries=0
until OUT=$(port v2vm.stdout) && ERR=$(port v2vm.stderr); do
    tries=$((tries + 1))
    [ $tries -le 100 ] || fail "no virtio-serial ports v2vm.stdout and v2vm.stderr"
    sleep 0.05
done

# A virtio port can be open only once (a second open fails with EBUSY), and
# programs do reopen /dev/stdout or /dev/stderr.  So the command writes to two
# FIFOs instead, like a CI job writes to pipes, and a cat per FIFO copies them
# to the ports.
mkfifo $V/stdout $V/stderr
cat $V/stdout >"$OUT" &
relays=$!
cat $V/stderr >"$ERR" &
relays="$relays $!"

# A command still running shortly before the host's timeout gets its tasks
# listed on the console (state, where each waits, its command line) and the
# kernel's view of blocked tasks and busy CPUs, so that a timeout tells a
# hang from slowness.  The host prints the console when it kills the guest.
if [ "${V2VM_DUMP_AFTER:-0}" -gt 0 ]; then
    (
        sleep "$V2VM_DUMP_AFTER"
        echo "v2vm: the command still runs after ${V2VM_DUMP_AFTER}s; its processes (pid state wchan cmdline):"
        for d in /proc/[0-9]*; do
            c=$(tr '\0' ' ' <$d/cmdline 2>/dev/null | cut -c1-160)
            [ -n "$c" ] || continue # a kernel thread
            printf '%s %s %s %s\n' "${d#/proc/}" "$(sed 's/.*) \(.\).*/\1/' $d/stat 2>/dev/null)" \
                "$(cat $d/wchan 2>/dev/null)" "$c"
        done
        cat /proc/pressure/cpu /proc/pressure/memory /proc/pressure/io 2>/dev/null
        dmesg -n 8
        echo w >/proc/sysrq-trigger
        echo l >/proc/sysrq-trigger
    ) >/dev/console 2>&1 &
fi

# The command: job.sh in /v2vm.scope, with a clean environment.  The FIFOs are
# opened in the child only, so that what this shell may say about the command
# (such as "Killed") goes to the console, not to the command's stderr.
cat /proc/uptime >$C/started
sh -c 'echo $$ >/sys/fs/cgroup/v2vm.scope/cgroup.procs &&
       exec "$@" </dev/null >/run/v2vm/stdout 2>/run/v2vm/stderr' \
    v2vm-job env -i /bin/bash --noprofile --norc $C/job.sh
rc=$?

# Whatever the command left running in its cgroup goes now; the relays then
# see end-of-file once they have copied everything.  A process that moved to
# another cgroup may still hold a FIFO open: the relays get 5 seconds.
echo 1 >$G/v2vm.scope/cgroup.kill
(sleep 5; kill $relays 2>/dev/null) &
timer=$!
wait $relays
kill $timer 2>/dev/null
cat /proc/uptime >$C/finished
echo $rc >$C/rc
sync
poweroff -f
EOF
}

# ------------------------------------------------------------------ booting

# KVM is used when /dev/kvm is there and backed by a hardware KVM module.
# /dev/kvm from kvm_pvm (nested "pagetable virtual machine") cannot boot a
# stock kernel, so it counts as unusable.
kvm_usable() {
    [ -r /dev/kvm ] && [ -w /dev/kvm ] || return 1
    [ ! -d /sys/module/kvm_pvm ] || return 1
    [ -d /sys/module/kvm_intel ] || [ -d /sys/module/kvm_amd ]
}

accel_args() {
    # shellcheck disable=SC2054   # the commas are inside qemu option values
    case $1 in
        kvm) ACCEL_ARGS=(-accel kvm -cpu host) ;;
        # Software emulation: one host thread per vCPU; la57 off keeps the
        # guest on 4-level paging, which is cheaper to emulate.
        tcg) ACCEL_ARGS=(-accel tcg,thread=multi -cpu "${V2VM_CPU:-max,la57=off}") ;;
    esac
}

# Write the per-run control directory: what stage 2 needs (guest.conf, read by
# busybox sh) and the command itself (job.sh, run by bash).
write_control() {
    local name arg
    {
        printf 'V2VM_SHARE=%s\n' "$(shq "$SHARE")"
        printf 'V2VM_MODULES=%s\n' "$(shq "$KDIR/lib/modules/$KVER")"
        printf 'V2VM_SHARE_CACHE=%s\n' "$SHARE_CACHE"
        # the guest lists its tasks this long after the command starts (the
        # host kills it at TIMEOUT from qemu's start, boot included)
        printf 'V2VM_DUMP_AFTER=%d\n' "$DUMP_AFTER"
    } >"$CTL/guest.conf"
    {
        echo '# generated by .ci/v2vm.sh: the command, run by bash in the guest'
        printf 'export PATH=%s\n' "$(shq "$PATH")"
        printf 'export LANG=%s\n' "$(shq "${LANG:-C.UTF-8}")"
        echo 'export HOME=/root USER=root LOGNAME=root SHELL=/bin/bash TERM=dumb V2VM=1'
        for name in ${V2VM_ENV:-}; do
            if [ -n "${!name+set}" ]; then printf 'export %s=%s\n' "$name" "$(shq "${!name}")"; fi
        done
        printf 'cd %s || { echo %s >&2; exit %d; }\n' \
            "$(shq "$CWD")" "$(shq "v2vm: cannot enter $CWD in the guest")" "$EX_V2VM"
        if [ $# -eq 1 ]; then
            printf 'exec /bin/bash -c %s\n' "$(shq "$1")"
        else
            printf 'exec'
            for arg in "$@"; do printf ' %s' "$(shq "$arg")"; done
            printf '\n'
        fi
    } >"$CTL/job.sh"
}

# Children of one boot: qemu, the readers of its FIFOs, the watchdogs.
QEMU_PID=
READERS=()
WATCHDOGS=()

# Run "$@" after $1 seconds, in the background (a watchdog).  Killing it with
# TERM also kills its `sleep`, so that no stray process outlives us.
after() {
    local delay=$1
    shift
    (
        trap 'kill $s 2>/dev/null; wait $s; exit 0' TERM
        sleep "$delay" &
        s=$!
        wait $s
        "$@"
    ) &
    WATCHDOGS+=($!)
}

boot_watchdog() {
    [ -e "$CTL/booted" ] && return 0
    echo boot >"$CTL/killed"
    kill "$QEMU_PID" 2>/dev/null
}

run_timeout() {
    echo timeout >"$CTL/killed"
    kill "$QEMU_PID" 2>/dev/null
}

# Stop qemu if it still runs, then the watchdogs, then wait for the readers
# to copy what is left in the FIFOs.
reap() {
    local fifo fd
    if [ -n "$QEMU_PID" ]; then
        kill "$QEMU_PID" 2>/dev/null || true
        wait "$QEMU_PID" 2>/dev/null || true
        QEMU_PID=
    fi
    if [ ${#WATCHDOGS[@]} -gt 0 ]; then kill "${WATCHDOGS[@]}" 2>/dev/null || true; fi
    # A reader whose FIFO qemu never opened is still blocked in open(): a
    # read-write open of the FIFO (which never blocks) releases it, and its
    # close gives the reader end-of-file.
    for fifo in "$CTL"/*.fifo; do
        if [ -p "$fifo" ]; then exec {fd}<>"$fifo"; exec {fd}>&-; fi
    done
    local children=("${WATCHDOGS[@]}" "${READERS[@]}")
    if [ ${#children[@]} -gt 0 ]; then wait "${children[@]}" 2>/dev/null || true; fi
    WATCHDOGS=()
    READERS=()
}

# Boot the guest once with accelerator $1 and wait for it to power off.
boot() {
    local accel=$1 con
    accel_args "$accel"
    rm -f "$CTL"/{booted,started,finished,rc,error,killed,console.log,qemu.log} "$CTL"/*.fifo

    # qemu writes each port to a FIFO that cat copies to our own stdout or
    # stderr: cat writes through our file descriptions, so output appended to
    # a redirected log keeps its offset (re-opening /proc/self/fd/1 would not).
    mkfifo "$CTL/stdout.fifo" "$CTL/stderr.fifo"
    cat "$CTL/stdout.fifo" &
    READERS+=($!)
    cat "$CTL/stderr.fifo" >&2 &
    READERS+=($!)
    if [ "$VERBOSE" -ge 2 ]; then
        mkfifo "$CTL/console.fifo"
        (sed -u 's/\r$//' <"$CTL/console.fifo" | tee "$CTL/console.log" >&2) &
        READERS+=($!)
        con=$CTL/console.fifo
    else
        con=$CTL/console.log
    fi

    # Kernel command line: only cgroup v2; quiet; power off rather than reboot
    # on panic (-no-reboot); skip what costs time under emulation (CPU bug
    # mitigations, page zeroing on allocation, the timer check).
    local append="console=ttyS0 quiet panic=-1 rdinit=/init cgroup_no_v1=all,named"
    append+=" mitigations=off init_on_alloc=0 no_timer_check tsc=reliable ${V2VM_APPEND:-}"

    info "booting $(basename "$KERNEL") accel=$accel cpus=$CPUS mem=$MEM share=$SHARE"
    T_BOOT=$(date +%s.%N)
    qemu-system-x86_64 -name v2vm -nodefaults -no-user-config -display none -no-reboot \
        "${ACCEL_ARGS[@]}" -machine q35 -smp "$CPUS" -m "$MEM" \
        -kernel "$KERNEL" -initrd "$INITRD" -append "$append" \
        -chardev file,id=console,path="$con" -serial chardev:console \
        -device virtio-serial-pci,id=vser \
        -chardev file,id=stdout,path="$CTL/stdout.fifo" \
        -device virtserialport,bus=vser.0,chardev=stdout,name=v2vm.stdout \
        -chardev file,id=stderr,path="$CTL/stderr.fifo" \
        -device virtserialport,bus=vser.0,chardev=stderr,name=v2vm.stderr \
        -fsdev local,id=root,path=/,security_model=passthrough,readonly=on,multidevs=remap \
        -device virtio-9p-pci,fsdev=root,mount_tag=v2vm.root \
        -fsdev local,id=ctl,path="$CTL",security_model=passthrough \
        -device virtio-9p-pci,fsdev=ctl,mount_tag=v2vm.ctl \
        -fsdev local,id=share,path="$SHARE",security_model=passthrough,multidevs=remap \
        -device virtio-9p-pci,fsdev=share,mount_tag=v2vm.share \
        </dev/null >"$CTL/qemu.log" 2>&1 &
    QEMU_PID=$!
    after "$BOOT_TIMEOUT" boot_watchdog
    after "$TIMEOUT" run_timeout

    # A trapped signal interrupts wait; its handler (on_signal) exits.
    QEMU_RC=0
    wait "$QEMU_PID" || QEMU_RC=$?
    QEMU_PID=
    T_END=$(date +%s.%N)
    reap
}

# Seconds between two uptime/epoch stamps, one decimal.
elapsed() { awk -v a="$1" -v b="$2" 'BEGIN { printf "%.1f", b - a }'; }

report_timings() {
    [ "$VERBOSE" -ge 1 ] || return 0
    local booted started finished
    booted=$(cut -d' ' -f1 "$CTL/booted" 2>/dev/null) || return 0
    started=$(cut -d' ' -f1 "$CTL/started" 2>/dev/null) || return 0
    finished=$(cut -d' ' -f1 "$CTL/finished" 2>/dev/null) || return 0
    say "kernel to init ${booted}s, init to command $(elapsed "$booted" "$started")s," \
        "command $(elapsed "$started" "$finished")s, qemu total $(elapsed "$T_BOOT" "$T_END")s"
}

# What qemu said, and the last $1 lines of the guest's console under the
# title $2 (after a guest that failed or timed out).
show_guest() {
    if [ -s "$CTL/qemu.log" ]; then say "qemu said:"; sed 's/^/    /' "$CTL/qemu.log" >&2; fi
    if [ -s "$CTL/console.log" ]; then
        say "$2"
        tail -n "$1" "$CTL/console.log" | tr -d '\r' | sed 's/^/    /' >&2
    fi
}

# ----------------------------------------------------------------- main

CTL=
cleanup() {
    reap
    if [ -n "$CTL" ]; then rm -rf "$CTL"; fi
}
on_signal() {
    say "interrupted by $1, stopping the guest"
    exit $((128 + $2))          # runs cleanup
}
trap cleanup EXIT
trap 'on_signal SIGINT 2' INT
trap 'on_signal SIGTERM 15' TERM
trap 'on_signal SIGHUP 1' HUP

mkdir -p "$CACHE"
exec {lock}>"$CACHE/.lock"
flock "$lock"               # one run at a time prepares the cache
ensure_host_packages
prepare_kernel
prepare_initrd
exec {lock}>&-

# Control directories of runs killed too hard to clean up (SIGKILL).
find "$CACHE" -maxdepth 1 -name "run.*" -mmin +1440 -exec rm -rf {} +
CTL=$(mktemp -d "$CACHE/run.XXXXXX")
write_control "$@"

accel=${V2VM_ACCEL:-auto}
if [ "$accel" = auto ]; then
    if kvm_usable; then accel=kvm; else accel=tcg; fi
fi
boot "$accel"
# KVM chosen on our own but the guest never reached its init (an unusual
# /dev/kvm): try once more with software emulation.
if [ "$accel" = kvm ] && [ "${V2VM_ACCEL:-auto}" = auto ] && [ ! -e "$CTL/booted" ] \
    && [ "$(cat "$CTL/killed" 2>/dev/null)" != timeout ]; then
    say "the guest did not boot with KVM, retrying with TCG (software emulation)"
    boot tcg
fi
report_timings

if [ -e "$CTL/rc" ]; then
    exit "$(cat "$CTL/rc")"
fi
case $(cat "$CTL/killed" 2>/dev/null) in
    timeout)
        say "timeout: the guest ran longer than ${TIMEOUT}s (V2VM_TIMEOUT)"
        show_guest 400 "the guest console (its tasks, listed before the timeout, are at the end):"
        exit "$EX_TIMEOUT"
        ;;
    boot) say "error: the guest did not reach its init within ${BOOT_TIMEOUT}s (V2VM_BOOT_TIMEOUT)" ;;
esac
if [ -e "$CTL/error" ]; then
    say "error: guest setup failed: $(cat "$CTL/error")"
else
    say "error: the guest stopped without reporting an exit status (qemu exit status $QEMU_RC)"
fi
show_guest 30 "last lines of the guest console:"
exit "$EX_V2VM"
