/* Port forwarding from host loopback into the sandbox's network namespace.
 *
 * The monitor opens the listening sockets on 127.0.0.1 before clone(), in the
 * host's network namespace; pid 1 inherits them. A socket stays in the
 * namespace it was made in, so pid 1 can accept host connections and, for
 * each, connect a new socket (made inside the sandbox) to 127.0.0.1:port
 * there. No setns, no extra process, nothing on the host's network config,
 * and the same code with or without a user namespace. */
#include "runtime.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#define ANNOTATION_PORTS "org.vitest-container.ports"
#define MAX_PORTS 64
#define BUF_SIZE (64 * 1024)

typedef struct { int fd; int container_port; int host_port; } listener;
static listener listeners[MAX_PORTS];
static int nlisteners;

/* One direction of a relayed connection: bytes read from `from`, buffered, written to `to`. */
typedef struct half {
  int from, to;
  char *buf;
  size_t len, off;
  bool eof;      /* `from` said EOF: shut down writing on `to` once the buffer is empty */
  bool shut;
} half;

typedef struct conn conn;

/* The epoll tag of one of a connection's two sockets, so an event says which one is ready. */
typedef struct end {
  int kind;      /* must be first: the epoll tag kind */
  conn *c;
  int fd;
  uint32_t armed; /* the events epoll currently watches on fd */
} end;

struct conn {
  bool connecting;
  half up, down; /* up: client → sandbox; down: sandbox → client */
  end client, upstream;
};

enum { TAG_LISTENER = 1, TAG_END = 2 };
typedef struct { int kind; listener *l; } listener_tag;
static listener_tag listener_tags[MAX_PORTS];

void forward_listen(const jval *cfg) {
  const char *spec = json_str(json_get(cfg, "annotations"), ANNOTATION_PORTS);
  if (!spec || !*spec) return;
  char *copy = strdup(spec);
  for (char *tok = strtok(copy, ","); tok; tok = strtok(NULL, ",")) {
    if (nlisteners == MAX_PORTS) die("ports", NULL, E2BIG, "at most %d forwarded ports", MAX_PORTS);
    /* "containerPort" or "hostPort:containerPort" */
    int host_port = 0, container_port;
    char *colon = strchr(tok, ':');
    if (colon) { host_port = atoi(tok); container_port = atoi(colon + 1); }
    else container_port = atoi(tok);
    if (container_port <= 0 || container_port > 65535 || host_port < 0 || host_port > 65535)
      die("ports", tok, EINVAL, "bad port");
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    if (fd < 0) die("ports", tok, errno, "socket");
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)host_port) };
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(fd, (struct sockaddr *)&addr, sizeof addr) < 0) die("ports", tok, errno, "binding 127.0.0.1:%d", host_port);
    if (listen(fd, 512) < 0) die("ports", tok, errno, "listen");
    socklen_t len = sizeof addr;
    getsockname(fd, (struct sockaddr *)&addr, &len);
    listeners[nlisteners] = (listener){ fd, container_port, ntohs(addr.sin_port) };
    nlisteners++;
    report_event("port", ",\"port\":%d,\"hostPort\":%d", container_port, ntohs(addr.sin_port));
  }
  free(copy);
}

/* The monitor keeps no copy: the listeners close when pid 1 (and the sandbox) ends. */
void forward_close_listeners(void) {
  for (int i = 0; i < nlisteners; i++) close(listeners[i].fd);
}

int forward_fds(int *out, int max) {
  int n = 0;
  for (int i = 0; i < nlisteners && n < max; i++) out[n++] = listeners[i].fd;
  return n;
}

void forward_register(int epfd) {
  for (int i = 0; i < nlisteners; i++) {
    listener_tags[i] = (listener_tag){ TAG_LISTENER, &listeners[i] };
    struct epoll_event ev = { .events = EPOLLIN, .data.ptr = &listener_tags[i] };
    if (epoll_ctl(epfd, EPOLL_CTL_ADD, listeners[i].fd, &ev) < 0) die("ports", NULL, errno, "epoll_ctl");
  }
}

static void conn_close(int epfd, conn *c) {
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->client.fd, NULL);
  epoll_ctl(epfd, EPOLL_CTL_DEL, c->upstream.fd, NULL);
  close(c->client.fd);
  close(c->upstream.fd);
  free(c->up.buf);
  free(c->down.buf);
  free(c);
}

