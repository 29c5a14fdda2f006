/* work.c - the workloads of the overhead section of benchmarks/bench.py, built
 * static so that the same program runs on the host and inside each container.
 *
 *   work cpu N    N rounds of integer arithmetic (xorshift and multiply), no
 *                 system call in the loop
 *   work sys N    N rounds of five system calls: getppid, a one-byte write and
 *                 read through a pipe, openat and close of "/"
 *   work procs N  N processes that wait for a signal: this one and N - 1
 *                 children (the stop section's container of 50 processes)
 *   work rss CMD [ARG...]
 *                 run CMD, wait for it and print its peak RSS in KiB (wait4's
 *                 ru_maxrss, the largest of CMD and the descendants it waited
 *                 for); from this small program, since a process's peak RSS
 *                 counts the memory of the one it was forked from
 *
 * It times its own loop (CLOCK_MONOTONIC, read through the vDSO) and prints the
 * nanoseconds and a checksum, so that what is measured is the work inside the
 * container and not the container's start.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static uint64_t now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

static uint64_t cpu(long n)
{
    uint64_t x = 88172645463325252ULL, sum = 0;
    long i;
    for (i = 0; i < n; i++) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        sum += x * 2654435761ULL;
    }
    return sum;
}

static uint64_t sys(long n)
{
    int p[2];
    char c = 'x';
    uint64_t sum = 0;
    long i;
    if (pipe(p) < 0) {
        perror("work: pipe");
        exit(1);
    }
    for (i = 0; i < n; i++) {
        int fd;
        sum += (uint64_t)syscall(SYS_getppid);
        if (write(p[1], &c, 1) != 1 || read(p[0], &c, 1) != 1) {
            perror("work: pipe write/read");
            exit(1);
        }
        fd = openat(AT_FDCWD, "/", O_RDONLY | O_DIRECTORY | O_CLOEXEC);
        if (fd < 0) {
            perror("work: open /");
            exit(1);
        }
        sum += (uint64_t)fd;
        close(fd);
    }
    return sum;
}

static int procs(long n)
{
    long i;
    for (i = 1; i < n; i++) {
        pid_t pid = fork();
        if (pid < 0) {
            perror("work: fork");
            return 1;
        }
        if (pid == 0)
            break;
    }
    for (;;)
        pause();
}

static int rss(char **argv)
{
    struct rusage ru;
    int status;
    pid_t pid = fork();
    if (pid < 0) {
        perror("work: fork");
        return 1;
    }
    if (pid == 0) {
        execv(argv[0], argv);
        perror("work: exec");
        _exit(127);
    }
    if (wait4(pid, &status, 0, &ru) < 0) {
        perror("work: wait4");
        return 1;
    }
    if (!WIFEXITED(status) || WEXITSTATUS(status) != 0) {
        fprintf(stderr, "work: %s failed (wait status %d)\n", argv[0], status);
        return 1;
    }
    printf("%ld\n", ru.ru_maxrss);
    return 0;
}

int main(int argc, char **argv)
{
    uint64_t t0, t1, sum;
    long n;
    if (argc >= 3 && strcmp(argv[1], "rss") == 0)
        return rss(argv + 2);
    if (argc == 3 && strcmp(argv[1], "procs") == 0)
        return procs(atol(argv[2]));
    if (argc != 3 || (strcmp(argv[1], "cpu") && strcmp(argv[1], "sys"))) {
        fprintf(stderr, "usage: work cpu|sys|procs N, work rss CMD [ARG...]\n");
        return 2;
    }
    n = atol(argv[2]);
    t0 = now();
    sum = strcmp(argv[1], "cpu") == 0 ? cpu(n) : sys(n);
    t1 = now();
    printf("%llu %llu\n", (unsigned long long)(t1 - t0), (unsigned long long)sum);
    return 0;
}
