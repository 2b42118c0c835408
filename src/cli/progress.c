/* progress.c — the per-epoch progress bar on a terminal (images/s, running
 * loss, ETA), redrawn in place at most ten times a second. When stderr is
 * not a terminal nothing is drawn: the caller prints one line per epoch. */
#include "cli/cli.h"

#include <time.h>
#include <unistd.h>

double cli_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

void cli_progress_start(cli_progress *p, int epoch, int epochs, long total)
{
    p->tty = isatty(fileno(stderr));
    p->epoch = epoch;
    p->epochs = epochs;
    p->total = total;
    p->done = 0;
    p->t0 = cli_now();
    p->last_draw = 0;
    p->loss_sum = 0;
    p->loss_n = 0;
}

static void draw(cli_progress *p, double now)
{
    const int width = 28;
    double el = now - p->t0;
    double rate = el > 0 ? (double)p->done / el : 0;
    double eta = rate > 0 ? (double)(p->total - p->done) / rate : 0;
    int fill = p->total ? (int)((double)width * p->done / p->total) : width;
    char bar[32];
    for (int i = 0; i < width; i++) bar[i] = i < fill ? '=' : (i == fill ? '>' : ' ');
    bar[width] = '\0';
    fprintf(stderr, "\repoch %d/%d [%s] %ld/%ld  %.0f img/s  loss %.4f  ETA %.0fs \x1b[K", p->epoch,
            p->epochs, bar, p->done, p->total, rate, p->loss_n ? p->loss_sum / p->loss_n : 0.0, eta);
    fflush(stderr);
    p->last_draw = now;
}

void cli_progress_update(cli_progress *p, long done, double loss_sum, long loss_n)
{
    p->done = done;
    p->loss_sum = loss_sum;
    p->loss_n = loss_n;
    if (!p->tty) return;
    double now = cli_now();
    if (now - p->last_draw >= 0.1 || done == p->total) draw(p, now);
}

void cli_progress_end(cli_progress *p)
{
    if (!p->tty) return;
    fprintf(stderr, "\r\x1b[K");
    fflush(stderr);
}
