/* The workloads of core/tests/container_workloads.rs, one per mode, each holding a kernel
 * object CRIU must carry across a checkpoint and restore. Built static (gcc -static) into the
 * busybox rootfs of a container. Every 50 ms the workload checks that what it holds is as it
 * left it and rewrites /counter in place, at a fixed width (CRIU records the size of a file open
 * at the dump): "%8d %4d\n", the round and the first fault seen (0: none; sticky).
 *
 *   wl MODE     threads | talk | ghost | locks | fds | shm | zombie | stopped | mem | listen
 *               | ustream | udgram | hostfile | tmpfs | masked
 *
 * The last five are core/tests/container_external.rs's, each holding something that reaches
 * outside the container: a unix stream socket connected to a listener on the host through a
 * bind-mounted socket file (/ext/stream.sock: each round sends the round, 8 bytes, and reads it
 * back from the host's echo), a unix datagram socket sending each round to a host socket
 * (/ext/dgram.sock), a bind-mounted host file (/ext/log) it appends a line to each round, a
 * file open on a tmpfs config.json mounts (/data), and a file open in a masked path
 * (/proc/keys) with its working directory in a bind mount (/ext/dir).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pthread.h>
#include <signal.h>
#include <stdatomic.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/file.h>
#include <sys/inotify.h>
#include <sys/ipc.h>
#include <sys/mman.h>
#include <sys/shm.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/timerfd.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

static int fault;
static long round_;

static void bad(int code)
{
	if (!fault)
		fault = code;
}

static void report(void)
{
	char b[32];
	int fd = open("/counter", O_WRONLY | O_CREAT, 0644);
	if (fd < 0)
		return;
	snprintf(b, sizeof b, "%8ld %4d\n", round_, fault);
	if (pwrite(fd, b, strlen(b), 0) < 0)
		fault = fault ? fault : 999;
	close(fd);
}

/* threads: four threads count on their own; main checks each moved since the last look. */
#define NT 4
static atomic_long tcount[NT];

static void *counter_thread(void *a)
{
	long i = (long)a;
	for (;;) {
		tcount[i]++;
		usleep(5000);
	}
	return NULL;
}

/* mem: 200 MiB, every page stamped with its number. */
#define MEM (200L << 20)
static unsigned char *mem;

/* ghost: 1 MiB of a known pattern in a file deleted while open. */
#define GHOST (1 << 20)
static int ghost_fd;

static unsigned char pat(long i)
{
	return (unsigned char)(i * 7 + (i >> 8));
}

/* talk */
static int sp[2], fifo_w;
static pid_t peer;

/* fds */
static int efd, tfd, sfd, ifd;

/* shm */
static long *posix_shm, *sysv_shm;

/* children */
static pid_t zombie, stopped;

/* listen */
static int lsk;

/* ustream, udgram, hostfile, tmpfs, masked */
static int usk, hfd, tmpfd, maskfd;

static int unix_to(int type, const char *path)
{
	struct sockaddr_un a = {.sun_family = AF_UNIX};
	strncpy(a.sun_path, path, sizeof a.sun_path - 1);
	int s = socket(AF_UNIX, type, 0);
	if (s < 0 || connect(s, (void *)&a, sizeof a))
		bad(1);
	return s;
}

static char state_of(pid_t p)
{
	char path[64], b[256];
	snprintf(path, sizeof path, "/proc/%d/stat", p);
	int fd = open(path, O_RDONLY);
	if (fd < 0)
		return '?';
	ssize_t n = read(fd, b, sizeof b - 1);
	close(fd);
	if (n <= 0)
		return '?';
	b[n] = 0;
	char *q = strrchr(b, ')');
	return q && q[1] == ' ' ? q[2] : '?';
}

