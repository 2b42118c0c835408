/* fuzz_checkpoint.c — `cnn train --resume` on hostile checkpoints: the
 * steps of its resume path (src/cli/train.c), in its order, up to the
 * point where it would read the data set and train.
 *
 * Every input is used twice:
 *  1. as a checkpoint file (written to a memfd, loaded with cnn_model_load,
 *     as --resume does);
 *  2. as a metadata table: lines "key=value" ("\n" in a value is a line
 *     break, so "arch" can hold an architecture), put into a model built
 *     from that "arch" (or a fixed one); lines that begin with "--" are
 *     arguments given next to --resume ("--epochs=8"). This reaches the
 *     field checks without a valid safetensors file around them; and the
 *     state reader alone reads the table too (see state_alone).
 * The run is resumed on a training file of TRAIN_IMAGES images (the
 * checkpoint's options give its shape: --limit, --val, --batch).
 *
 * Checks. A refusal exits 1 naming the checkpoint and the field's key
 * (train.opt.*, train.out.*, train.epoch, ..., norm_mean, norm_std,
 * classes), or exits 2 naming an option only when the command line gave
 * it; the state reader's message starts with the key. An accepted state
 * keeps every promise of cli_ckpt_state_read (epoch and step in range,
 * seen = the images of the steps done, correct <= seen, a finite loss sum,
 * one history row per finished epoch with values in range and validation
 * columns exactly when the run has a validation set, finite wall times, a
 * non-zero RNG state); the normalisation is finite and the class names
 * fit the model. And what the resumed run records (its options and state,
 * as the next checkpoint holds them) resumes again to the same options and
 * the same state, and records the same text. None of these calls may print
 * on stdout, touch a file or exit. */
#include "fuzz_cli_common.h"

#include "cli/checkpoint.h"
#include "cli/train.h"

#include <math.h>

#define TRAIN_IMAGES 60000 /* the training file of the resumed run (MNIST's size) */
#define TABLE_NAME "table.ckpt"
#define DEFAULT_ARCH "input 1x28x28\nflatten\ndense 10\nsoftmax\n"
#define MAX_ARCH 1024
#define MAX_ENTRIES 256
#define MAX_EXTRA 16

static fuzz_file in_file;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    cnn_set_threads(1);
    fz_install_guards();
    return 0;
}

static const char *meta_get(const void *ctx, const char *key)
{
    return cnn_model_get_meta((const cnn_model *)ctx, key);
}

static int meta_set(void *ctx, const char *key, const char *value)
{
    if (!value) {
        cnn_model_unset_meta(ctx, key);
        return 0;
    }
    return cnn_model_set_meta(ctx, key, value) == CNN_OK ? 0 : -1;
}

/* ------------------------------------------------------ a resumed run */

typedef struct {
    train_cfg c;
    const char *mem_limit;
    cli_opt opts[TRAIN_NOPTS + 1];
    opt_source src;
    run_choices x;
    cli_ckpt_run run;
    cli_ckpt_state st;
    cli_norm nm;
    cli_classes names;
} resumed;

static void resumed_free(resumed *r)
{
    for (int i = 0; i < TRAIN_MAX_OPTS; i++) {
        free(r->src.owned[i]);
        free(r->src.recorded[i]);
    }
    cli_ckpt_state_free(&r->st);
    cli_classes_free(&r->names);
}

/* The option a usage error is about ("cnn train: --lr 0.5 conflicts ...",
 * "cnn train: --momentum: needs ..."), which the command line must have
 * given: a checkpoint's values are reported as the checkpoint's. */
static void check_usage_names_given(const resumed *r, const char *stage)
{
    const char *p = fz_err + strlen("cnn train: ");
    if (!fz_starts(fz_err, "cnn train: --")) fz_fail("%s: a usage error that names no option", stage);
    p += 2;
    size_t n = strcspn(p, " :=");
    for (int i = 0; r->opts[i].name; i++)
        if (strlen(r->opts[i].name) == n && strncmp(r->opts[i].name, p, n) == 0) {
            if (!r->src.cmdline[i])
                fz_fail("%s: a usage error about --%s, which the command line did not give", stage,
                        r->opts[i].name);
            return;
        }
    fz_fail("%s: a usage error about an unknown option", stage);
}

