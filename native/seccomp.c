/* The spec's linux.seccomp (an OCI seccomp profile) compiled to a classic BPF
 * program, with no libseccomp: the policy is the TypeScript side's (see
 * src/runtime/seccomp.ts); this file only translates it.
 *
 * The program checks the architecture first (a syscall made through another
 * ABI — i386 via int 0x80, x32, arm32 compat — would carry numbers the rules do
 * not mean, so it gets ENOSYS), then finds the syscall number in a binary search
 * tree over runs of syscall numbers with one outcome. Rules for one syscall are
 * tried in the profile's order; the first whose argument conditions all hold
 * decides. A number no rule names gets the default action, except numbers above
 * every syscall this binary knows: those are newer than the profile and get
 * ENOSYS, so that a C library falls back to an older call instead of failing. */
#include "runtime.h"
#include "syscall-names.h"
#include <errno.h>
#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#if defined(__x86_64__)
#define NATIVE_ARCH AUDIT_ARCH_X86_64
#define NATIVE_ARCH_NAME "SCMP_ARCH_X86_64"
#define X32_SYSCALL_BIT 0x40000000U
#elif defined(__aarch64__)
#define NATIVE_ARCH AUDIT_ARCH_AARCH64
#define NATIVE_ARCH_NAME "SCMP_ARCH_AARCH64"
#else
#error "vtc-runtime's seccomp support knows x86_64 and aarch64 only"
#endif

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i))
#define ARG_HI(i) (offsetof(struct seccomp_data, args) + 8 * (i) + 4)
#else
#define ARG_LO(i) (offsetof(struct seccomp_data, args) + 8 * (i) + 4)
#define ARG_HI(i) (offsetof(struct seccomp_data, args) + 8 * (i))
#endif

#define MAX_INSNS BPF_MAXINSNS

static int by_name(const void *key, const void *entry) {
  return strcmp(key, ((const struct syscall_name *)entry)->name);
}

static int syscall_number(const char *name) {
  const struct syscall_name *e = bsearch(name, syscall_names, sizeof syscall_names / sizeof syscall_names[0], sizeof syscall_names[0], by_name);
  return e ? e->nr : -1;
}

static int highest_known_syscall(void) {
  int max = 0;
  for (size_t i = 0; i < sizeof syscall_names / sizeof syscall_names[0]; i++)
    if (syscall_names[i].nr > max) max = syscall_names[i].nr;
  return max;
}

/* ---------- the program being written: instructions and forward labels ---------- */

typedef struct {
  struct sock_filter insns[MAX_INSNS];
  int len;
  int *label_at;     /* instruction index of each label, -1 until placed */
  int nlabels, cap_labels;
  struct { int insn, label; } fixups[MAX_INSNS];
  int nfixups;
} program;

static void emit(program *p, struct sock_filter insn) {
  if (p->len >= MAX_INSNS) die("seccomp", NULL, E2BIG, "the seccomp profile compiles to more than %d BPF instructions", MAX_INSNS);
  p->insns[p->len++] = insn;
}

static int new_label(program *p) {
  if (p->nlabels == p->cap_labels) {
    p->cap_labels = p->cap_labels ? 2 * p->cap_labels : 256;
    p->label_at = realloc(p->label_at, (size_t)p->cap_labels * sizeof *p->label_at);
    if (!p->label_at) die("seccomp", NULL, ENOMEM, "out of memory");
  }
  p->label_at[p->nlabels] = -1;
  return p->nlabels++;
}

static void place(program *p, int label) { p->label_at[label] = p->len; }

/* An unconditional jump: its 32-bit offset reaches anywhere ahead. */
static void jump(program *p, int label) {
  if (p->nfixups >= MAX_INSNS) die("seccomp", NULL, E2BIG, "seccomp profile too large");
  p->fixups[p->nfixups].insn = p->len;
  p->fixups[p->nfixups++].label = label;
  emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | BPF_JA, 0, 0, 0));
}

/* Conditional jumps only ever skip one instruction (8-bit offsets would not reach a label):
 * "if A op k goto label" is the compare followed by a jump the compare skips when false. */
static void jump_if(program *p, int op, uint32_t k, int label) {
  emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | op | BPF_K, k, 0, 1));
  jump(p, label);
}
static void jump_unless(program *p, int op, uint32_t k, int label) {
  emit(p, (struct sock_filter)BPF_JUMP(BPF_JMP | op | BPF_K, k, 1, 0));
  jump(p, label);
}
static void load(program *p, uint32_t offset) { emit(p, (struct sock_filter)BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offset)); }
static void ret(program *p, uint32_t action) { emit(p, (struct sock_filter)BPF_STMT(BPF_RET | BPF_K, action)); }

