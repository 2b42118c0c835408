/* fuzz_cli_common.h — what the targets of the `cnn` program's own code
 * (src/cli, compiled into them) share:
 *  - its messages captured: stdout and stderr are memory streams while a
 *    call runs, so a target can check what was printed (and where);
 *  - a guard around the calls that must neither touch a file nor end the
 *    process: open, fopen, stat, realpath, ... (the link wraps them:
 *    -Wl,--wrap, see CMakeLists.txt) and exit() abort the run while it is
 *    up. */
#ifndef CNN_FUZZ_CLI_COMMON_H
#define CNN_FUZZ_CLI_COMMON_H

#include "fuzz_common.h"

#include <dirent.h>
#include <fcntl.h>
#include <stdarg.h>
#include <sys/stat.h>

static int fz_guard;          /* a call that must not touch a file or exit is running */
static const char *fz_call;   /* which one, for the report */
static int fz_capturing;
static FILE *fz_real_out, *fz_real_err;
static char *fz_out, *fz_err;  /* what the last captured call printed */
static size_t fz_out_len, fz_err_len;

static void fz_end(void);

/* A broken promise: the report goes to the real stderr, with what the
 * call printed. */
static void fz_fail(const char *fmt, ...) __attribute__((format(printf, 1, 2), noreturn));
static void fz_fail(const char *fmt, ...)
{
    if (fz_capturing) fz_end();
    fz_guard = 0;
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "fuzz harness: ");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n  stdout: %.2000s\n  stderr: %.2000s\n", fz_out ? fz_out : "",
            fz_err ? fz_err : "");
    abort();
}

/* Capture stdout and stderr; with guard set, also forbid files and exit. */
static void fz_begin(const char *call, int guard)
{
    free(fz_out);
    free(fz_err);
    fz_out = fz_err = NULL;
    fz_out_len = fz_err_len = 0;
    fflush(stdout);
    fflush(stderr);
    fz_real_out = stdout;
    fz_real_err = stderr;
    FILE *o = open_memstream(&fz_out, &fz_out_len), *e = open_memstream(&fz_err, &fz_err_len);
    if (!o || !e) fuzz_die("open_memstream failed");
    stdout = o;
    stderr = e;
    fz_capturing = 1;
    fz_call = call;
    fz_guard = guard;
}

static void fz_end(void)
{
    fz_guard = 0;
    if (!fz_capturing) return;
    fz_capturing = 0;
    fclose(stdout);
    fclose(stderr);
    stdout = fz_real_out;
    stderr = fz_real_err;
    if (!fz_out || !fz_err) fuzz_die("a memory stream lost its text");
}

static int fz_starts(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

static int fz_ends(const char *s, const char *suffix)
{
    size_t n = strlen(s), m = strlen(suffix);
    return n >= m && strcmp(s + n - m, suffix) == 0;
}

/* ------------------------------------------------ no files, no exit() */

/* libFuzzer's own files: the input it saves when a run crashes, leaks,
 * runs out of memory or time (its alarm handler runs inside a guarded
 * call); their names begin so. */
static int fz_fuzzer_artifact(const char *path)
{
    static const char *const kinds[] = {"crash-", "leak-", "oom-", "timeout-", "slow-unit-"};
    const char *base = path ? strrchr(path, '/') : NULL;
    base = base ? base + 1 : path;
    for (size_t i = 0; base && i < sizeof kinds / sizeof *kinds; i++)
        if (fz_starts(base, kinds[i])) return 1;
    return 0;
}

static void fz_touched(const char *fn, const char *path)
{
    if (fz_guard && !fz_fuzzer_artifact(path)) fz_fail("%s called %s(\"%.200s\"): it must not touch files", fz_call, fn,
                          path ? path : "");
}

static void fz_on_exit(void)
{
    if (fz_guard) {
        static const char msg[] = "fuzz harness: exit() called while a guarded call ran\n";
        if (write(2, msg, sizeof msg - 1)) {}
        abort();
    }
}

/* The wrapped functions (the link sends every call of f to __wrap_f). */
#define FZ_WRAP(ret, f, params, args, path)                                                       \
    ret __real_##f params;                                                                      \
    ret __wrap_##f params;                                                                      \
    ret __wrap_##f params                                                                       \
    {                                                                                           \
        fz_touched(#f, path);                                                                   \
        return __real_##f args;                                                                 \
    }
FZ_WRAP(FILE *, fopen, (const char *p, const char *m), (p, m), p)
FZ_WRAP(FILE *, fopen64, (const char *p, const char *m), (p, m), p)
FZ_WRAP(FILE *, freopen, (const char *p, const char *m, FILE *f), (p, m, f), p)
FZ_WRAP(int, stat, (const char *p, struct stat *b), (p, b), p)
FZ_WRAP(int, lstat, (const char *p, struct stat *b), (p, b), p)
FZ_WRAP(int, access, (const char *p, int m), (p, m), p)
FZ_WRAP(char *, realpath, (const char *p, char *r), (p, r), p)
FZ_WRAP(DIR *, opendir, (const char *p), (p), p)
FZ_WRAP(int, mkdir, (const char *p, mode_t m), (p, m), p)
FZ_WRAP(int, unlink, (const char *p), (p), p)
FZ_WRAP(int, remove, (const char *p), (p), p)
FZ_WRAP(int, rename, (const char *a, const char *b), (a, b), a)
FZ_WRAP(int, creat, (const char *p, mode_t m), (p, m), p)

/* The mode argument of open and openat: given only when they may create
 * a file. */
static mode_t fz_open_mode(int flags, va_list ap)
{
    return flags & (O_CREAT | O_TMPFILE) ? (mode_t)va_arg(ap, int) : 0;
}

int __real_open(const char *p, int flags, ...);
int __wrap_open(const char *p, int flags, ...);
int __wrap_open(const char *p, int flags, ...)
{
    fz_touched("open", p);
    va_list ap;
    va_start(ap, flags);
    mode_t mode = fz_open_mode(flags, ap);
    va_end(ap);
    return __real_open(p, flags, mode);
}

int __real_openat(int dir, const char *p, int flags, ...);
int __wrap_openat(int dir, const char *p, int flags, ...);
int __wrap_openat(int dir, const char *p, int flags, ...)
{
    fz_touched("openat", p);
    va_list ap;
    va_start(ap, flags);
    mode_t mode = fz_open_mode(flags, ap);
    va_end(ap);
    return __real_openat(dir, p, flags, mode);
}

static void fz_install_guards(void)
{
    if (atexit(fz_on_exit) != 0) fuzz_die("atexit failed");
}

#endif