/* A stage refused: exit 1 with "cnn train: ..." naming the checkpoint and
 * one of the keys, or exit 2 about an option of the command line. */
static void check_refusal(const resumed *r, const char *stage, int rc, const char *name,
                          const char *const *keys)
{
    if (fz_out_len) fz_fail("%s printed on stdout", stage);
    if (rc == CLI_EUSAGE) {
        if (!fz_ends(fz_err, "\nTry 'cnn train --help'.\n"))
            fz_fail("%s: exit 2 without a usage message", stage);
        check_usage_names_given(r, stage);
        return;
    }
    if (rc != CLI_EDATA) fz_fail("%s returned %d (not 1 or 2)", stage, rc);
    if (!fz_starts(fz_err, "cnn train: ") || !fz_ends(fz_err, "\n"))
        fz_fail("%s: exit 1 without a message", stage);
    if (strstr(fz_err, "out of memory")) return;
    if (name && !strstr(fz_err, name)) fz_fail("%s: the message does not name the checkpoint", stage);
    for (int i = 0; keys[i]; i++)
        if (strstr(fz_err, keys[i])) return;
    fz_fail("%s: the message names no field (%s...)", stage, keys[0]);
}

static const char *const OPT_KEYS[] = {"train.opt.", "train.out.", NULL};
static const char *const RUN_KEYS[] = {"train.opt.", NULL};
static const char *const NORM_KEYS[] = {"norm_mean", "norm_std", NULL};
static const char *const CLASS_KEYS[] = {"'classes'", NULL};

/* Every promise of an accepted state. */
static void check_state(const cli_ckpt_state *st, const cli_ckpt_run *run)
{
    if (st->epoch < 0 || st->epoch > run->epochs || st->step < 0 || st->step > run->steps ||
        (st->epoch == run->epochs && st->step != 0))
        fz_fail("accepted epoch %d step %d of a run of %d epochs of %d steps", st->epoch, st->step,
                run->epochs, run->steps);
    long long images = (long long)st->step * run->batch;
    if (images > run->ntrain) images = run->ntrain;
    if (st->seen != images || st->correct < 0 || st->correct > st->seen)
        fz_fail("accepted seen %ld correct %ld after %d steps of %d of %d images", st->seen,
                st->correct, st->step, run->batch, run->ntrain);
    if (!isfinite(st->loss_sum) || st->loss_sum < 0 || (st->seen == 0 && st->loss_sum != 0))
        fz_fail("accepted loss sum %g over %ld images", st->loss_sum, st->seen);
    if (!(st->epoch_rng.s[0] | st->epoch_rng.s[1] | st->epoch_rng.s[2] | st->epoch_rng.s[3]))
        fz_fail("accepted an all-zero RNG state");
    if (!isfinite(st->epoch_seconds) || st->epoch_seconds < 0)
        fz_fail("accepted epoch seconds %g", st->epoch_seconds);
    if (st->nrows != st->epoch || (st->nrows > 0 && !st->rows))
        fz_fail("accepted %d history rows for %d finished epochs", st->nrows, st->epoch);
    for (int i = 0; i < st->nrows; i++) {
        const cli_epoch_row *w = &st->rows[i];
        int val_ok = run->has_val ? isfinite(w->val_loss) && w->val_loss >= 0 && w->val_acc >= 0 &&
                                        w->val_acc <= 100
                                  : isnan(w->val_loss) && isnan(w->val_acc);
        if (w->epoch != i + 1 || !isfinite(w->lr) || w->lr < 0 || w->lr > 100 ||
            w->lr != (double)(float)w->lr || !isfinite(w->train_loss) || w->train_loss < 0 ||
            !(w->train_acc >= 0 && w->train_acc <= 100) || !val_ok || !isfinite(w->seconds) ||
            w->seconds < 0)
            fz_fail("accepted history row %d: epoch %d lr %g loss %g acc %g val %g/%g, %g s", i + 1,
                    w->epoch, w->lr, w->train_loss, w->train_acc, w->val_loss, w->val_acc, w->seconds);
    }
    /* a run that stops early trains no epoch past the stop */
    if (run->early_stop > 0) {
        cli_ckpt_state part = *st;
        for (part.nrows = 1; part.nrows < st->nrows; part.nrows++)
            if (cli_ckpt_stops_early(&part, run->early_stop))
                fz_fail("accepted %d epochs, but --early-stop %d stops after epoch %d", st->nrows,
                        run->early_stop, part.nrows);
        if (st->step != 0 && cli_ckpt_stops_early(st, run->early_stop))
            fz_fail("accepted step %d after an early stop (--early-stop %d)", st->step, run->early_stop);
    }
}