static void arm(int epfd, end *e, uint32_t events) {
  if (e->armed == events) return; /* epoll_ctl only when the interest really changes */
  struct epoll_event ev = { .events = events, .data.ptr = e };
  epoll_ctl(epfd, EPOLL_CTL_MOD, e->fd, &ev);
  e->armed = events;
}

static void conn_watch(int epfd, conn *c) {
  if (c->connecting) {
    arm(epfd, &c->client, 0);
    arm(epfd, &c->upstream, EPOLLOUT);
    return;
  }
  /* Read only when there is room; write only when there is something to write. */
  arm(epfd, &c->client, (!c->up.eof && c->up.len == 0 ? EPOLLIN : 0) | (c->down.len ? EPOLLOUT : 0));
  arm(epfd, &c->upstream, (!c->down.eof && c->down.len == 0 ? EPOLLIN : 0) | (c->up.len ? EPOLLOUT : 0));
}

static void accept_one(int epfd, listener *l) {
  for (;;) {
    int client = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
    if (client < 0) return; /* EAGAIN or a transient error: wait for the next event */
    /* Made here, so it belongs to the sandbox's network namespace. */
    int up = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (up < 0) { close(client); continue; }
    int one = 1;
    setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    setsockopt(up, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    struct sockaddr_in addr = { .sin_family = AF_INET, .sin_port = htons((uint16_t)l->container_port) };
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    int r = connect(up, (struct sockaddr *)&addr, sizeof addr);
    if (r < 0 && errno != EINPROGRESS) { close(up); close(client); continue; }
    conn *c = calloc(1, sizeof *c);
    char *b1 = malloc(BUF_SIZE), *b2 = malloc(BUF_SIZE);
    if (!c || !b1 || !b2) { free(c); free(b1); free(b2); close(up); close(client); continue; }
    *c = (conn){ .connecting = r < 0,
                 .up = { .from = client, .to = up, .buf = b1 }, .down = { .from = up, .to = client, .buf = b2 } };
    c->client = (end){ TAG_END, c, client, 0 };
    c->upstream = (end){ TAG_END, c, up, 0 };
    struct epoll_event a = { .events = 0, .data.ptr = &c->client }, b = { .events = 0, .data.ptr = &c->upstream };
    epoll_ctl(epfd, EPOLL_CTL_ADD, client, &a);
    epoll_ctl(epfd, EPOLL_CTL_ADD, up, &b);
    conn_watch(epfd, c);
  }
}

/* Reads once into an empty buffer. Returns false when the connection is broken. */
static bool fill(half *h) {
  if (h->len || h->eof) return true;
  ssize_t n = read(h->from, h->buf, BUF_SIZE);
  if (n > 0) { h->len = (size_t)n; h->off = 0; }
  else if (n == 0) h->eof = true;
  else if (errno != EAGAIN && errno != EINTR) return false;
  return true;
}

/* Writes what is buffered; passes an EOF on once the buffer is empty. Returns false when broken. */
static bool flush(half *h) {
  while (h->len) {
    ssize_t n = send(h->to, h->buf + h->off, h->len, MSG_NOSIGNAL);
    if (n < 0) return errno == EAGAIN || errno == EINTR;
    h->off += (size_t)n;
    h->len -= (size_t)n;
  }
  if (h->eof && !h->shut) { shutdown(h->to, SHUT_WR); h->shut = true; }
  return true;
}

void forward_event(int epfd, void *tag, uint32_t events) {
  if (*(int *)tag == TAG_LISTENER) { accept_one(epfd, ((listener_tag *)tag)->l); return; }
  end *e = tag;
  conn *c = e->c;
  bool is_client = e == &c->client;
  if (c->connecting) {
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c->upstream.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    /* Nothing listens in the sandbox (yet): close, as docker-proxy does, so the client sees a reset. */
    if (err) { conn_close(epfd, c); return; }
    c->connecting = false;
    conn_watch(epfd, c);
    return;
  }
  /* Only the ready socket's directions: readable feeds its outgoing half, writable drains its incoming one. */
  half *out = is_client ? &c->up : &c->down, *in = is_client ? &c->down : &c->up;
  bool alive = true;
  if (events & (EPOLLIN | EPOLLHUP | EPOLLERR)) alive = fill(out) && flush(out);
  if (alive && (events & EPOLLOUT)) alive = flush(in);
  /* Both directions done, or the socket reset: nothing more can move. */
  if (!alive || (c->up.shut && c->down.shut) || (events & EPOLLERR)) { conn_close(epfd, c); return; }
  conn_watch(epfd, c);
}
