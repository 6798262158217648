#include "json.h"
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { const char *p; char *err; size_t errlen; } parser;

/* Parsed values live as long as the process (a spec is read once, at start): they come from a bump
 * arena, zeroed, instead of one calloc each (a seccomp profile has hundreds of strings). */
static void *xcalloc(size_t n, size_t s) {
  static char *arena;
  static size_t left;
  size_t size = (n * s + 15) & ~(size_t)15;
  if (size > left) {
    size_t chunk = size > 65536 ? size : 65536;
    arena = malloc(chunk);
    if (!arena) { perror("malloc"); exit(125); }
    left = chunk;
  }
  void *p = memset(arena, 0, size);
  arena += size;
  left -= size;
  return p;
}

static void fail(parser *ps, const char *what) {
  if (ps->err[0] == 0) snprintf(ps->err, ps->errlen, "invalid JSON: %s near '%.20s'", what, ps->p);
}

static void skip_ws(parser *ps) {
  while (*ps->p == ' ' || *ps->p == '\n' || *ps->p == '\r' || *ps->p == '\t') ps->p++;
}

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

static void put_utf8(char **o, unsigned cp) {
  char *q = *o;
  if (cp < 0x80) *q++ = (char)cp;
  else if (cp < 0x800) { *q++ = (char)(0xC0 | (cp >> 6)); *q++ = (char)(0x80 | (cp & 0x3F)); }
  else if (cp < 0x10000) { *q++ = (char)(0xE0 | (cp >> 12)); *q++ = (char)(0x80 | ((cp >> 6) & 0x3F)); *q++ = (char)(0x80 | (cp & 0x3F)); }
  else { *q++ = (char)(0xF0 | (cp >> 18)); *q++ = (char)(0x80 | ((cp >> 12) & 0x3F)); *q++ = (char)(0x80 | ((cp >> 6) & 0x3F)); *q++ = (char)(0x80 | (cp & 0x3F)); }
  *o = q;
}

static char *parse_string(parser *ps) {
  if (*ps->p != '"') { fail(ps, "expected string"); return NULL; }
  ps->p++;
  const char *start = ps->p;
  size_t n = 0;
  while (start[n] && start[n] != '"') { if (start[n] == '\\' && start[n + 1]) n++; n++; }
  char *out = xcalloc(n + 1, 1), *o = out;
  while (*ps->p && *ps->p != '"') {
    char c = *ps->p++;
    if ((unsigned char)c < 0x20) { fail(ps, "control character in string"); return NULL; }
    if (c != '\\') { *o++ = c; continue; }
    c = *ps->p++;
    switch (c) {
      case '"': *o++ = '"'; break;
      case '\\': *o++ = '\\'; break;
      case '/': *o++ = '/'; break;
      case 'b': *o++ = '\b'; break;
      case 'f': *o++ = '\f'; break;
      case 'n': *o++ = '\n'; break;
      case 'r': *o++ = '\r'; break;
      case 't': *o++ = '\t'; break;
      case 'u': {
        unsigned cp = 0;
        for (int i = 0; i < 4; i++) {
          int h = hexval(*ps->p++);
          if (h < 0) { fail(ps, "bad \\u escape"); return NULL; }
          cp = cp * 16 + (unsigned)h;
        }
        if (cp >= 0xD800 && cp < 0xDC00 && ps->p[0] == '\\' && ps->p[1] == 'u') {
          unsigned lo = 0; const char *q = ps->p + 2; int ok = 1;
          for (int i = 0; i < 4; i++) { int h = hexval(q[i]); if (h < 0) { ok = 0; break; } lo = lo * 16 + (unsigned)h; }
          if (ok && lo >= 0xDC00 && lo < 0xE000) { cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00); ps->p += 6; }
        }
        if (cp == 0) { fail(ps, "NUL in string"); return NULL; }
        put_utf8(&o, cp);
        break;
      }
      default: fail(ps, "bad escape"); return NULL;
    }
  }
  if (*ps->p != '"') { fail(ps, "unterminated string"); return NULL; }
  ps->p++;
  *o = 0;
  return out;
}

static jval *parse_value(parser *ps, int depth);

static jval *parse_container(parser *ps, int depth, bool object) {
  jval *v = xcalloc(1, sizeof *v);
  v->type = object ? J_OBJ : J_ARR;
  ps->p++;
  skip_ws(ps);
  char close = object ? '}' : ']';
  if (*ps->p == close) { ps->p++; return v; }
  jval **tail = &v->child;
  for (;;) {
    skip_ws(ps);
    char *key = NULL;
    if (object) {
      key = parse_string(ps);
      if (!key) return NULL;
      skip_ws(ps);
      if (*ps->p != ':') { fail(ps, "expected ':'"); return NULL; }
      ps->p++;
    }
    jval *item = parse_value(ps, depth + 1);
    if (!item) return NULL;
    item->key = key;
    *tail = item;
    tail = &item->next;
    skip_ws(ps);
    if (*ps->p == ',') { ps->p++; continue; }
    if (*ps->p == close) { ps->p++; return v; }
    fail(ps, object ? "expected ',' or '}'" : "expected ',' or ']'");
    return NULL;
  }
}

static jval *parse_value(parser *ps, int depth) {
  if (depth > 64) { fail(ps, "nesting too deep"); return NULL; }
  skip_ws(ps);
  char c = *ps->p;
  if (c == '{' || c == '[') return parse_container(ps, depth, c == '{');
  jval *v = xcalloc(1, sizeof *v);
  if (c == '"') { v->type = J_STR; v->str = parse_string(ps); return v->str ? v : NULL; }
  if (!strncmp(ps->p, "true", 4)) { v->type = J_BOOL; v->b = true; ps->p += 4; return v; }
  if (!strncmp(ps->p, "false", 5)) { v->type = J_BOOL; ps->p += 5; return v; }
  if (!strncmp(ps->p, "null", 4)) { v->type = J_NULL; ps->p += 4; return v; }
  if (c == '-' || (c >= '0' && c <= '9')) {
    char *end;
    v->type = J_NUM;
    v->num = strtod(ps->p, &end);
    ps->p = end;
    return v;
  }
  fail(ps, "unexpected character");
  return NULL;
}

jval *json_parse(const char *text, char *err, size_t errlen) {
  parser ps = { text, err, errlen };
  err[0] = 0;
  jval *v = parse_value(&ps, 0);
  if (!v) return NULL;
  skip_ws(&ps);
  if (*ps.p) { fail(&ps, "trailing data"); return NULL; }
  return v;
}

jval *json_get(const jval *obj, const char *key) {
  if (!obj || obj->type != J_OBJ) return NULL;
  for (jval *c = obj->child; c; c = c->next)
    if (!strcmp(c->key, key)) return c;
  return NULL;
}

const char *json_str(const jval *obj, const char *key) {
  jval *v = json_get(obj, key);
  return v && v->type == J_STR ? v->str : NULL;
}

bool json_bool(const jval *obj, const char *key, bool dflt) {
  jval *v = json_get(obj, key);
  return v && v->type == J_BOOL ? v->b : dflt;
}

double json_num(const jval *obj, const char *key, double dflt) {
  jval *v = json_get(obj, key);
  return v && v->type == J_NUM ? v->num : dflt;
}

size_t json_len(const jval *arr) {
  size_t n = 0;
  if (arr && (arr->type == J_ARR || arr->type == J_OBJ))
    for (jval *c = arr->child; c; c = c->next) n++;
  return n;
}