static void resolve(program *p) {
  for (int i = 0; i < p->nfixups; i++) {
    int at = p->label_at[p->fixups[i].label];
    if (at < 0) die("seccomp", NULL, EINVAL, "internal error: a label was never placed");
    p->insns[p->fixups[i].insn].k = (uint32_t)(at - p->fixups[i].insn - 1);
  }
}

/* ---------- the profile ---------- */

static uint32_t action_of(const char *name, const jval *errno_ret, const char *where) {
  if (!name) die("seccomp", where, EINVAL, "missing action");
  uint32_t data = errno_ret ? (uint32_t)errno_ret->num & SECCOMP_RET_DATA : EPERM;
  if (!strcmp(name, "SCMP_ACT_ALLOW")) return SECCOMP_RET_ALLOW;
  if (!strcmp(name, "SCMP_ACT_ERRNO")) return SECCOMP_RET_ERRNO | data;
  if (!strcmp(name, "SCMP_ACT_KILL") || !strcmp(name, "SCMP_ACT_KILL_THREAD")) return SECCOMP_RET_KILL_THREAD;
  if (!strcmp(name, "SCMP_ACT_KILL_PROCESS")) return SECCOMP_RET_KILL_PROCESS;
  if (!strcmp(name, "SCMP_ACT_TRAP")) return SECCOMP_RET_TRAP;
  if (!strcmp(name, "SCMP_ACT_LOG")) return SECCOMP_RET_LOG;
  if (!strcmp(name, "SCMP_ACT_TRACE")) return SECCOMP_RET_TRACE | (errno_ret ? data : 0);
  die("seccomp", where, ENOTSUP, "unsupported seccomp action %s", name);
}

/* One argument condition; control continues below it when the condition holds, goes to fail when not. */
static void condition(program *p, const jval *arg, int fail) {
  const jval *index = json_get(arg, "index"), *value = json_get(arg, "value");
  const char *op = json_str(arg, "op");
  if (!index || !value || !op || index->num < 0 || index->num > 5) die("seccomp", "args", EINVAL, "an argument condition needs index (0-5), value and op");
  int i = (int)index->num;
  uint64_t v = (uint64_t)value->num, v2 = (uint64_t)json_num(arg, "valueTwo", 0);
  uint32_t vhi = (uint32_t)(v >> 32), vlo = (uint32_t)v;
  int ok = new_label(p);
  if (!strcmp(op, "SCMP_CMP_EQ")) {
    load(p, ARG_HI(i)); jump_unless(p, BPF_JEQ, vhi, fail);
    load(p, ARG_LO(i)); jump_unless(p, BPF_JEQ, vlo, fail);
  } else if (!strcmp(op, "SCMP_CMP_NE")) {
    load(p, ARG_HI(i)); jump_unless(p, BPF_JEQ, vhi, ok);
    load(p, ARG_LO(i)); jump_if(p, BPF_JEQ, vlo, fail);
  } else if (!strcmp(op, "SCMP_CMP_MASKED_EQ")) {
    /* (arg & value) == valueTwo */
    load(p, ARG_HI(i)); emit(p, (struct sock_filter)BPF_STMT(BPF_ALU | BPF_AND | BPF_K, vhi)); jump_unless(p, BPF_JEQ, (uint32_t)(v2 >> 32), fail);
    load(p, ARG_LO(i)); emit(p, (struct sock_filter)BPF_STMT(BPF_ALU | BPF_AND | BPF_K, vlo)); jump_unless(p, BPF_JEQ, (uint32_t)v2, fail);
  } else if (!strcmp(op, "SCMP_CMP_GT") || !strcmp(op, "SCMP_CMP_GE")) {
    /* unsigned 64-bit: the high words decide unless they are equal */
    load(p, ARG_HI(i)); jump_if(p, BPF_JGT, vhi, ok); jump_unless(p, BPF_JEQ, vhi, fail);
    load(p, ARG_LO(i)); jump_unless(p, !strcmp(op, "SCMP_CMP_GT") ? BPF_JGT : BPF_JGE, vlo, fail);
  } else if (!strcmp(op, "SCMP_CMP_LT") || !strcmp(op, "SCMP_CMP_LE")) {
    load(p, ARG_HI(i)); jump_unless(p, BPF_JGE, vhi, ok); jump_if(p, BPF_JGT, vhi, fail);
    load(p, ARG_LO(i)); jump_if(p, !strcmp(op, "SCMP_CMP_LT") ? BPF_JGE : BPF_JGT, vlo, fail);
  } else {
    die("seccomp", "args", ENOTSUP, "unsupported argument comparison %s", op);
  }
  place(p, ok);
}

typedef struct { int nr; int *rules; int nrules; } syscall_rules;