static void check_names(const cli_classes *c, int k)
{
    if (c->n < 0 || c->n > k || (c->n > 0 && !c->names)) fz_fail("%d class names for %d outputs", c->n, k);
    for (int i = 0; i < c->n; i++) {
        size_t n = strlen(c->names[i]);
        if (n < 1 || n > CLI_CLASS_NAME_MAX || strchr(c->names[i], ','))
            fz_fail("accepted class name %d of %zu bytes", i, n);
        for (int j = 0; j < i; j++)
            if (strcmp(c->names[i], c->names[j]) == 0) fz_fail("accepted classes %d and %d alike", j, i);
    }
}

/* The resume path of cli_train on checkpoint m named `name`, with `extra`
 * arguments next to --resume. Returns 0 if the run would train, else the
 * exit code (after checking the refusal). */
static int resume(cnn_model *m, const char *name, char **extra, int nextra, resumed *r)
{
    memset(r, 0, sizeof *r);
    train_options_init(&r->c, &r->mem_limit, r->opts);
    char *argv[MAX_EXTRA + 4] = {(char *)"train", (char *)"--resume", (char *)name};
    int argc = 3;
    for (int i = 0; i < nextra; i++) argv[argc++] = extra[i];
    argv[argc] = NULL;
    fz_begin("cli_parse", 1);
    int rc = cli_parse(TRAIN_CMD, argc, argv, r->opts, NULL, 0, NULL);
    fz_end();
    if (rc) {
        if (rc != CLI_EUSAGE && rc != -1) fz_fail("cli_parse returned %d", rc);
        return rc; /* a usage error, or --help: nothing resumed */
    }
    name = r->c.resume; /* the arguments may name another */
    if (r->mem_limit) {
        double b, p;
        if (cli_mem_limit_parse(r->mem_limit, &b, &p)) return CLI_EUSAGE;
    }
    train_source_init(&r->src, r->opts, r->c.resume);
    if (r->c.init) return CLI_EUSAGE;                                 /* --resume and --init */
    if (r->c.data && cli_opt_find(r->opts, "dataset")->given) return CLI_EUSAGE; /* --data, --dataset */

    fz_begin("cli_ckpt_is_checkpoint", 1);
    int is_ckpt = cli_ckpt_is_checkpoint(meta_get, m);
    fz_end();
    if (!is_ckpt) return CLI_EDATA; /* "a model file, not a checkpoint" */

    fz_begin("train_options_from_checkpoint", 1);
    rc = train_options_from_checkpoint(m, &r->src);
    fz_end();
    if (rc) {
        check_refusal(r, "train_options_from_checkpoint", rc, name, OPT_KEYS);
        return rc;
    }
    if (r->src.ckpt_epochs < 1 || r->src.ckpt_epochs > 100000)
        fz_fail("train_options_from_checkpoint accepted %d epochs", r->src.ckpt_epochs);

    fz_begin("train_check_options", 1);
    rc = train_check_options(&r->c, &r->src, &r->x);
    fz_end();
    if (rc) {
        check_refusal(r, "train_check_options", rc, name, RUN_KEYS);
        return rc;
    }
    fz_begin("train_check_loss", 1);
    rc = train_check_loss(m, &r->src, r->x.loss);
    fz_end();
    if (rc) {
        static const char *const loss_key[] = {"train.opt.loss", NULL};
        check_refusal(r, "train_check_loss", rc, name, loss_key);
        return rc;
    }

    /* the data set: TRAIN_IMAGES training images, --val of them (a count
     * or a fraction) held out */
    fz_begin("train_val_count", 1);
    rc = train_val_count(&r->c, &r->src, TRAIN_IMAGES);
    fz_end();
    if (rc) {
        static const char *const val_key[] = {"train.opt.val", NULL};
        check_refusal(r, "train_val_count", rc, name, val_key);
        return rc;
    }
    if (r->c.val >= TRAIN_IMAGES) {
        fz_begin("train_option_error", 1);
        rc = train_option_error(&r->src, "val", "%d leaves no training images (the training file "
                                "holds %d)", r->c.val, TRAIN_IMAGES);
        fz_end();
        static const char *const val_key[] = {"train.opt.val", NULL};
        check_refusal(r, "--val", rc, name, val_key);
        return rc;
    }
    int batch = r->x.batch, ntrain, steps;
    train_shape(&r->c, TRAIN_IMAGES - r->c.val, &batch, &ntrain, &steps);
    r->run = (cli_ckpt_run){r->src.ckpt_epochs, steps, batch, ntrain, r->c.val > 0, r->c.early_stop};

    char msg[512];
    memset(msg, 0, sizeof msg);
    fz_begin("cli_ckpt_state_read", 1);
    rc = cli_ckpt_state_read(meta_get, m, &r->run, &r->st, msg, sizeof msg);
    fz_end();
    if (fz_out_len || fz_err_len) fz_fail("cli_ckpt_state_read printed");
    if (rc) {
        if (rc != -1) fz_fail("cli_ckpt_state_read returned %d", rc);
        if (r->st.rows || r->st.nrows || r->st.epoch || r->st.step || r->st.seen)
            fz_fail("a refused state is not empty: %s", msg);
        if (!fz_starts(msg, "train.") && strcmp(msg, "out of memory") != 0)
            fz_fail("cli_ckpt_state_read's message names no key: %s", msg);
        if (getenv("FUZZ_VERBOSE")) fprintf(stderr, "cli_ckpt_state_read: %s\n", msg);
        return CLI_EDATA;
    }
    check_state(&r->st, &r->run);
    int started = r->st.epoch + (r->st.step > 0);
    if (r->c.epochs < started) {
        if (!cli_opt_find(r->opts, "epochs")->given)
            fz_fail("the checkpoint's own --epochs %d is below the %d epochs begun", r->c.epochs, started);
        return CLI_EUSAGE;
    }

    fz_begin("cli_norm_from_model", 1);
    rc = cli_norm_from_model(TRAIN_CMD, m, &r->nm);
    fz_end();
    if (rc) {
        check_refusal(r, "cli_norm_from_model", rc, NULL, NORM_KEYS);
        return rc;
    }
    for (int ch = 0; ch < r->nm.channels; ch++)
        for (int p = 0; p < 256; p++)
            if (!isfinite(r->nm.lut[ch][p]))
                fz_fail("channel %d: pixel %d normalises to %g", ch, p, r->nm.lut[ch][p]);
    fz_begin("cli_classes_from_model", 1);
    rc = cli_classes_from_model(TRAIN_CMD, m, &r->names);
    fz_end();
    if (rc) {
        check_refusal(r, "cli_classes_from_model", rc, NULL, CLASS_KEYS);
        return rc;
    }
    if (fz_out_len || fz_err_len) fz_fail("cli_classes_from_model printed on success");
    check_names(&r->names, cnn_model_output_size(m));
    return CLI_OK;
}

