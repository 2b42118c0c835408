/* error.c — the thread-local "last error" message behind cnn_errmsg(). */
#include "internal.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>

static _Thread_local char g_msg[1024];

const char *cnn_errmsg(void) { return g_msg; }

cnn_status cnn_fail(cnn_status code, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(g_msg, sizeof g_msg, fmt, ap);
    va_end(ap);
    return code;
}

cnn_status cnn_fail_prefix(cnn_status code, const char *fmt, ...)
{
    char prefix[512], old[sizeof g_msg];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(prefix, sizeof prefix, fmt, ap);
    va_end(ap);
    memcpy(old, g_msg, sizeof old);
    /* prefix + ": " + old, cut to fit (the end of a long message matters least) */
    size_t n = strlen(prefix);
    memcpy(g_msg, prefix, n);
    if (n + 2 < sizeof g_msg) {
        memcpy(g_msg + n, ": ", 2);
        n += 2;
        size_t rest = strlen(old);
        if (rest > sizeof g_msg - 1 - n) rest = sizeof g_msg - 1 - n;
        memcpy(g_msg + n, old, rest);
        n += rest;
    }
    g_msg[n] = '\0';
    return code;
}

const char *cnn_status_name(cnn_status s)
{
    switch (s) {
    case CNN_OK: return "ok";
    case CNN_ERR_ARG: return "bad argument";
    case CNN_ERR_PARSE: return "parse error";
    case CNN_ERR_IO: return "I/O error";
    case CNN_ERR_FORMAT: return "bad file format";
    case CNN_ERR_NOMEM: return "out of memory";
    case CNN_ERR_NUMERIC: return "numeric fault";
    case CNN_ERR_INTERRUPTED: return "interrupted";
    }
    return "unknown error";
}
