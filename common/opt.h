/* Option tables: a command-line option declared once (name, type, field,
 * range, default, help) drives parsing, defaults, --help and the argv that
 * hands the same setting to another process (joust run -> its workers).
 * The judges declare theirs in worker/judge.c, the `joust` command its own
 * in tools/cli.c; this part knows neither.
 *
 *   static const joust_opt tab[] = {
 *       {"slots", JOUST_OPT_INT, offsetof(my_opts, slots), .min = 1, .max = 65536,
 *        .dflt = "32", .arg = "N", .help = "matches a worker holds at once"},
 *   };
 *   joust_opt_defaults(tab, n, &o);
 *   joust_opt_set(&tab[0], &o, "64", err, sizeof err);   // from getopt
 *   joust_opt_to_argv(&tab[0], &o, &argv);                // "--slots" "64"
 *
 * A field is addressed by its offset in a caller's struct (obj): STR and
 * CHOICE are `const char *` (borrowed from argv or the table), LIST an
 * inline `const char *[max_count]` with an `int` count at count_offset,
 * INT/FLAG/UNFLAG `int`, U32 `uint32_t`, U64 `uint64_t`, LL `long long`,
 * DOUBLE `double`. Integers are checked against [min, max] (max 0: the
 * type's own bound), doubles against [min, max] unless both are 0 (any
 * finite value; max may be HUGE_VAL). Strings are never copied.
 * Errors: 0 or JOUST_EINVAL with a reason naming the option in err.
 * Threads: no state; tables are read-only. */
#ifndef JOUST_OPT_H
#define JOUST_OPT_H
#include <stddef.h>
#include <stdio.h>

typedef enum {
    JOUST_OPT_STR = 1, /* any text */
    JOUST_OPT_CHOICE,  /* one of .choices ("a|b|c") */
    JOUST_OPT_LIST,    /* repeatable text, up to .max_count */
    JOUST_OPT_INT,
    JOUST_OPT_U32,
    JOUST_OPT_U64,
    JOUST_OPT_LL,
    JOUST_OPT_DOUBLE,  /* finite */
    JOUST_OPT_FLAG,    /* no value: sets the int to 1 */
    JOUST_OPT_UNFLAG   /* no value: sets the int to 0 (--no-...) */
} joust_opt_type;

/* flags */
#define JOUST_OPT_REQUIRED 1u /* must be set (non-NULL / count > 0) */
#define JOUST_OPT_LOCAL 2u    /* never passed on in argv */

typedef struct {
    const char *name;      /* long option without "--" */
    joust_opt_type type;
    size_t offset;         /* of the field in obj */
    size_t count_offset;   /* LIST: of its int count */
    int max_count;         /* LIST: capacity */
    double min, max;       /* numbers: accepted range */
    const char *dflt;      /* default as text, parsed like a value; NULL: 0 / NULL */
    const char *choices;   /* CHOICE: "a|b|c" */
    const char *arg;       /* placeholder in --help, e.g. "N" */
    const char *help;      /* help text; '\n' starts a continuation line */
    unsigned flags;
    unsigned mask;         /* free for the caller (e.g. which commands show it) */
} joust_opt;

/* Sets every field of the table to its default. */
void joust_opt_defaults(const joust_opt *tab, size_t n, void *obj);

/* Parses val (NULL for FLAG/UNFLAG) into o's field of obj. A LIST appends.
 * @return 0 or JOUST_EINVAL (the reason, naming --name, is in err). */
int joust_opt_set(const joust_opt *o, void *obj, const char *val, char *err, size_t errlen);

/* The option of that name in tab, or NULL. */
const joust_opt *joust_opt_find(const joust_opt *tab, size_t n, const char *name);

/* Checks REQUIRED options. @return 0 or JOUST_EINVAL with err naming the
 * first one missing; what names the owner ("judge openai"). */
int joust_opt_check(const joust_opt *tab, size_t n, const void *obj, const char *what, char *err,
                    size_t errlen);

/* A growing argv whose strings it owns (NULL-terminated at all times). */
typedef struct {
    char **v;
    size_t n, cap;
} joust_argv;

void joust_argv_add(joust_argv *a, const char *s); /* copies s */
void joust_argv_free(joust_argv *a);

/* Appends "--name value" for o's field of obj so that parsing the result
 * sets the same value (numbers round-trip exactly): every LIST entry, a
 * FLAG/UNFLAG only when it differs from its default, STR/CHOICE only when
 * set. LOCAL options append nothing. */
void joust_opt_to_argv(const joust_opt *o, const void *obj, joust_argv *a);

/* Prints one help line per option of tab whose mask has a bit of mask (all
 * when mask is 0): "  --name ARG   help (default X)". */
void joust_opt_help(const joust_opt *tab, size_t n, unsigned mask, FILE *f);

#endif
