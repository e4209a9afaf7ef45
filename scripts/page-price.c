/* The price of a page's first touch after an idle interval, by the kind
 * of page (BENCHMARKS.md, "The price of a page").
 *
 *   gcc -O2 -o /tmp/page-price scripts/page-price.c
 *   /tmp/page-price [PAGES [ROUNDS [SLEEP_MS [FILE]]]]    # 100 6 1000 target/release/fdir
 *
 * Each round sleeps SLEEP_MS before each kind, then reads one byte of each
 * of PAGES pages, timed with rdtscp, and prints the microseconds for all of
 * them. Kinds: "small" (anonymous 4 KiB pages), "aliased" (one physical
 * page mapped at PAGES addresses), "spread" (each page in a 2 MiB region of
 * its own, so each has its own page table page), "huge" (inside one 2 MiB
 * transparent huge page), "split" (a huge page mapped as 4 KiB pages),
 * "trimmed" (a huge page of which only PAGES pages are kept), and "file"
 * (pages of FILE, mapped executable, as a binary's code is). x86-64 Linux.
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define HUGE (2UL << 20)

static unsigned long long ticks(void) {
    unsigned lo, hi;
    __asm__ volatile("rdtscp" : "=a"(lo), "=d"(hi)::"rcx");
    return ((unsigned long long)hi << 32) | lo;
}

/* A 2 MiB-aligned 2 MiB region, advised huge or not, written whole. */
static char *region(int huge) {
    char *m = mmap(0, 2 * HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (m == MAP_FAILED) { perror("mmap"); exit(1); }
    char *b = (char *)(((unsigned long)m + HUGE - 1) & ~(HUGE - 1));
    madvise(b, HUGE, huge ? MADV_HUGEPAGE : MADV_NOHUGEPAGE);
    memset(b, 1, HUGE);
    return b;
}

int main(int argc, char **argv) {
    int n = argc > 1 ? atoi(argv[1]) : 100;
    int rounds = argc > 2 ? atoi(argv[2]) : 6;
    long ms = argc > 3 ? atol(argv[3]) : 1000;
    const char *file = argc > 4 ? argv[4] : "target/release/fdir";
    if (n < 1 || n > 400) { fprintf(stderr, "PAGES: 1 to 400\n"); return 2; }

    enum { KINDS = 7 };
    const char *name[KINDS] = {"small", "aliased", "spread", "huge", "split", "trimmed", "file"};
    char *base[KINDS];
    long stride[KINDS] = {4096, 4096, HUGE, 4096, 4096, 4096, 4096};

    base[0] = region(0);
    int fd = memfd_create("page", 0);
    if (fd < 0 || ftruncate(fd, 4096)) { perror("memfd"); return 1; }
    base[1] = mmap(0, n * 4096L, PROT_NONE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    for (int i = 0; i < n; i++) {
        mmap(base[1] + i * 4096L, 4096, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_FIXED, fd, 0);
        base[1][i * 4096L] = 1;
    }
    base[2] = mmap(0, n * HUGE, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE, -1, 0);
    madvise(base[2], n * HUGE, MADV_NOHUGEPAGE);
    for (int i = 0; i < n; i++) base[2][i * HUGE] = 1;
    base[3] = region(1);
    base[4] = region(1);
    mprotect(base[4] + HUGE - 4096, 4096, PROT_READ);
    base[5] = region(1);
    madvise(base[5] + n * 4096L, HUGE - n * 4096L, MADV_DONTNEED);
    madvise(base[5], HUGE, MADV_NOHUGEPAGE); /* no collapsing it back */
    int ffd = open(file, O_RDONLY);
    struct stat st;
    if (ffd >= 0 && fstat(ffd, &st) == 0 && st.st_size < n * 4096L) {
        /* Past a file's end a mapped page is a SIGBUS, not a measurement. */
        fprintf(stderr, "%s: %lld bytes, fewer than %d pages: name a larger FILE\n", file, (long long)st.st_size, n);
        return 1;
    }
    base[6] = ffd < 0 ? MAP_FAILED : mmap(0, n * 4096L, PROT_READ | PROT_EXEC, MAP_PRIVATE, ffd, 0);
    if (base[6] == MAP_FAILED) { perror(file); return 1; }

    volatile char sink = 0;
    for (int i = 0; i < n; i++) sink += base[6][i * 4096L];

    struct timespec a, b, nap = {ms / 1000, (ms % 1000) * 1000000L};
    clock_gettime(CLOCK_MONOTONIC, &a);
    unsigned long long t0 = ticks();
    usleep(100000);
    unsigned long long t1 = ticks();
    clock_gettime(CLOCK_MONOTONIC, &b);
    double ns = ((b.tv_sec - a.tv_sec) * 1e9 + (b.tv_nsec - a.tv_nsec)) / (double)(t1 - t0);

    double sum[KINDS] = {0};
    for (int r = 0; r < rounds; r++) {
        for (int k = 0; k < KINDS; k++) {
            nanosleep(&nap, 0);
            unsigned long long x0 = ticks();
            for (int i = 0; i < n; i++) sink += base[k][i * stride[k]];
            unsigned long long x1 = ticks();
            double us = (x1 - x0) * ns / 1000;
            sum[k] += us;
            printf("%s %.1f  ", name[k], us);
        }
        printf("\n");
    }
    printf("mean, us for %d pages after %ld ms idle:", n, ms);
    for (int k = 0; k < KINDS; k++) printf(" %s %.1f", name[k], sum[k] / rounds);
    printf("\n");
    return 0;
}