/* ------------------------------------------------ what the run records */

static int record(cnn_model *m, resumed *r)
{
    fz_begin("record", 1);
    int rc = cli_ckpt_state_write(meta_set, m, &r->st, 1);
    rc |= train_record_options(r->opts, meta_set, m, 1);
    fz_end();
    return rc;
}

static void same_state(const cli_ckpt_state *a, const cli_ckpt_state *b)
{
    int same = a->epoch == b->epoch && a->step == b->step &&
               memcmp(&a->epoch_rng, &b->epoch_rng, sizeof a->epoch_rng) == 0 &&
               memcmp(&a->loss_sum, &b->loss_sum, sizeof(double)) == 0 && a->correct == b->correct &&
               a->seen == b->seen && memcmp(&a->epoch_seconds, &b->epoch_seconds, sizeof(double)) == 0 &&
               a->nrows == b->nrows;
    for (int i = 0; same && i < a->nrows; i++) {
        const cli_epoch_row *x = &a->rows[i], *y = &b->rows[i];
        /* NaN (no validation) compares by its bits */
        same = x->epoch == y->epoch && memcmp(&x->lr, &y->lr, sizeof(double)) == 0 &&
               memcmp(&x->train_loss, &y->train_loss, sizeof(double)) == 0 &&
               memcmp(&x->train_acc, &y->train_acc, sizeof(double)) == 0 &&
               (x->val_loss == y->val_loss || (isnan(x->val_loss) && isnan(y->val_loss))) &&
               (x->val_acc == y->val_acc || (isnan(x->val_acc) && isnan(y->val_acc))) &&
               memcmp(&x->seconds, &y->seconds, sizeof(double)) == 0;
    }
    if (!same) fz_fail("the recorded state resumes to another state");
}

