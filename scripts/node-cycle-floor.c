// The floor of one whole-node `fdir watch --all` cycle in reads: every
// process's `maps`, `status` and `cgroup` (the files `sha256sum` reads for
// the floor BENCHMARKS.md compares against), kept open and read with
// `pread` as fdir reads them, spread over the interval in parts of 128
// processes as fdir spreads a round, and nothing else: no parsing, no
// hashing, no baseline, none of the other subsystems' reads. Prints the
// CPU a cycle (user and system) over CYCLES cycles after two of warm-up.
//
//   gcc -O2 -o /tmp/node-cycle-floor scripts/node-cycle-floor.c
//   /tmp/node-cycle-floor [CYCLES] [PARTS_OF] [INTERVAL_MS] [TOUCH_KB]   # 20 128 1000 0
//
// TOUCH_KB: after each process's reads, write that many KiB of an 8 MiB
// buffer (the next KiB each time), as a program that works on what it
// read between reads leaves the caches.
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>
#include <unistd.h>

static char buf[65536];

struct proc {
  int fd[3];
};

static double cpu_ms(int who_sys) {
  struct rusage r;
  getrusage(RUSAGE_SELF, &r);
  struct timeval t = who_sys ? r.ru_stime : r.ru_utime;
  return t.tv_sec * 1e3 + t.tv_usec / 1e3;
}

// Reads a kept file to its end: a record file to an empty read, a
// `single_open` file (status, cgroup) in one read.
static void reread(int fd, int records) {
  if (fd < 0) return;
  off_t at = 0;
  for (;;) {
    ssize_t n = pread(fd, buf, sizeof buf, at);
    if (n <= 0 || !records) return;
    at += n;
  }
}

int main(int argc, char **argv) {
  int cycles = argc > 1 ? atoi(argv[1]) : 20;
  int part = argc > 2 ? atoi(argv[2]) : 128;
  int interval_ms = argc > 3 ? atoi(argv[3]) : 1000;
  int touch_kb = argc > 4 ? atoi(argv[4]) : 0;
  static char junk[8 << 20];
  size_t junk_at = 0;
  static const char *files[3] = {"maps", "status", "cgroup"};
  struct proc *p = NULL;
  int n = 0, cap = 0;
  DIR *proc = opendir("/proc");
  if (!proc) return 1;
  struct dirent *e;
  pid_t self = getpid();
  while ((e = readdir(proc))) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9' || atoi(e->d_name) == self) continue;
    if (n == cap) {
      cap = cap ? cap * 2 : 1024;
      p = realloc(p, cap * sizeof *p);
      if (!p) return 1;
    }
    for (int i = 0; i < 3; i++) {
      char path[300];
      snprintf(path, sizeof path, "/proc/%s/%s", e->d_name, files[i]);
      p[n].fd[i] = open(path, O_RDONLY | O_CLOEXEC);
    }
    n++;
  }
  closedir(proc);
  int parts = (n + part - 1) / part;
  if (parts < 1) parts = 1;
  long gap_ns = (long)interval_ms * 1000000L / parts;
  double u0 = 0, s0 = 0;
  for (int c = 0; c < cycles + 2; c++) {
    if (c == 2) {
      u0 = cpu_ms(0);
      s0 = cpu_ms(1);
    }
    for (int k = 0; k < parts; k++) {
      for (int i = k * part; i < n && i < (k + 1) * part; i++) {
        reread(p[i].fd[0], 1);
        reread(p[i].fd[1], 0);
        reread(p[i].fd[2], 0);
        for (int t = 0; t < touch_kb; t++) {
          memset(junk + junk_at, t, 1024);
          junk_at = (junk_at + 1024) % sizeof junk;
        }
      }
      struct timespec ts = {gap_ns / 1000000000L, gap_ns % 1000000000L};
      nanosleep(&ts, NULL);
    }
  }
  double u = cpu_ms(0) - u0, s = cpu_ms(1) - s0;
  printf("%d processes, %d parts of %d: a cycle %.2f ms (user %.2f, system %.2f) over %d cycles\n", n, parts, part,
         (u + s) / cycles, u / cycles, s / cycles, cycles);
  return 0;
}