/* The syscalls the profile names, each with the indexes of its rules in profile order, sorted by number. */
static syscall_rules *collect(const jval *syscalls, int *count) {
  int highest = highest_known_syscall();
  int *slot = malloc(((size_t)highest + 1) * sizeof *slot); /* number -> index in all, or -1 */
  syscall_rules *all = calloc((size_t)highest + 1, sizeof *all);
  if (!slot || !all) die("seccomp", NULL, ENOMEM, "out of memory");
  memset(slot, -1, ((size_t)highest + 1) * sizeof *slot);
  int n = 0, r = 0;
  for (const jval *rule = syscalls ? syscalls->child : NULL; rule; rule = rule->next, r++) {
    const jval *names = json_get(rule, "names");
    for (const jval *name = names ? names->child : NULL; name; name = name->next) {
      int nr = name->type == J_STR ? syscall_number(name->str) : -1;
      if (nr < 0) continue; /* not a syscall of this architecture (as libseccomp-based runtimes skip it) */
      if (slot[nr] < 0) { slot[nr] = n; all[n++] = (syscall_rules){ nr, NULL, 0 }; }
      syscall_rules *e = &all[slot[nr]];
      e->rules = realloc(e->rules, (size_t)(e->nrules + 1) * sizeof(int));
      e->rules[e->nrules++] = r;
    }
  }
  /* In number order, from the slot table (no sort needed). */
  syscall_rules *sorted = malloc(((size_t)n + 1) * sizeof *sorted);
  int k = 0;
  for (int nr = 0; nr <= highest; nr++)
    if (slot[nr] >= 0) sorted[k++] = all[slot[nr]];
  free(slot);
  free(all);
  *count = n;
  return sorted;
}

/* The syscall numbers as runs of equal outcome: [start, next start) all go to label. Most of the number
 * line is long runs of "allowed" and "default", so the search tree is small, and the program with it:
 * the kernel converts and JITs a filter at every install (twice per sandbox), at a cost that grows
 * with its length. */
typedef struct { uint32_t start; int label; } run;

/* A binary search over the runs' starts; A holds the number. */
static void search_runs(program *p, const run *runs, int lo, int hi) {
  if (hi - lo == 1) {
    jump(p, runs[lo].label);
    return;
  }
  int mid = lo + (hi - lo) / 2, right = new_label(p);
  jump_if(p, BPF_JGE, runs[mid].start, right);
  search_runs(p, runs, lo, mid);
  place(p, right);
  search_runs(p, runs, mid, hi);
}

/* One label per distinct unconditional action, shared by every syscall that ends in it. */
typedef struct { uint32_t action; int label; } shared_return;

static int return_label(program *p, shared_return *rets, int *nrets, uint32_t action) {
  for (int i = 0; i < *nrets; i++)
    if (rets[i].action == action) return rets[i].label;
  rets[*nrets] = (shared_return){ action, new_label(p) };
  return rets[(*nrets)++].label;
}

