/* file.c — opening the files a user names, safely.
 *
 * Inputs are opened without blocking and must be regular files: a FIFO
 * given as a model or an image would otherwise wait for a writer for ever.
 *
 * Outputs are written to a new temporary file in the destination's folder,
 * created with O_EXCL (mkstemp) so that a link planted at its name is never
 * followed, checked at every write, fsync'd and renamed over the
 * destination: until the rename the old file stays whole. A destination
 * that is a symbolic link is resolved, so the link stays and its target is
 * replaced. A character device (/dev/null) or a FIFO with a reader is
 * written straight into, never replaced by a regular file. A temporary file
 * left by a process that was killed while saving is removed by the next
 * save of the same file. */
#define _DEFAULT_SOURCE
#define _POSIX_C_SOURCE 200809L
#include "internal.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static const char *kind_of(mode_t m)
{
    if (S_ISDIR(m)) return "a directory";
    if (S_ISFIFO(m)) return "a FIFO (named pipe)";
    if (S_ISCHR(m)) return "a character device";
    if (S_ISBLK(m)) return "a block device";
    if (S_ISSOCK(m)) return "a socket";
    return "not a regular file";
}

/* ------------------------------------------------------------------ inputs */

cnn_status cnn_open_input(const char *path, const char *what, int *fd_out, long long *size)
{
    *fd_out = -1;
    if (!path || !*path) return cnn_fail(CNN_ERR_ARG, "no %s given (empty path)", what);
    /* O_NONBLOCK: opening a FIFO for reading returns at once instead of
     * waiting for a writer; it is cleared again for a regular file */
    int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) return cnn_fail(CNN_ERR_IO, "%s: cannot open: %s", path, strerror(errno));
    struct stat sb;
    if (fstat(fd, &sb) != 0) {
        int e = errno;
        close(fd);
        return cnn_fail(CNN_ERR_IO, "%s: cannot stat: %s", path, strerror(e));
    }
    if (!S_ISREG(sb.st_mode)) {
        close(fd);
        if (S_ISDIR(sb.st_mode))
            return cnn_fail(CNN_ERR_IO, "%s: is a directory, not %s", path, what);
        return cnn_fail(CNN_ERR_IO, "%s: is %s, not a regular file: give %s", path,
                        kind_of(sb.st_mode), what);
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl < 0 || fcntl(fd, F_SETFL, fl & ~O_NONBLOCK) < 0) {
        int e = errno;
        close(fd);
        return cnn_fail(CNN_ERR_IO, "%s: cannot set up reading: %s", path, strerror(e));
    }
    if (size) *size = (long long)sb.st_size;
    *fd_out = fd;
    return CNN_OK;
}

cnn_status cnn_fopen_input(const char *path, const char *what, FILE **out, long long *size)
{
    *out = NULL;
    int fd;
    cnn_status st = cnn_open_input(path, what, &fd, size);
    if (st != CNN_OK) return st;
    FILE *f = fdopen(fd, "rb");
    if (!f) {
        close(fd);
        return cnn_fail(CNN_ERR_NOMEM, "%s: cannot set up reading", path);
    }
    *out = f;
    return CNN_OK;
}

cnn_status cnn_fopen_nonempty(const char *path, const char *what, FILE **out, long long *size)
{
    cnn_status st = cnn_fopen_input(path, what, out, size);
    if (st != CNN_OK || *size > 0) return st;
    fclose(*out);
    *out = NULL;
    return cnn_fail(CNN_ERR_FORMAT, "%s: empty file", path);
}

/* ----------------------------------------------------------------- outputs */

/* Where a write to `path` lands. *dest (malloc'd) is the path or, for a
 * symbolic link, the file it points to; *direct is set for a character
 * device or a FIFO, which are written in place; *mode is the mode to give
 * the new file (the old file's, else 0666 less the umask). */