static void setup(const char *m)
{
	if (!strcmp(m, "threads")) {
		pthread_t t;
		for (long i = 0; i < NT; i++)
			pthread_create(&t, NULL, counter_thread, (void *)i);
	} else if (!strcmp(m, "talk")) {
		/* The peer reads a number from the fifo and answers twice it on the socketpair. */
		socketpair(AF_UNIX, SOCK_STREAM, 0, sp);
		mkfifo("/tmp/fifo", 0600);
		peer = fork();
		if (peer == 0) {
			int r = open("/tmp/fifo", O_RDONLY);
			close(sp[0]);
			long v;
			while (read(r, &v, sizeof v) == sizeof v) {
				v *= 2;
				if (write(sp[1], &v, sizeof v) != sizeof v)
					_exit(1);
			}
			_exit(0);
		}
		close(sp[1]);
		fifo_w = open("/tmp/fifo", O_WRONLY);
	} else if (!strcmp(m, "ghost")) {
		unsigned char *b = malloc(GHOST);
		for (long i = 0; i < GHOST; i++)
			b[i] = pat(i);
		ghost_fd = open("/tmp/ghost", O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (write(ghost_fd, b, GHOST) != GHOST)
			bad(1);
		unlink("/tmp/ghost");
		free(b);
	} else if (!strcmp(m, "locks")) {
		int f = open("/flocked", O_RDWR | O_CREAT, 0644);
		if (flock(f, LOCK_EX))
			bad(1);
		int p = open("/posix-locked", O_RDWR | O_CREAT, 0644);
		struct flock l = {.l_type = F_WRLCK, .l_whence = SEEK_SET, .l_start = 0, .l_len = 10};
		if (fcntl(p, F_SETLK, &l))
			bad(2);
	} else if (!strcmp(m, "fds")) {
		efd = eventfd(0, EFD_NONBLOCK);
		tfd = timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK);
		/* An hour's timer, still armed after the restore. A periodic timer that has expired
		 * and not been read shows it_value 0 in fdinfo, which CRIU 4.1.1 dumps and restores
		 * as is: disarmed (a read after the restore's pending ticks waits for ever). */
		struct itimerspec its = {.it_interval = {3600, 0}, .it_value = {3600, 0}};
		timerfd_settime(tfd, 0, &its, NULL);
		sigset_t s;
		sigemptyset(&s);
		sigaddset(&s, SIGUSR1);
		sigprocmask(SIG_BLOCK, &s, NULL);
		sfd = signalfd(-1, &s, SFD_NONBLOCK);
		mkdir("/tmp/watched", 0700);
		ifd = inotify_init1(IN_NONBLOCK);
		inotify_add_watch(ifd, "/tmp/watched", IN_CREATE);
		/* What the first round expects to find. */
		uint64_t one = 1;
		if (write(efd, &one, 8) != 8)
			bad(1);
		kill(getpid(), SIGUSR1);
		close(open("/tmp/watched/f0", O_CREAT | O_WRONLY, 0600));
	} else if (!strcmp(m, "shm")) {
		int f = open("/dev/shm/seg", O_RDWR | O_CREAT, 0600);
		if (ftruncate(f, 4096))
			bad(1);
		posix_shm = mmap(NULL, 4096, PROT_READ | PROT_WRITE, MAP_SHARED, f, 0);
		close(f);
		int id = shmget(IPC_PRIVATE, 4096, IPC_CREAT | 0600);
		sysv_shm = shmat(id, NULL, 0);
		if (posix_shm == MAP_FAILED || sysv_shm == (void *)-1)
			bad(2);
	} else if (!strcmp(m, "zombie")) {
		zombie = fork();
		if (zombie == 0)
			_exit(7);
		while (state_of(zombie) != 'Z')
			usleep(10000);
	} else if (!strcmp(m, "stopped")) {
		stopped = fork();
		if (stopped == 0) {
			for (;;)
				raise(SIGSTOP);
		}
		while (state_of(stopped) != 'T')
			usleep(10000);
	} else if (!strcmp(m, "mem")) {
		mem = mmap(NULL, MEM, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
		for (long p = 0; p < MEM / 4096; p++)
			memset(mem + p * 4096, pat(p), 4096);
	} else if (!strcmp(m, "listen")) {
		lsk = socket(AF_INET, SOCK_STREAM, 0);
		int one = 1;
		setsockopt(lsk, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
		struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(8080),
					.sin_addr.s_addr = htonl(INADDR_ANY)};
		if (bind(lsk, (void *)&a, sizeof a) || listen(lsk, 8))
			bad(1);
	} else if (!strcmp(m, "ustream")) {
		usk = unix_to(SOCK_STREAM, "/ext/stream.sock");
	} else if (!strcmp(m, "udgram")) {
		usk = unix_to(SOCK_DGRAM, "/ext/dgram.sock");
	} else if (!strcmp(m, "hostfile")) {
		/* Not O_APPEND: CRIU records the size of a file open without it, and checks it. */
		hfd = open("/ext/log", O_WRONLY);
		if (hfd < 0 || lseek(hfd, 0, SEEK_END) < 0)
			bad(1);
	} else if (!strcmp(m, "tmpfs")) {
		/* A file written and closed, and one held open. */
		int f = open("/data/seed", O_WRONLY | O_CREAT | O_TRUNC, 0644);
		if (f < 0 || write(f, "seed", 4) != 4)
			bad(1);
		close(f);
		tmpfd = open("/data/held", O_RDWR | O_CREAT | O_TRUNC, 0600);
		if (tmpfd < 0 || write(tmpfd, "held", 4) != 4)
			bad(2);
	} else if (!strcmp(m, "masked")) {
		maskfd = open("/proc/keys", O_RDONLY);
		if (maskfd < 0 || chdir("/ext/dir"))
			bad(1);
	} else {
		fprintf(stderr, "unknown mode %s\n", m);
		exit(2);
	}
}

static void check(const char *m)
{
	if (!strcmp(m, "threads")) {
		static long last[NT];
		for (int i = 0; i < NT; i++) {
			long c = tcount[i];
			/* A thread may be slow on a loaded machine: look every 20 rounds. */
			if (round_ % 20 == 0) {
				if (round_ > 0 && c <= last[i])
					bad(10 + i);
				last[i] = c;
			}
		}
	} else if (!strcmp(m, "talk")) {
		long v = round_, r;
		if (write(fifo_w, &v, sizeof v) != sizeof v)
			bad(1);
		if (read(sp[0], &r, sizeof r) != sizeof r || r != 2 * v)
			bad(2);
		if (state_of(peer) != 'S' && state_of(peer) != 'R')
			bad(3);
	} else if (!strcmp(m, "ghost")) {
		unsigned char b[4096];
		long off = (round_ * 4099) % (GHOST - 4096);
		if (pread(ghost_fd, b, sizeof b, off) != sizeof b)
			bad(1);
		for (int i = 0; i < 4096; i++)
			if (b[i] != pat(off + i)) {
				bad(2);
				break;
			}
		struct stat st;
		if (fstat(ghost_fd, &st) || st.st_size != GHOST || st.st_nlink != 0)
			bad(3);
	} else if (!strcmp(m, "fds")) {
		uint64_t v;
		/* Each round finds what the round before left: 1 in the eventfd, a SIGUSR1 in the
		 * signalfd, a creation in the inotify queue; and the timer stays armed. */
		if (read(efd, &v, 8) != 8 || v != 1)
			bad(1);
		struct signalfd_siginfo si;
		if (read(sfd, &si, sizeof si) != sizeof si || si.ssi_signo != SIGUSR1)
			bad(2);
		/* CRIU restores the watch but not the events queued at the dump (it does not dump
		 * them): one round may find none; two in a row is a fault. */
		static int missed;
		char ib[4096];
		ssize_t n = read(ifd, ib, sizeof ib);
		struct inotify_event *ev = (void *)ib;
		if (n < (ssize_t)sizeof *ev || !(ev->mask & IN_CREATE)) {
			if (++missed > 1)
				bad(3);
		} else {
			missed = 0;
		}
		struct itimerspec its;
		if (timerfd_gettime(tfd, &its) || its.it_value.tv_sec + its.it_value.tv_nsec == 0 ||
		    its.it_value.tv_sec >= 3600)
			bad(4);
		uint64_t one = 1;
		if (write(efd, &one, 8) != 8)
			bad(5);
		kill(getpid(), SIGUSR1);
		char name[64];
		snprintf(name, sizeof name, "/tmp/watched/f%ld", round_ % 2);
		unlink(name);
		snprintf(name, sizeof name, "/tmp/watched/f%ld", (round_ + 1) % 2);
		unlink(name);
		close(open(name, O_CREAT | O_WRONLY, 0600));
	} else if (!strcmp(m, "shm")) {
		/* Both segments hold the round they last saw; /dev/shm/seg is read back by path too. */
		if (posix_shm[0] != round_ || sysv_shm[0] != round_)
			bad(1);
		long v = -1;
		int f = open("/dev/shm/seg", O_RDONLY);
		if (f < 0 || pread(f, &v, sizeof v, 0) != sizeof v || v != round_)
			bad(2);
		close(f);
		posix_shm[0] = round_ + 1;
		sysv_shm[0] = round_ + 1;
	} else if (!strcmp(m, "zombie")) {
		if (state_of(zombie) != 'Z')
			bad(1);
	} else if (!strcmp(m, "stopped")) {
		if (state_of(stopped) != 'T')
			bad(2);
	} else if (!strcmp(m, "mem")) {
		for (int k = 0; k < 16; k++) {
			long p = (round_ * 16 + k) * 97 % (MEM / 4096);
			if (mem[p * 4096] != pat(p) || mem[p * 4096 + 4095] != pat(p)) {
				bad(1);
				break;
			}
		}
	} else if (!strcmp(m, "ustream")) {
		long v = round_, r = -1;
		if (write(usk, &v, sizeof v) != sizeof v)
			bad(2);
		if (read(usk, &r, sizeof r) != sizeof r || r != v)
			bad(3);
	} else if (!strcmp(m, "udgram")) {
		long v = round_;
		if (send(usk, &v, sizeof v, 0) != sizeof v)
			bad(2);
	} else if (!strcmp(m, "hostfile")) {
		char b[32];
		snprintf(b, sizeof b, "%8ld\n", round_);
		if (write(hfd, b, strlen(b)) != (ssize_t)strlen(b))
			bad(2);
	} else if (!strcmp(m, "tmpfs")) {
		char b[8] = {0};
		if (pread(tmpfd, b, 4, 0) != 4 || memcmp(b, "held", 4))
			bad(3);
		struct stat a, p;
		if (fstat(tmpfd, &a) || stat("/data/held", &p) || a.st_ino != p.st_ino)
			bad(4);
		if (access("/data/seed", F_OK))
			bad(5);
	} else if (!strcmp(m, "masked")) {
		char b[8], cwd[64];
		if (read(maskfd, b, sizeof b) != 0)
			bad(2);
		if (!getcwd(cwd, sizeof cwd) || strcmp(cwd, "/ext/dir") || access("in-dir", F_OK))
			bad(3);
	} else if (!strcmp(m, "listen")) {
		int acc = 0;
		socklen_t l = sizeof acc;
		if (getsockopt(lsk, SOL_SOCKET, SO_ACCEPTCONN, &acc, &l) || !acc)
			bad(1);
		/* Once the test asks (it makes /go after the restore), a connection through the
		 * restored listener and loopback. */
		if (access("/go", F_OK) == 0 && access("/went", F_OK) != 0) {
			int c = socket(AF_INET, SOCK_STREAM, 0);
			struct sockaddr_in a = {.sin_family = AF_INET, .sin_port = htons(8080),
						.sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
			if (connect(c, (void *)&a, sizeof a))
				bad(2);
			int s = accept(lsk, NULL, NULL);
			char x = 'x', y = 0;
			if (s < 0 || write(c, &x, 1) != 1 || read(s, &y, 1) != 1 || y != 'x')
				bad(3);
			close(s);
			close(c);
			close(open("/went", O_CREAT | O_WRONLY, 0644));
		}
	}
}

int main(int argc, char **argv)
{
	if (argc != 2)
		return 2;
	setup(argv[1]);
	for (;;) {
		check(argv[1]);
		report();
		round_++;
		usleep(50000);
	}
}