void seccomp_compile(const jval *profile, seccomp_program *out) {
  static program p;
  memset(&p, 0, sizeof p);
  const jval *arches = json_get(profile, "architectures");
  if (arches && arches->child) {
    bool listed = false;
    for (const jval *a = arches->child; a; a = a->next) listed |= a->type == J_STR && !strcmp(a->str, NATIVE_ARCH_NAME);
    if (!listed) die("seccomp", NULL, ENOTSUP, "the seccomp profile's architectures do not include this one (%s)", NATIVE_ARCH_NAME);
  }
  if (json_get(profile, "listenerPath")) die("seccomp", NULL, ENOTSUP, "seccomp notification (listenerPath) is not supported");
  uint32_t default_action = action_of(json_str(profile, "defaultAction"), json_get(profile, "defaultErrnoRet"), "defaultAction");
  const jval *syscalls = json_get(profile, "syscalls");
  int n;
  syscall_rules *s = collect(syscalls, &n);
  const jval **rule_at = calloc((size_t)json_len(syscalls) + 1, sizeof *rule_at);
  int r = 0;
  for (const jval *rule = syscalls ? syscalls->child : NULL; rule; rule = rule->next) rule_at[r++] = rule;

  /* Where each named syscall goes: a shared return when its first rule has no conditions, else a block of its own. */
  shared_return rets[64];
  int nrets = 0;
  int *target = calloc((size_t)n + 1, sizeof *target);
  bool *own_block = calloc((size_t)n + 1, sizeof *own_block);
  for (int i = 0; i < n; i++) {
    const jval *first = rule_at[s[i].rules[0]], *args = json_get(first, "args");
    if (!args || !args->child) {
      if (nrets == 63) die("seccomp", NULL, E2BIG, "the seccomp profile uses too many different actions");
      target[i] = return_label(&p, rets, &nrets, action_of(json_str(first, "action"), json_get(first, "errnoRet"), "syscalls[].action"));
    } else {
      target[i] = new_label(&p);
      own_block[i] = true;
    }
  }
  int unnamed = return_label(&p, rets, &nrets, default_action);
  int newer = return_label(&p, rets, &nrets, SECCOMP_RET_ERRNO | ENOSYS);

  /* Runs over 0..highest known, then one run of "newer than this binary knows". */
  uint32_t highest = (uint32_t)highest_known_syscall();
  run *runs = calloc((size_t)highest + 2, sizeof *runs);
  int nruns = 0, next_named = 0;
  for (uint32_t nr = 0; nr <= highest; nr++) {
    while (next_named < n && (uint32_t)s[next_named].nr < nr) next_named++;
    int label = next_named < n && (uint32_t)s[next_named].nr == nr ? target[next_named] : unnamed;
    if (!nruns || runs[nruns - 1].label != label) runs[nruns++] = (run){ nr, label };
  }
  runs[nruns++] = (run){ highest + 1, newer };

  load(&p, offsetof(struct seccomp_data, arch));
  jump_unless(&p, BPF_JEQ, NATIVE_ARCH, newer); /* another ABI's numbers mean other calls: ENOSYS */
  load(&p, offsetof(struct seccomp_data, nr));
#ifdef X32_SYSCALL_BIT
  jump_if(&p, BPF_JGE, X32_SYSCALL_BIT, newer);
#endif
  search_runs(&p, runs, 0, nruns);

  /* Syscalls with argument conditions: rules in profile order; later rules only see what earlier ones let through. */
  for (int i = 0; i < n; i++) {
    if (!own_block[i]) continue;
    place(&p, target[i]);
    bool decided = false;
    for (int k = 0; k < s[i].nrules && !decided; k++) {
      const jval *rule = rule_at[s[i].rules[k]];
      uint32_t action = action_of(json_str(rule, "action"), json_get(rule, "errnoRet"), "syscalls[].action");
      const jval *args = json_get(rule, "args");
      if (!args || !args->child) { ret(&p, action); decided = true; break; }
      int next = new_label(&p);
      for (const jval *arg = args->child; arg; arg = arg->next) condition(&p, arg, next);
      ret(&p, action);
      place(&p, next);
    }
    if (!decided) ret(&p, default_action);
  }
  for (int i = 0; i < nrets; i++) {
    place(&p, rets[i].label);
    ret(&p, rets[i].action);
  }
  resolve(&p);

  out->len = (unsigned short)p.len;
  out->insns = malloc((size_t)p.len * sizeof *out->insns);
  if (!out->insns) die("seccomp", NULL, ENOMEM, "out of memory");
  memcpy(out->insns, p.insns, (size_t)p.len * sizeof *out->insns);
  for (int i = 0; i < n; i++) free(s[i].rules);
  free(s);
  free(target);
  free(own_block);
  free(runs);
  free(rule_at);
  free(p.label_at);
}

void seccomp_install(const seccomp_program *prog) {
  struct sock_fprog fprog = { .len = prog->len, .filter = prog->insns };
  /* no_new_privs is set by the caller (apply_identity_and_caps) unless the process keeps CAP_SYS_ADMIN. */
  if (syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, 0, &fprog) < 0) die("seccomp", NULL, errno, "installing the seccomp filter");
}

void seccomp_save(const seccomp_program *prog, const char *path) {
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC | O_NOFOLLOW, 0600);
  if (fd < 0) die("seccomp", path, errno, "saving the compiled filter for exec");
  size_t n = (size_t)prog->len * sizeof *prog->insns;
  if (write(fd, prog->insns, n) != (ssize_t)n || close(fd) < 0) die("seccomp", path, errno, "saving the compiled filter for exec");
}

void seccomp_load_file(const char *path, seccomp_program *out) {
  int fd = open(path, O_RDONLY | O_CLOEXEC | O_NOFOLLOW);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) < 0) die("seccomp", path, errno, "reading the sandbox's compiled seccomp filter");
  if (st.st_size <= 0 || st.st_size % (off_t)sizeof(struct sock_filter) || st.st_size > (off_t)(MAX_INSNS * sizeof(struct sock_filter)))
    die("seccomp", path, EINVAL, "the compiled seccomp filter has a bad size");
  out->len = (unsigned short)(st.st_size / (off_t)sizeof(struct sock_filter));
  out->insns = malloc((size_t)st.st_size);
  if (!out->insns || read(fd, out->insns, (size_t)st.st_size) != st.st_size) die("seccomp", path, errno, "reading the compiled seccomp filter");
  close(fd);
}
