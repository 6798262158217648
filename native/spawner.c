/* The spawner: starts `vtc-runtime <args>` processes for a Node process with
 * posix_spawn, which does not copy the caller's memory (Node's own spawn forks
 * the whole Node process: 3-5 ms in a test worker). Requests are argument
 * lists, one per line, tab-separated; each gets one reply line, in order: "ok",
 * or "err <errno>" when the process could not be started (so the caller fails at
 * once instead of waiting for a connection that never comes).
 *
 *   vtc-runtime spawner
 *     requests on stdin, replies on stdout; ends at end-of-file (its Node process is gone).
 *   vtc-runtime spawner --listen PATH --owner PID
 *     shared by the worker processes of one test run: serves every connection to the
 *     unix socket PATH (greeting each with "hello", or "full" before closing it), and
 *     ends when process PID (the test runner) does. Says "ready" or "taken" (another
 *     spawner serves PATH) on stdout, then lets go of stdout and stderr, so that it
 *     never holds the pipes of the worker that started it. Only processes of its own
 *     user, mount and user namespace are served: never a sandbox that could reach PATH.
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
  int fd;       /* requests come in here */
  int reply_fd; /* and their replies go out here */
  char *buf;
  size_t used;
  bool discarding; /* inside a line too long for the buffer: dropped up to its newline */
} client;

static char self[4096];
static posix_spawnattr_t attr;

/* The reply to one request: "ok", or "err <errno>". */
static void answer(int reply_fd, int err) {
  char reply[32];
  int n = err ? snprintf(reply, sizeof reply, "err %d\n", err) : snprintf(reply, sizeof reply, "ok\n");
  if (write(reply_fd, reply, (size_t)n) < 0) {} /* a caller that is gone needs no answer */
}

static void spawn_line(char *line, int reply_fd) {
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
  answer(reply_fd, argc >= 63 ? E2BIG : posix_spawn(&pid, self, NULL, &attr, argv, environ));
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
    if (c->discarding) {
      c->discarding = false;
      answer(c->reply_fd, E2BIG);
    } else {
      spawn_line(start, c->reply_fd);
    }
    start = nl + 1;
  }
  c->used -= (size_t)(start - c->buf);
  memmove(c->buf, start, c->used);
  if (c->used == MAX_LINE - 1) { /* a line longer than the buffer: none of it is run */
    c->used = 0;
    c->discarding = true;
  }
  return true;
}

/* stop_signals: also take SIGTERM, SIGINT and SIGHUP through the signalfd (so that the shared
 * spawner, ended by one, still removes its socket). */
static void setup(int *sfd, bool stop_signals) {
  ssize_t len = readlink("/proc/self/exe", self, sizeof self - 1);
  if (len < 0) die("spawner", "/proc/self/exe", errno, "readlink");
  self[len] = 0;
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  if (stop_signals) {
    sigaddset(&chld, SIGTERM);
    sigaddset(&chld, SIGINT);
    sigaddset(&chld, SIGHUP);
  }
  sigprocmask(SIG_BLOCK, &chld, NULL);
  *sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (*sfd < 0) die("spawner", NULL, errno, "signalfd");
  /* A caller gone before its reply must not end us; what we start gets the default back. */
  signal(SIGPIPE, SIG_IGN);
  posix_spawnattr_init(&attr);
  sigset_t none, pipe;
  sigemptyset(&none);
  sigemptyset(&pipe);
  sigaddset(&pipe, SIGPIPE);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setsigdefault(&attr, &pipe);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF);
}

/* Reaps what ended; true when a stop signal came. */
static bool reap(int sfd) {
  struct signalfd_siginfo si;
  bool stop = false;
  while (read(sfd, &si, sizeof si) == sizeof si) stop |= si.ssi_signo != SIGCHLD;
  while (waitpid(-1, NULL, WNOHANG) > 0) {}
  return stop;
}

static int serve_stdin(void) {
  int sfd;
  setup(&sfd, false);
  client in = { 0, 1, malloc(MAX_LINE), 0, false };
  if (!in.buf) die("spawner", NULL, ENOMEM, "malloc");
  struct pollfd pfd[2] = { { 0, POLLIN, 0 }, { sfd, POLLIN, 0 } };
  for (;;) {
    if (poll(pfd, 2, -1) < 0) { if (errno == EINTR) continue; break; }
    if (pfd[1].revents) reap(sfd);
    if (pfd[0].revents && !read_requests(&in)) break;
  }
  return 0;
}

/* Our own user, in our own user and mount namespaces: a test worker, never a sandbox. */
static bool trusted_peer(int fd) {
  struct ucred cred;
  socklen_t len = sizeof cred;
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) < 0 || cred.uid != getuid()) return false;
  return same_namespace(cred.pid, 0, "user") && same_namespace(cred.pid, 0, "mnt");
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
  setup(&sfd, true);
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
    if (pfd[1].revents && reap(sfd)) break;
    for (int i = nclients - 1; i >= 0; i--) {
      if (!pfd[3 + i].revents || read_requests(&clients[i])) continue;
      close(clients[i].fd);
      free(clients[i].buf);
      clients[i] = clients[--nclients];
    }
    if (pfd[0].revents) {
      int fd;
      while ((fd = accept4(lfd, NULL, NULL, SOCK_CLOEXEC)) >= 0) {
        if (!trusted_peer(fd)) { close(fd); continue; }
        char *buf = nclients < MAX_CLIENTS ? malloc(MAX_LINE) : NULL;
        if (!buf || write(fd, "hello\n", 6) != 6) {
          if (write(fd, "full\n", 5) < 0) {}
          free(buf);
          close(fd);
          continue;
        }
        clients[nclients++] = (client){ fd, fd, buf, 0, false };
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
