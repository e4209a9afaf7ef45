// The floor of a one-shot `fdir check --all` (default subsystems) in system
// calls: per process, exactly the calls fdir makes on its own files, and
// nothing else (no parsing, no hashing, no baseline, no cgroup or mount
// table: the shared objects are read once a round, not per process).
// BENCHMARKS.md compares its CPU time with sha256sum's over every process's
// maps, status and cgroup.
//
//   gcc -O2 -o /tmp/check-floor scripts/check-floor.c
//   perf stat -e task-clock /tmp/check-floor
#define _GNU_SOURCE
#include <dirent.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static char buf[65536];

// open, one read (two for maps: a sequence of records is read to an empty
// read), close.
static void slurp(int dir, const char *file, int to_eof) {
  int fd = openat(dir, file, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return;
  ssize_t n = pread(fd, buf, sizeof buf, 0);
  if (to_eof && n > 0) pread(fd, buf, sizeof buf, n);
  close(fd);
}

int main(void) {
  static const char *ns[] = {"ns/cgroup", "ns/ipc", "ns/mnt", "ns/net", "ns/pid", "ns/pid_for_children",
                             "ns/time", "ns/time_for_children", "ns/user", "ns/uts"};
  DIR *proc = opendir("/proc");
  if (!proc) return 1;
  struct dirent *e;
  while ((e = readdir(proc))) {
    if (e->d_name[0] < '1' || e->d_name[0] > '9') continue;
    char path[300];
    snprintf(path, sizeof path, "/proc/%s", e->d_name);
    int d = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);  // the pin
    if (d < 0) continue;
    slurp(d, "stat", 0);                                      // its start time
    slurp(d, "maps", 1);                                      // memory-maps
    slurp(d, "status", 0);                                    // seccomp, credentials
    slurp(d, "cgroup", 0);                                    // cgroups, cgroup-limits
    char link[64];
    for (int k = 0; k < 10; k++) readlinkat(d, ns[k], link, sizeof link);  // namespaces
    struct statx sx;
    statx(d, "root", 0, STATX_INO | STATX_MNT_ID, &sx);       // the mount view
    slurp(d, "limits", 0);                                    // limits
    slurp(d, "stat", 0);                                      // alive? (lsm: no attribute answered)
    close(d);
  }
  closedir(proc);
  return 0;
}
