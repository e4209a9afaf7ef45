// One process, one cycle of reads at its floor: kept descriptors read with one
// pread each (as fdir's watch does), namespace links read with readlinkat,
// mountinfo opened afresh (it binds the mount namespace at open).
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <fcntl.h>
#include <unistd.h>
#include <time.h>
static char buf[1<<16];
static double cpu(){struct timespec t;clock_gettime(CLOCK_PROCESS_CPUTIME_ID,&t);return t.tv_sec*1e6+t.tv_nsec/1e3;}
int main(int argc,char**argv){
  int pid=atoi(argv[1]); int rounds=20000; char p[256];
  sprintf(p,"/proc/%d",pid); int dir=open(p,O_RDONLY|O_DIRECTORY);
  const char*seedf[]={"stat","maps","status","cgroup"}; int seed[4];
  for(int i=0;i<4;i++) seed[i]=openat(dir,seedf[i],O_RDONLY);
  int lim=openat(dir,"limits",O_RDONLY);
  const char*ns[]={"ns/cgroup","ns/ipc","ns/mnt","ns/net","ns/pid","ns/pid_for_children","ns/time","ns/time_for_children","ns/user","ns/uts"};
  int ncg=argc-2; int*cg=malloc(sizeof(int)*ncg); for(int i=0;i<ncg;i++) cg[i]=open(argv[i+2],O_RDONLY);
  double t0=cpu();
  for(int r=0;r<rounds;r++){ for(int i=0;i<4;i++) pread(seed[i],buf,sizeof buf,0); }
  double t1=cpu();
  for(int r=0;r<rounds;r++){ for(int i=0;i<4;i++) pread(seed[i],buf,sizeof buf,0);
    pread(lim,buf,sizeof buf,0);
    for(int i=0;i<10;i++) readlinkat(dir,ns[i],buf,64);
    int m=openat(dir,"mountinfo",O_RDONLY); while(read(m,buf,sizeof buf)>0); close(m);
    for(int i=0;i<ncg;i++) pread(cg[i],buf,sizeof buf,0); }
  double t2=cpu();
  double s=(t1-t0)/rounds, d=(t2-t1)/rounds;
  printf("seed reads %.2f us/cycle; default reads %.2f us/cycle (%d cgroup control files); ratio %.2f\n",s,d,ncg,d/s);
}
