/* The spawner: starts `vtc-runtime <args>` processes for a Node process with
 * posix_spawn, which does not copy the caller's memory (Node's own spawn forks
 * the whole Node process: 3-5 ms in a test worker). Requests are argument
 * lists, one per line, tab-separated.
 *
 *   vtc-runtime spawner
 *     reads requests on stdin; ends at end-of-file (its Node process is gone).
 *   vtc-runtime spawner --listen PATH --owner PID
 *     shared by the worker processes of one test run: reads requests from every
 *     connection to the unix socket PATH, and ends when process PID (the test
 *     runner) does. Says "ready" or "taken" (another spawner serves PATH) on
 *     stdout, then lets go of stdout and stderr, so that it never holds the pipes
 *     of the worker that started it.
 *
 * What it started lives on either way, each tied to its own connection to its caller. */
#include "runtime.h"
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/syscall.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>

extern char **environ;

#define MAX_LINE (1 << 20)
#define MAX_CLIENTS 256

typedef struct {
  int fd;
  char *buf;
  size_t used;
} client;

static char self[4096];
static posix_spawnattr_t attr;

static void spawn_line(char *line) {
  char *argv[64];
  int argc = 0;
  argv[argc++] = self;
  for (char *tok = line, *next; tok && argc < 63; tok = next) {
    next = strchr(tok, '\t');
    if (next) *next++ = 0;
    argv[argc++] = tok;
  }
  argv[argc] = NULL;
  pid_t pid;
  int err = posix_spawn(&pid, self, NULL, &attr, argv, environ);
  if (err) fprintf(stderr, "vtc-runtime spawner: posix_spawn: %s\n", strerror(err));
}

/* Reads what fd has; spawns every complete line. False at end-of-file or error. */
static bool read_requests(client *c) {
  ssize_t n = read(c->fd, c->buf + c->used, MAX_LINE - 1 - c->used);
  if (n < 0 && errno == EINTR) return true;
  if (n <= 0) return false;
  c->used += (size_t)n;
  char *start = c->buf, *nl;
  while ((nl = memchr(start, '\n', c->used - (size_t)(start - c->buf)))) {
    *nl = 0;
    spawn_line(start);
    start = nl + 1;
  }
  c->used -= (size_t)(start - c->buf);
  memmove(c->buf, start, c->used);
  if (c->used == MAX_LINE - 1) c->used = 0; /* a line longer than the buffer: drop it */
  return true;
}

static void setup(int *sfd) {
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len < 0) die("spawner", "/proc/self/exe", errno, "readlink");
  self[len] = 0;
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  *sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (*sfd < 0) die("spawner", NULL, errno, "signalfd");
  posix_spawnattr_init(&attr);
  sigset_t none;
  sigemptyset(&none);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK);
}

static void reap(int sfd) {
  struct signalfd_siginfo si;
  while (read(sfd, &si, sizeof si) == sizeof si) {}
  while (waitpid(-1, NULL, WNOHANG) > 0) {}
}

static int serve_stdin(void) {
  int sfd;
  setup(&sfd);
  client in = { 0, malloc(MAX_LINE), 0 };
  if (!in.buf) die("spawner", NULL, ENOMEM, "malloc");
  struct pollfd pfd[2] = { { 0, POLLIN, 0 }, { sfd, POLLIN, 0 } };
  for (;;) {
    if (poll(pfd, 2, -1) < 0) { if (errno == EINTR) continue; break; }
    if (pfd[1].revents) reap(sfd);
    if (pfd[0].revents && !read_requests(&in)) break;
  }
  return 0;
}

/* Only processes of our own user may ask (the socket's directory is ours alone too). */
static bool same_user(int fd) {
  struct ucred cred;
  socklen_t len = sizeof cred;
  return getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) == 0 && cred.uid == getuid();
}

static void say(const char *word) {
  if (write(1, word, strlen(word)) < 0) {}
  int null = open("/dev/null", O_RDWR | O_CLOEXEC);
  if (null >= 0) {
    dup2(null, 1);
    dup2(null, 2);
    close(null);
  }
}

static int serve_socket(const char *path, pid_t owner) {
  struct sockaddr_un addr = { .sun_family = AF_UNIX };
  if (strlen(path) + 6 >= sizeof addr.sun_path) die("spawner", path, ENAMETOOLONG, "socket path");
  int owner_fd = (int)syscall(SYS_pidfd_open, owner, 0);
  if (owner_fd < 0) { say("taken\n"); return 0; } /* the run is over already */
  /* One spawner per path: whoever holds the lock serves it; a socket file without one is stale. */
  char lock[sizeof addr.sun_path + 8];
  snprintf(lock, sizeof lock, "%s.lock", path);
  int lock_fd = open(lock, O_CREAT | O_RDWR | O_CLOEXEC, 0600);
  if (lock_fd < 0) die("spawner", lock, errno, "lock file");
  if (flock(lock_fd, LOCK_EX | LOCK_NB) < 0) { say("taken\n"); return 0; }
  strcpy(addr.sun_path, path);
  unlink(path);
  int lfd = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (lfd < 0 || bind(lfd, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(lfd, 64) < 0) die("spawner", path, errno, "listening");
  int sfd;
  setup(&sfd);
  say("ready\n");

  static client clients[MAX_CLIENTS];
  struct pollfd pfd[3 + MAX_CLIENTS];
  int nclients = 0;
  for (;;) {
    pfd[0] = (struct pollfd){ lfd, POLLIN, 0 };
    pfd[1] = (struct pollfd){ sfd, POLLIN, 0 };
    pfd[2] = (struct pollfd){ owner_fd, POLLIN, 0 };
    for (int i = 0; i < nclients; i++) pfd[3 + i] = (struct pollfd){ clients[i].fd, POLLIN, 0 };
    if (poll(pfd, (nfds_t)(3 + nclients), -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (pfd[2].revents) break; /* the test run is over */
    if (pfd[1].revents) reap(sfd);
    for (int i = nclients - 1; i >= 0; i--) {
      if (!pfd[3 + i].revents || read_requests(&clients[i])) continue;
      close(clients[i].fd);
      free(clients[i].buf);
      clients[i] = clients[--nclients];
    }
    if (pfd[0].revents) {
      int fd;
      while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
        char *buf = nclients < MAX_CLIENTS && same_user(fd) ? malloc(MAX_LINE) : NULL;
        if (!buf) { close(fd); continue; }
        clients[nclients++] = (client){ fd, buf, 0 };
      }
    }
  }
  unlink(path);
  unlink(lock);
  return 0;
}

int cmd_spawner(const char *listen_path, pid_t owner) {
  return listen_path ? serve_socket(listen_path, owner) : serve_stdin();
}