static cnn_status resolve_dest(const char *path, char **dest, int *direct, mode_t *mode)
{
    *dest = NULL;
    *direct = 0;
    mode_t um = umask(0);
    umask(um);
    *mode = 0666 & ~um;
    if (!path || !*path) return cnn_fail(CNN_ERR_ARG, "no output file given (empty path)");
    size_t len = strlen(path);
    if (path[len - 1] == '/')
        return cnn_fail(CNN_ERR_IO, "%s: is a folder name; give a file name", path);
    struct stat sb;
    if (lstat(path, &sb) != 0) {
        if (errno != ENOENT)
            return cnn_fail(CNN_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
        *dest = strdup(path);
        return *dest ? CNN_OK : cnn_fail(CNN_ERR_NOMEM, "out of memory");
    }
    if (S_ISLNK(sb.st_mode)) {
        char *target = realpath(path, NULL);
        if (!target)
            return cnn_fail(CNN_ERR_IO,
                            "%s: is a symbolic link whose target cannot be reached (%s); remove "
                            "it or give another name",
                            path, strerror(errno));
        if (stat(target, &sb) != 0) {
            int e = errno;
            free(target);
            return cnn_fail(CNN_ERR_IO, "%s: cannot write: %s", path, strerror(e));
        }
        *dest = target;
    } else {
        *dest = strdup(path);
        if (!*dest) return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    }
    if (S_ISREG(sb.st_mode)) {
        *mode = sb.st_mode & 07777;
        return CNN_OK;
    }
    if (S_ISCHR(sb.st_mode) || S_ISFIFO(sb.st_mode)) {
        *direct = 1;
        return CNN_OK;
    }
    free(*dest);
    *dest = NULL;
    if (S_ISDIR(sb.st_mode))
        return cnn_fail(CNN_ERR_IO, "%s: is a directory; give a file name", path);
    return cnn_fail(CNN_ERR_IO, "%s: is %s; give a file name", path, kind_of(sb.st_mode));
}

/* A device or FIFO, opened for writing without waiting: a FIFO nobody
 * reads fails at once (ENXIO) instead of blocking. */
static cnn_status open_direct(const char *path, const char *dest, int *fd_out)
{
    int fd = open(dest, O_WRONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        if (errno == ENXIO)
            return cnn_fail(CNN_ERR_IO, "%s: is a FIFO that no process reads", path);
        return cnn_fail(CNN_ERR_IO, "%s: cannot write: %s", path, strerror(errno));
    }
    int fl = fcntl(fd, F_GETFL);
    if (fl >= 0) (void)fcntl(fd, F_SETFL, fl & ~O_NONBLOCK);
    *fd_out = fd;
    return CNN_OK;
}

/* The folder part of `path` ("." for a bare name), malloc'd. */
static char *folder_of(const char *path)
{
    const char *slash = strrchr(path, '/');
    if (!slash) return strdup(".");
    if (slash == path) return strdup("/");
    return strndup(path, (size_t)(slash - path));
}

/* Why a file cannot be created in the folder of `path`. */
static cnn_status create_error(const char *path, int err)
{
    char *dir = folder_of(path);
    cnn_status st;
    if (err == ENOENT || err == ENOTDIR)
        st = cnn_fail(CNN_ERR_IO, "%s: cannot write: the folder '%s' does not exist", path,
                      dir ? dir : "?");
    else
        st = cnn_fail(CNN_ERR_IO, "%s: cannot create a file in '%s': %s", path, dir ? dir : "?",
                      strerror(err));
    free(dir);
    return st;
}

/* Remove "<base>.tmp.<pid>" and "<base>.tmp.<pid>.XXXXXX" files next to
 * dest whose process no longer exists: what a save killed half-way left. */
static void remove_stale_temps(const char *dest)
{
    char *dir = folder_of(dest);
    if (!dir) return;
    const char *slash = strrchr(dest, '/');
    const char *base = slash ? slash + 1 : dest;
    size_t blen = strlen(base);
    DIR *d = opendir(dir);
    if (!d) {
        free(dir);
        return;
    }
    struct dirent *e;
    while ((e = readdir(d)) != NULL) {
        const char *n = e->d_name;
        if (strncmp(n, base, blen) != 0 || strncmp(n + blen, ".tmp.", 5) != 0) continue;
        const char *p = n + blen + 5;
        char *end;
        errno = 0;
        long pid = strtol(p, &end, 10);
        if (end == p || errno || pid <= 0 || pid > INT_MAX) continue;
        if (*end && !(end[0] == '.' && strlen(end + 1) == 6)) continue;
        if ((pid_t)pid == getpid()) continue;
        if (kill((pid_t)pid, 0) == 0 || errno != ESRCH) continue; /* alive, or not ours to know */
        size_t plen = strlen(dir) + 1 + strlen(n) + 1;
        char *full = malloc(plen);
        if (!full) break;
        snprintf(full, plen, "%s/%s", dir, n);
        struct stat sb;
        if (lstat(full, &sb) == 0 && S_ISREG(sb.st_mode)) (void)unlink(full);
        free(full);
    }
    closedir(d);
    free(dir);
}

/* mkstemp's template for dest: "<dest>.tmp.<pid>.XXXXXX". */
static char *temp_template(const char *dest)
{
    size_t len = strlen(dest) + 40;
    char *t = malloc(len);
    if (t) snprintf(t, len, "%s.tmp.%ld.XXXXXX", dest, (long)getpid());
    return t;
}

cnn_status cnn_out_open(cnn_outfile *o, const char *path)
{
    memset(o, 0, sizeof *o);
    int direct;
    mode_t mode;
    cnn_status st = resolve_dest(path, &o->dest, &direct, &mode);
    if (st != CNN_OK) return st;
    o->shown = strdup(path);
    if (!o->shown) {
        cnn_out_abort(o);
        return cnn_fail(CNN_ERR_NOMEM, "out of memory");
    }
    int fd;
    if (direct) {
        if ((st = open_direct(path, o->dest, &fd)) != CNN_OK) {
            cnn_out_abort(o);
            return st;
        }
    } else {
        remove_stale_temps(o->dest);
        o->tmp = temp_template(o->dest);
        if (!o->tmp) {
            cnn_out_abort(o);
            return cnn_fail(CNN_ERR_NOMEM, "out of memory");
        }
        fd = mkstemp(o->tmp);
        if (fd < 0) {
            st = create_error(path, errno);
            free(o->tmp);
            o->tmp = NULL;
            cnn_out_abort(o);
            return st;
        }
        (void)fcntl(fd, F_SETFD, FD_CLOEXEC);
        /* mkstemp makes 0600; the file gets the mode a plain create (or
         * the old file) would have. Failing that, 0600 is still usable. */
        (void)fchmod(fd, mode);
    }
    o->f = fdopen(fd, "wb");
    if (!o->f) {
        close(fd);
        cnn_out_abort(o);
        return cnn_fail(CNN_ERR_NOMEM, "%s: cannot set up writing", path);
    }
    return CNN_OK;
}

void cnn_out_abort(cnn_outfile *o)
{
    if (o->f) fclose(o->f);
    if (o->tmp) unlink(o->tmp);
    free(o->tmp);
    free(o->dest);
    free(o->shown);
    memset(o, 0, sizeof *o);
}

/* After the rename, make the directory entry durable too. Some file systems
 * refuse fsync on a directory; the file itself is complete then, so that
 * is not an error. */
static void fsync_folder(const char *path)
{
    char *dir = folder_of(path);
    if (!dir) return;
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (fd >= 0) {
        (void)fsync(fd);
        close(fd);
    }
    free(dir);
}

cnn_status cnn_out_commit(cnn_outfile *o)
{
    if (!o->f) return cnn_fail(CNN_ERR_ARG, "cnn_out_commit: the file is not open");
    const char *doing = NULL;
    int err = 0;
    /* a write error is sticky in the stream; errno still holds its cause
     * unless something since has failed differently */
    if (ferror(o->f)) {
        doing = "write failed";
        err = errno ? errno : EIO;
    } else if (fflush(o->f) != 0) {
        doing = "write failed";
        err = errno;
    } else if (o->tmp && fsync(fileno(o->f)) != 0) {
        doing = "fsync failed";
        err = errno;
    }
    int cerr = fclose(o->f);
    o->f = NULL;
    if (!doing && cerr != 0) {
        doing = "close failed";
        err = errno;
    }
    if (!doing && o->tmp && rename(o->tmp, o->dest) != 0) {
        doing = "cannot rename the temporary file over it";
        err = errno;
    }
    cnn_status st = CNN_OK;
    if (doing) {
        st = cnn_fail(CNN_ERR_IO, "%s: %s: %s%s", o->shown, doing, strerror(err ? err : EIO),
                      o->tmp ? " (the previous file, if any, is unchanged)" : "");
    } else if (o->tmp) {
        fsync_folder(o->dest);
        free(o->tmp); /* renamed: nothing to remove */
        o->tmp = NULL;
    }
    cnn_out_abort(o);
    return st;
}

cnn_status cnn_out_write(cnn_outfile *o, const char *path, const void *data, size_t len)
{
    cnn_status st = cnn_out_open(o, path);
    if (st != CNN_OK) return st;
    /* a short write leaves the stream's error flag set: commit reports it */
    if (len) (void)fwrite(data, 1, len, o->f);
    return cnn_out_commit(o);
}

cnn_status cnn_check_writable(const char *path)
{
    char *dest;
    int direct;
    mode_t mode;
    cnn_status st = resolve_dest(path, &dest, &direct, &mode);
    if (st != CNN_OK) return st;
    int fd;
    if (direct) {
        st = open_direct(path, dest, &fd);
        if (st == CNN_OK) close(fd);
    } else {
        /* the one sure test: create a file where the temporary will go */
        char *t = temp_template(dest);
        if (!t) {
            st = cnn_fail(CNN_ERR_NOMEM, "out of memory");
        } else if ((fd = mkstemp(t)) < 0) {
            st = create_error(path, errno);
        } else {
            close(fd);
            unlink(t);
        }
        free(t);
    }
    free(dest);
    return st;
}
