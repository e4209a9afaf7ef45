// What keeping /proc/PID/mountinfo open would save (BENCHMARKS.md, "One
// process: which subsystems make the gap"): N reads of one process's
// mountinfo each through open + read + close, then N through one kept
// descriptor read again from offset 0, three rounds; ns a read.
//
//   gcc -O2 -o /tmp/mountinfo-open-cost scripts/mountinfo-open-cost.c
//   /tmp/mountinfo-open-cost PID 20000
#include <stdio.h>
#include <fcntl.h>
#include <unistd.h>
#include <time.h>
#include <stdlib.h>
static double now(){struct timespec t;clock_gettime(CLOCK_MONOTONIC,&t);return t.tv_sec*1e9+t.tv_nsec;}
int main(int c,char**v){char p[64];snprintf(p,64,"/proc/%s/mountinfo",v[1]);int n=atoi(v[2]);static char buf[65536];
 for(int r=0;r<3;r++){
 double t=now(); for(int i=0;i<n;i++){int fd=open(p,O_RDONLY|O_CLOEXEC);while(read(fd,buf,sizeof buf)>0);close(fd);} double a=(now()-t)/n;
 int fd=open(p,O_RDONLY|O_CLOEXEC); t=now(); for(int i=0;i<n;i++){off_t o=0;ssize_t k;while((k=pread(fd,buf,sizeof buf,o))>0)o+=k;} double b=(now()-t)/n; close(fd);
 printf("open+read+close %.0f ns, kept pread %.0f ns\n",a,b);}
}