/* Resume, record what the run would write, resume that: the same run. */
static void resume_twice(cnn_model *m, const char *name, char **extra, int nextra)
{
    static resumed a, b;
    int rc = resume(m, name, extra, nextra, &a);
    /* FUZZ_VERBOSE=1 ./fuzz_checkpoint file: see where a checkpoint is refused */
    if (getenv("FUZZ_VERBOSE"))
        fprintf(stderr, "%s: %s (exit %d) %s\n", name, rc ? "refused" : "resumes", rc,
                rc && fz_err ? fz_err : "");
    if (rc != CLI_OK) {
        resumed_free(&a);
        return;
    }
    if (record(m, &a)) fz_fail("recording the state failed");
    rc = resume(m, name, extra, nextra, &b);
    if (rc != CLI_OK) fz_fail("the recorded checkpoint does not resume (%d): %s", rc, fz_err);
    same_state(&a.st, &b.st);
    for (int i = 0; a.opts[i].name; i++) {
        char x[4096], y[4096];
        cli_opt_format(&a.opts[i], x, sizeof x);
        cli_opt_format(&b.opts[i], y, sizeof y);
        if (strcmp(x, y) != 0) fz_fail("--%s was %s, resumes as %s", a.opts[i].name, x, y);
    }
    /* the run's epochs are what it ran to (a larger --epochs extends it) */
    if (a.c.epochs != b.run.epochs || a.run.steps != b.run.steps || a.run.batch != b.run.batch ||
        a.run.ntrain != b.run.ntrain || a.run.has_val != b.run.has_val)
        fz_fail("the recorded checkpoint resumes to another run: %d epochs of %d steps of %d of %d "
                "images, validation %d; then %d, %d, %d, %d, %d", a.run.epochs, a.run.steps, a.run.batch,
                a.run.ntrain, a.run.has_val, b.run.epochs, b.run.steps, b.run.batch, b.run.ntrain,
                b.run.has_val);
    /* recording again writes the same text */
    static const char *const keys[] = {"train.epoch", "train.step", "train.data_rng", "train.loss_sum",
                                       "train.correct", "train.seen", "train.history", "train.seconds",
                                       "train.epoch_seconds", NULL};
    char *before[16] = {0};
    for (int i = 0; keys[i]; i++) {
        const char *v = cnn_model_get_meta(m, keys[i]);
        if (!v || !(before[i] = strdup(v))) fz_fail("%s not recorded", keys[i]);
    }
    if (record(m, &b)) fz_fail("recording the state failed");
    for (int i = 0; keys[i]; i++) {
        if (strcmp(before[i], cnn_model_get_meta(m, keys[i])) != 0)
            fz_fail("%s is recorded as '%.80s', then as '%.80s'", keys[i], before[i],
                    cnn_model_get_meta(m, keys[i]));
        free(before[i]);
    }
    resumed_free(&a);
    resumed_free(&b);
}

/* ------------------------------------------------------- the two uses */

static void as_file(const uint8_t *data, size_t size)
{
    const char *path = fuzz_file_set(&in_file, "ckpt", data, size);
    cnn_model *m = fuzz_load_model(path);
    if (!m) return;
    resume_twice(m, path, NULL, 0);
    cnn_model_free(m);
}

/* The state reader alone on the table, against the run a "fuzz.run" line
 * describes (epochs,steps,batch,images,validation[,early-stop]) or the
 * seeds' run (2 epochs of 5 steps of 8 of 40 images, with validation, no
 * early stop): the fields are
 * reached even when an option of the table would stop the resume first.
 * An accepted state keeps its promises and, written back, reads back the
 * same. */
