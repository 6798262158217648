/* A small JSON reader for the runtime spec. The spec is written by our own
 * TypeScript, but it is still parsed strictly: any syntax error is reported. */
#ifndef VTC_JSON_H
#define VTC_JSON_H
#include <stddef.h>
#include <stdbool.h>

typedef enum { J_NULL, J_BOOL, J_NUM, J_STR, J_ARR, J_OBJ } jtype;

typedef struct jval {
  jtype type;
  bool b;
  double num;
  char *str;            /* J_STR: value; object members: key */
  struct jval *child;   /* J_ARR / J_OBJ: first element */
  struct jval *next;    /* next sibling */
  char *key;            /* set on object members */
} jval;

/* Parses text (NUL-terminated). Returns NULL and fills err on failure. */
jval *json_parse(const char *text, char *err, size_t errlen);
jval *json_get(const jval *obj, const char *key);           /* NULL if absent */
const char *json_str(const jval *obj, const char *key);      /* NULL if absent or not a string */
bool json_bool(const jval *obj, const char *key, bool dflt);
double json_num(const jval *obj, const char *key, double dflt);
size_t json_len(const jval *arr);
#endif
