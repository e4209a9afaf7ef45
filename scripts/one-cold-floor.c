// One process at 100 ms, the reads alone: what one-floor.c measures in a
// tight loop (warm caches), measured as a watch makes them, one cycle every
// 100 ms (cold caches). Run two side by side, as `fdir bench --only one`
// runs its two watches:
//   gcc -O2 -o /tmp/coldfloor scripts/one-cold-floor.c
//   F=$(ls -l /proc/WATCH/fd | awk '{print $NF}' | grep '^/sys/fs/cgroup')   # the control files fdir keeps open
//   /tmp/coldfloor PID default 100 $F & /tmp/coldfloor PID seed 100
// "seed": stat, maps, status, cgroup through kept descriptors; "default":
// those, limits, the 10 namespace links, mountinfo opened afresh and every
// control file given (directories are skipped). Prints the thread CPU of a
// cycle, the 100 ms sleeps excluded.
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <time.h>
#include <sys/stat.h>
static char buf[1 << 16];
static double cpu(void) {
  struct timespec t;
  clock_gettime(CLOCK_THREAD_CPUTIME_ID, &t);
  return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}
int main(int argc, char **argv) {
  if (argc < 4) { fprintf(stderr, "usage: %s PID seed|default CYCLES [CONTROL-FILE...]\n", argv[0]); return 2; }
  int pid = atoi(argv[1]), all = strcmp(argv[2], "default") == 0, cycles = atoi(argv[3]);
  char p[256];
  sprintf(p, "/proc/%d", pid);
  int dir = open(p, O_RDONLY | O_DIRECTORY);
  const char *seedf[] = {"stat", "maps", "status", "cgroup"};
  int seed[4];
  for (int i = 0; i < 4; i++) seed[i] = openat(dir, seedf[i], O_RDONLY);
  int lim = openat(dir, "limits", O_RDONLY);
  const char *ns[] = {"ns/cgroup", "ns/ipc", "ns/mnt", "ns/net", "ns/pid", "ns/pid_for_children", "ns/time", "ns/time_for_children", "ns/user", "ns/uts"};
  int n = 0, *cg = malloc(sizeof(int) * (argc > 4 ? argc - 4 : 1));
  for (int i = 4; i < argc; i++) {
    struct stat st;
    if (stat(argv[i], &st) == 0 && S_ISREG(st.st_mode)) cg[n++] = open(argv[i], O_RDONLY);
  }
  double total = 0;
  struct timespec interval = {0, 100000000};
  for (int r = 0; r < cycles; r++) {
    nanosleep(&interval, 0);
    double t0 = cpu();
    for (int i = 0; i < 4; i++) pread(seed[i], buf, sizeof buf, 0);
    if (all) {
      pread(lim, buf, sizeof buf, 0);
      for (int i = 0; i < 10; i++) readlinkat(dir, ns[i], buf, 64);
      int m = openat(dir, "mountinfo", O_RDONLY);
      while (read(m, buf, sizeof buf) > 0) {}
      close(m);
      for (int i = 0; i < n; i++) pread(cg[i], buf, sizeof buf, 0);
    }
    total += cpu() - t0;
  }
  printf("%s reads: %.1f us a cycle at 100 ms (%d control files)\n", argv[2], total / cycles, all ? n : 0);
  return 0;
}