static void state_alone(cnn_model *m)
{
    cli_ckpt_run run = {2, 5, 8, 40, 1, 0};
    const char *r = cnn_model_get_meta(m, "fuzz.run");
    if (r) {
        int v[6] = {0};
        const int k = sscanf(r, "%d,%d,%d,%d,%d,%d", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]);
        if (k != 5 && k != 6) return;
        /* a run cli_train could describe: its steps cover its images,
         * --early-stop in its option's range */
        if (v[0] < 1 || v[0] > 100000 || v[2] < 1 || v[3] < 1 || v[2] > v[3] || v[3] > 100000000 ||
            v[1] != (v[3] + v[2] - 1) / v[2] || v[5] < 0 || v[5] > 100000)
            return;
        run = (cli_ckpt_run){v[0], v[1], v[2], v[3], v[4] != 0, v[5]};
    }
    static cli_ckpt_state st, again;
    char msg[512];
    fz_begin("cli_ckpt_state_read", 1);
    int rc = cli_ckpt_state_read(meta_get, m, &run, &st, msg, sizeof msg);
    fz_end();
    if (fz_out_len || fz_err_len) fz_fail("cli_ckpt_state_read printed");
    if (rc) {
        if (rc != -1 || st.rows || st.nrows) fz_fail("a refused state is not empty");
        if (!fz_starts(msg, "train.") && strcmp(msg, "out of memory") != 0)
            fz_fail("cli_ckpt_state_read's message names no key: %s", msg);
        return;
    }
    check_state(&st, &run);
    fz_begin("cli_ckpt_state_write", 1);
    rc = cli_ckpt_state_write(meta_set, m, &st, 1);
    fz_end();
    if (rc) fz_fail("writing the state failed");
    fz_begin("cli_ckpt_state_read", 1);
    rc = cli_ckpt_state_read(meta_get, m, &run, &again, msg, sizeof msg);
    fz_end();
    if (rc) fz_fail("the state written does not read back: %s", msg);
    same_state(&st, &again);
    cli_ckpt_state_free(&st);
    cli_ckpt_state_free(&again);
}

/* "\n" (backslash, n) in a value is a line break. */
static void unescape(char *s)
{
    char *w = s;
    for (const char *p = s; *p; p++) {
        if (p[0] == '\\' && p[1] == 'n') {
            *w++ = '\n';
            p++;
        } else {
            *w++ = *p;
        }
    }
    *w = '\0';
}

static void as_table(const uint8_t *data, size_t size)
{
    char *text = malloc(size + 1);
    if (!text) return;
    memcpy(text, data, size);
    text[size] = '\0';
    char *key[MAX_ENTRIES], *val[MAX_ENTRIES], *extra[MAX_EXTRA];
    int n = 0, nextra = 0;
    const char *arch = DEFAULT_ARCH;
    for (char *line = text, *next; line && n < MAX_ENTRIES; line = next) {
        next = strchr(line, '\n');
        if (next) *next++ = '\0';
        if (line[0] == '-' && line[1] == '-') {
            if (nextra < MAX_EXTRA) extra[nextra++] = line;
            continue;
        }
        char *eq = strchr(line, '=');
        if (!eq || eq == line) continue;
        *eq = '\0';
        unescape(eq + 1);
        if (strcmp(line, "arch") == 0) {
            if (strlen(eq + 1) <= MAX_ARCH) arch = eq + 1;
            continue;
        }
        key[n] = line;
        val[n++] = eq + 1;
    }
    cnn_model *m = NULL;
    if (cnn_model_shapes_from_text(arch, "arch", &m) != CNN_OK &&
        cnn_model_shapes_from_text(DEFAULT_ARCH, "arch", &m) != CNN_OK)
        fuzz_die("the default architecture does not parse");
    for (int i = 0; i < n; i++)
        if (cnn_model_set_meta(m, key[i], val[i]) != CNN_OK) fuzz_die("cnn_model_set_meta failed");
    resume_twice(m, TABLE_NAME, extra, nextra);
    state_alone(m);
    cnn_model_free(m);
    free(text);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    as_file(data, size);
    as_table(data, size);
    return 0;
}
