/* test_hostile_cli.cpp — hostile input to the cnn program itself: the
 * checkpoints `cnn train --resume` reads (hand-made and replayed from the
 * fuzz_checkpoint corpus) and command lines (replayed from the fuzz_cli
 * corpus), through the same calls and checks as the libFuzzer targets.
 * The loaders' hostile files: test_hostile.cpp. */
#include "hostile.h"
extern "C" {
#include "cli/checkpoint.h"
#include "cli/train.h"
#include "model/model.h"
}

#include <signal.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cctype>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <functional>

namespace {

/* ------------------------------------ the cnn program: checkpoints, options */

/* A call's stdout and stderr, captured as the fuzz targets capture them. */
struct Printed {
    std::string out, err;
};

int captured(Printed &p, const std::function<int()> &call)
{
    fflush(stdout);
    fflush(stderr);
    char *ob = nullptr, *eb = nullptr;
    size_t ol = 0, el = 0;
    FILE *real_out = stdout, *real_err = stderr;
    FILE *o = open_memstream(&ob, &ol), *e = open_memstream(&eb, &el);
    if (!o || !e) {
        ADD_FAILURE() << "open_memstream failed";
        return -100;
    }
    stdout = o;
    stderr = e;
    int rc = call();
    fclose(o);
    fclose(e);
    stdout = real_out;
    stderr = real_err;
    p.out.assign(ob, ol);
    p.err.assign(eb, el);
    free(ob);
    free(eb);
    return rc;
}

bool starts(const std::string &s, const std::string &p) { return s.rfind(p, 0) == 0; }
bool ends(const std::string &s, const std::string &p)
{
    return s.size() >= p.size() && s.compare(s.size() - p.size(), p.size(), p) == 0;
}

/* An input split into arguments at NUL bytes (a final NUL ends the last). */
std::vector<std::string> split_args(const Bytes &in)
{
    std::vector<std::string> v;
    size_t start = 0;
    for (size_t i = 0; i <= in.size(); i++) {
        if (i < in.size() && in[i] != 0) continue;
        if (i == in.size() && start == in.size() && !in.empty() && in.back() == 0) break;
        v.push_back(in.substr(start, i - start));
        start = i + 1;
    }
    return v;
}

/* An option's value formats to a text that reads back to the same text. */
::testing::AssertionResult reads_back(const cli_opt &o)
{
    char text[4096], again[4096], msg[256];
    cli_opt_format(&o, text, sizeof text);
    if (o.kind == CLI_STR && !*(const char *const *)o.dest) return ::testing::AssertionSuccess();
    union {
        int i;
        uint64_t u;
        double d;
        const char *s;
    } scratch{};
    cli_opt tmp = o;
    tmp.dest = &scratch;
    if (cli_opt_check(&tmp, text, msg, sizeof msg))
        return ::testing::AssertionFailure() << "--" << o.name << " " << text << " is refused: " << msg;
    cli_opt_format(&tmp, again, sizeof again);
    if (strcmp(text, again) != 0)
        return ::testing::AssertionFailure() << "--" << o.name << " " << text << " reads back as " << again;
    return ::testing::AssertionSuccess();
}

/* cli_parse with a command's real table, checked as tests/fuzz/fuzz_cli.c
 * checks it: 0, 2 (one usage message on stderr) or -1 (--help), nothing on
 * stdout, every value given in range and reading back. */
int parse_checked(const std::string &what, const char *cmd, std::vector<char *> argv, cli_opt *opts,
                  char **pos, int max_pos, int *npos)
{
    Printed p;
    int rc = captured(p, [&] {
        return cli_parse(cmd, (int)argv.size(), argv.data(), opts, pos, max_pos, npos);
    });
    EXPECT_TRUE(rc == CLI_OK || rc == CLI_EUSAGE || rc == -1) << what << ": " << rc;
    EXPECT_EQ(p.out, "") << what;
    if (rc == CLI_EUSAGE) {
        EXPECT_TRUE(starts(p.err, std::string("cnn ") + cmd + ": ") &&
                    ends(p.err, std::string("\nTry 'cnn ") + cmd + " --help'.\n"))
            << what << ": " << p.err;
        return rc;
    }
    EXPECT_EQ(p.err, "") << what;
    if (rc) return rc;
    /* the text that set each option last (the parse succeeded) */
    std::vector<const char *> text(64, nullptr);
    for (size_t i = 1, only_pos = 0; i < argv.size(); i++) {
        const char *a = argv[i];
        if (only_pos || a[0] != '-' || a[1] == '\0') continue;
        if (strcmp(a, "--") == 0) {
            only_pos = 1;
            continue;
        }
        const char *eq = strchr(a + 2, '=');
        size_t n = eq ? (size_t)(eq - (a + 2)) : strlen(a + 2);
        for (int j = 0; opts[j].name; j++)
            if (strlen(opts[j].name) == n && strncmp(opts[j].name, a + 2, n) == 0)
                text[j] = opts[j].kind == CLI_FLAG ? "1" : eq ? eq + 1 : argv[++i];
    }
    for (int i = 0; opts[i].name; i++) {
        const cli_opt &o = opts[i];
        if (!o.given) continue;
        EXPECT_NE(text[i], nullptr) << what << ": --" << o.name;
        if (!text[i]) continue;
        /* a number's text starts as one (F7) */
        const char *t = text[i];
        if (o.kind == CLI_U64) EXPECT_TRUE(isdigit((unsigned char)t[0])) << what << ": --" << o.name << " '" << t << "'";
        if (o.kind == CLI_INT) EXPECT_TRUE(isdigit((unsigned char)t[t[0] == '-'])) << what << ": --" << o.name << " '" << t << "'";
        if (o.kind == CLI_FLOAT || o.kind == CLI_FLOAT_ABOVE)
            EXPECT_TRUE(isdigit((unsigned char)t[t[0] == '-']) || t[t[0] == '-'] == '.')
                << what << ": --" << o.name << " '" << t << "'";
        if (o.kind == CLI_INT) {
            int v = *(const int *)o.dest;
            EXPECT_TRUE(v >= o.lo && v <= o.hi) << what << ": --" << o.name << " " << v;
        } else if (o.kind == CLI_FLOAT || o.kind == CLI_FLOAT_ABOVE) {
            double v = *(const double *)o.dest;
            EXPECT_TRUE(std::isfinite(v) && (o.kind == CLI_FLOAT ? v >= o.lo : v > o.lo) && v <= o.hi)
                << what << ": --" << o.name << " " << v;
        }
        EXPECT_TRUE(reads_back(o)) << what;
    }
    return rc;
}

void mem_limit_checked(const std::string &what, const char *text)
{
    double bytes, pct;
    if (cli_mem_limit_parse(text, &bytes, &pct) != 0) return;
    EXPECT_TRUE(isdigit((unsigned char)text[0]) || text[0] == '.') << what << ": " << text;
    if (pct > 0) EXPECT_TRUE(pct <= 100 && bytes == 0 && ends(text, "%")) << what << ": " << text;
    else EXPECT_TRUE(bytes >= 1 && bytes < 0x1p64) << what << ": " << text;
}

/* What tests/fuzz/fuzz_cli.c does with one input: a command word and its
 * arguments (or, without one, the arguments for every command). */
void replay_cli(const std::string &what, const Bytes &in)
{
    std::vector<std::string> args = split_args(in);
    static const char *const cmds[] = {"train", "eval", "predict", "info"};
    int known = -1;
    for (int c = 0; c < 4 && !args.empty(); c++)
        if (args[0] == cmds[c]) known = c;
    for (int c = 0; c < 4; c++) {
        if (known >= 0 && c != known) continue;
        std::vector<char *> argv{(char *)cmds[c]};
        for (size_t i = known >= 0 ? 1 : 0; i < args.size(); i++) argv.push_back(args[i].data());
        if (c == 0) {
            train_cfg cfg;
            const char *mem;
            cli_opt opts[TRAIN_NOPTS + 1];
            train_options_init(&cfg, &mem, opts);
            if (parse_checked(what, "train", argv, opts, nullptr, 0, nullptr) != CLI_OK) continue;
            if (mem) mem_limit_checked(what, mem);
            opt_source src{};
            src.opts = opts;
            src.resume = cfg.resume;
            for (int i = 0; opts[i].name; i++) src.cmdline[i] = opts[i].given;
            run_choices x;
            Printed p;
            int rc = captured(p, [&] { return train_check_options(&cfg, &src, &x); });
            EXPECT_TRUE(rc == CLI_OK || (rc == CLI_EUSAGE && starts(p.err, "cnn train: --")))
                << what << ": " << rc << " " << p.err;
            if (rc) continue;
            for (int i = 0; opts[i].name; i++)
                if (train_listed(train_run_options, opts[i].name) ||
                    train_listed(train_output_options, opts[i].name))
                    EXPECT_TRUE(reads_back(opts[i])) << what << " (recorded)";
        } else if (c == 1) {
            eval_cfg cfg;
            cli_opt opts[EVAL_NOPTS + 1];
            cli_eval_options(&cfg, opts);
            if (parse_checked(what, "eval", argv, opts, nullptr, 0, nullptr) != CLI_OK) continue;
            cnn_kernels k;
            Printed p;
            int rc = captured(p, [&] { return cli_parse_kernels("eval", cfg.kernels, &k); });
            bool ok = strcmp(cfg.kernels, "ref") == 0 || strcmp(cfg.kernels, "fast") == 0;
            EXPECT_EQ(rc, ok ? CLI_OK : CLI_EUSAGE) << what;
            if (cfg.mem_limit) mem_limit_checked(what, cfg.mem_limit);
        } else if (c == 2) {
            predict_cfg cfg;
            cli_opt opts[PREDICT_NOPTS + 1];
            cli_predict_options(&cfg, opts);
            std::vector<char *> files(CLI_PREDICT_MAX_IMAGES);
            int n = 0;
            if (parse_checked(what, "predict", argv, opts, files.data(), CLI_PREDICT_MAX_IMAGES, &n) != CLI_OK)
                continue;
            if (cfg.mem_limit) mem_limit_checked(what, cfg.mem_limit);
        } else {
            info_cfg cfg;
            cli_opt opts[INFO_NOPTS + 1];
            cli_info_options(&cfg, opts);
            parse_checked(what, "info", argv, opts, nullptr, 0, nullptr);
        }
    }
}

/* F7: strtoll, strtoull and strtod skip white space and take a sign, so
 * `--seed " -15"` was the seed 18446744073709551601 (and " 5", "+5" were
 * taken as 5, "\t8" as --batch 8). A number's text starts as one. */
TEST_F(Hostile, OptionNumbersStartAsNumbers)
{
    struct Case {
        const char *flag, *value, *says;
    } refused[] = {
        {"--seed", " -15", "expected a whole number from 0 to 18446744073709551615, got ' -15'"},
        {"--seed", "+15", "got '+15'"},
        {"--seed", "\t15", "got '\t15'"},
        {"--epochs", " 5", "expected a whole number from 1 to 100000, got ' 5'"},
        {"--epochs", "+5", "got '+5'"},
        {"--epochs", "- 5", "got '- 5'"},
        {"--lr", " 0.1", "expected a number above 0 and at most 100, got ' 0.1'"},
        {"--momentum", "+0.5", "expected a number from 0 to 0.999999, got '+0.5'"},
        {"--batch", "\t8", "--batch: expected a whole number from 1 to 1000000 or 'all', got '\t8'"},
        {"--batch", "\n8", "got '\n8'"},
    };
    for (const Case &c : refused) {
        train_cfg cfg;
        const char *mem;
        cli_opt opts[TRAIN_NOPTS + 1];
        train_options_init(&cfg, &mem, opts);
        std::string flag = c.flag, value = c.value;
        std::vector<char *> argv{(char *)"train", flag.data(), value.data()};
        Printed p;
        int rc = captured(p, [&] { return cli_parse("train", 3, argv.data(), opts, nullptr, 0, nullptr); });
        if (rc == CLI_OK) {
            /* --batch is a text, read by train_check_options */
            opt_source src{};
            src.opts = opts;
            for (int i = 0; opts[i].name; i++) src.cmdline[i] = opts[i].given;
            run_choices x;
            rc = captured(p, [&] { return train_check_options(&cfg, &src, &x); });
        }
        EXPECT_EQ(rc, CLI_EUSAGE) << c.flag << " '" << c.value << "'";
        EXPECT_NE(p.err.find(c.says), std::string::npos) << c.flag << ": " << p.err;
    }
    /* what still reads: negative whole numbers where the range has them,
     * fractions without a leading digit */
    train_cfg cfg;
    const char *mem;
    cli_opt opts[TRAIN_NOPTS + 1];
    train_options_init(&cfg, &mem, opts);
    std::vector<std::string> args{"train", "--seed", "18446744073709551615", "--lr", ".5", "--epochs", "007",
                                  "--min-lr", "0", "--clip", "-0"};
    std::vector<char *> argv;
    for (auto &a : args) argv.push_back(a.data());
    Printed p;
    ASSERT_EQ(captured(p, [&] { return cli_parse("train", (int)argv.size(), argv.data(), opts, nullptr, 0, nullptr); }),
              CLI_OK)
        << p.err;
    EXPECT_EQ(cfg.seed, 18446744073709551615ull);
    EXPECT_EQ(cfg.lr, 0.5);
    EXPECT_EQ(cfg.epochs, 7);
    /* and a checkpoint's options are read by the same checks */
    cnn_model *m = nullptr;
    ASSERT_EQ(cnn_model_shapes_from_text("input 1x28x28\nflatten\ndense 10\nsoftmax\n", "arch", &m), CNN_OK);
    train_options_init(&cfg, &mem, opts);
    for (int i = 0; opts[i].name; i++) {
        int run = train_listed(train_run_options, opts[i].name);
        if (!run) continue;
        char key[64], val[256];
        snprintf(key, sizeof key, "train.opt.%s", opts[i].name);
        cli_opt_format(&opts[i], val, sizeof val);
        /* options resolved by train_check_options (--fit) have no value yet:
         * a checkpoint always holds what they resolved to */
        if (strcmp(opts[i].name, "fit") == 0) continue;
        ASSERT_EQ(cnn_model_set_meta(m, key, strcmp(opts[i].name, "seed") == 0 ? " -1" : val), CNN_OK);
    }
    opt_source src{};
    src.opts = opts;
    src.resume = "x.ckpt";
    int rc = captured(p, [&] { return train_options_from_checkpoint(m, &src); });
    EXPECT_EQ(rc, CLI_EDATA);
    EXPECT_NE(p.err.find("x.ckpt: train.opt.seed: expected a whole number"), std::string::npos) << p.err;
    for (int i = 0; i < TRAIN_MAX_OPTS; i++) {
        free(src.owned[i]);
        free(src.recorded[i]);
    }
    cnn_model_free(m);
}

/* A checkpoint whose model cannot take its recorded loss (cce, but the model
 * ends without a softmax) is the checkpoint's fault: exit 1 naming it and
 * train.opt.loss. Only a --loss the command line gave is a usage error. */
TEST_F(Hostile, CheckpointLossTheModelCannotTakeIsTheCheckpoints)
{
    cnn_model *m = nullptr;
    ASSERT_EQ(cnn_model_shapes_from_text("input 1x28x28\nflatten\ndense 10\nflatten\n", "arch", &m), CNN_OK);
    for (int given = 0; given < 2; given++) {
        train_cfg cfg;
        const char *mem;
        cli_opt opts[TRAIN_NOPTS + 1];
        train_options_init(&cfg, &mem, opts);
        opt_source src{};
        src.opts = opts;
        src.resume = "x.ckpt";
        for (int i = 0; opts[i].name; i++)
            if (strcmp(opts[i].name, "loss") == 0) src.cmdline[i] = given;
        cnn_loss cce{};
        ASSERT_EQ(cnn_loss_parse("cce", &cce), CNN_OK);
        Printed p;
        int rc = captured(p, [&] { return train_check_loss(m, &src, cce); });
        EXPECT_EQ(p.out, "");
        if (given) {
            EXPECT_EQ(rc, CLI_EUSAGE);
            EXPECT_TRUE(starts(p.err, "cnn train: --loss: ")) << p.err;
        } else {
            EXPECT_EQ(rc, CLI_EDATA);
            EXPECT_TRUE(starts(p.err, "cnn train: --resume: x.ckpt: train.opt.loss: ")) << p.err;
            EXPECT_EQ(p.err.find("Try 'cnn train --help'"), std::string::npos) << p.err;
        }
    }
    cnn_model_free(m);
}

TEST_F(Hostile, ReplayCliCorpus)
{
    auto files = corpus_files("cli");
    ASSERT_FALSE(files.empty()) << kCorpus / "cli";
    for (const auto &f : files) replay_cli(f.filename().string(), read_file(f));
}

const char *meta_get(const void *ctx, const char *key)
{
    return cnn_model_get_meta((const cnn_model *)ctx, key);
}

int meta_set(void *ctx, const char *key, const char *value)
{
    if (!value) {
        cnn_model_unset_meta((cnn_model *)ctx, key);
        return 0;
    }
    return cnn_model_set_meta((cnn_model *)ctx, key, value) == CNN_OK ? 0 : -1;
}

/* A run resumed from a checkpoint, as tests/fuzz/fuzz_checkpoint.c resumes
 * it: cli_train's --resume path on a training file of 60000 images. */
struct Resumed {
    train_cfg c{};
    const char *mem_limit = nullptr;
    cli_opt opts[TRAIN_NOPTS + 1]{};
    opt_source src{};
    run_choices x{};
    cli_ckpt_run run{};
    cli_ckpt_state st{};
    cli_norm nm{};
    cli_classes names{};
    std::string stage, message; /* where and why it was refused */
    std::vector<std::string> args; /* the arguments next to --resume: options point into them */
    Resumed() = default;
    ~Resumed()
    {
        for (int i = 0; i < TRAIN_MAX_OPTS; i++) {
            free(src.owned[i]);
            free(src.recorded[i]);
        }
        cli_ckpt_state_free(&st);
        cli_classes_free(&names);
    }
    Resumed(const Resumed &) = delete;
    Resumed &operator=(const Resumed &) = delete;
};

const int kTrainImages = 60000;

/* A refusal: exit 1 naming the checkpoint (if `name`) and one of the keys,
 * or exit 2 about an option the command line gave. */
::testing::AssertionResult refusal_ok(const Resumed &r, int rc, const Printed &p, const char *name,
                                      std::vector<std::string> keys)
{
    if (!p.out.empty()) return ::testing::AssertionFailure() << r.stage << " printed on stdout";
    if (rc == CLI_EUSAGE) {
        if (!starts(p.err, "cnn train: --"))
            return ::testing::AssertionFailure() << r.stage << ": a usage error naming no option: " << p.err;
        std::string opt = p.err.substr(13, strcspn(p.err.c_str() + 13, " :="));
        for (int i = 0; r.opts[i].name; i++)
            if (opt == r.opts[i].name && r.src.cmdline[i]) return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure() << r.stage << ": a usage error about --" << opt
                                             << ", not given on the command line: " << p.err;
    }
    if (rc != CLI_EDATA) return ::testing::AssertionFailure() << r.stage << " returned " << rc;
    if (!starts(p.err, "cnn train: "))
        return ::testing::AssertionFailure() << r.stage << ": exit 1 without a message";
    if (name && p.err.find(name) == std::string::npos)
        return ::testing::AssertionFailure() << r.stage << ": the checkpoint is not named: " << p.err;
    for (const auto &k : keys)
        if (p.err.find(k) != std::string::npos) return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << r.stage << ": no field named: " << p.err;
}

/* Returns CLI_OK if the run would train; a refusal is checked. */
int resume_checked(cnn_model *m, const char *name, const std::vector<std::string> &extra, Resumed &r)
{
    train_options_init(&r.c, &r.mem_limit, r.opts);
    r.args = extra;
    std::vector<char *> argv{(char *)"train", (char *)"--resume", (char *)name};
    for (auto &a : r.args) argv.push_back(a.data());
    Printed p;
    r.stage = "cli_parse";
    int rc = captured(p, [&] { return cli_parse(TRAIN_CMD, (int)argv.size(), argv.data(), r.opts, nullptr, 0, nullptr); });
    if (rc) return rc;
    name = r.c.resume;
    double b, pc;
    if (r.mem_limit && cli_mem_limit_parse(r.mem_limit, &b, &pc)) return CLI_EUSAGE;
    r.src.opts = r.opts;
    r.src.resume = r.c.resume;
    for (int i = 0; r.opts[i].name; i++) r.src.cmdline[i] = r.opts[i].given;
    if (r.c.init || (r.c.data && cli_opt_find(r.opts, "dataset")->given)) return CLI_EUSAGE;
    if (!cli_ckpt_is_checkpoint(meta_get, m)) return CLI_EDATA;

    r.stage = "train_options_from_checkpoint";
    rc = captured(p, [&] { return train_options_from_checkpoint(m, &r.src); });
    if (rc) {
        EXPECT_TRUE(refusal_ok(r, rc, p, name, {"train.opt.", "train.out."}));
        return rc;
    }
    r.stage = "train_check_options";
    rc = captured(p, [&] { return train_check_options(&r.c, &r.src, &r.x); });
    if (rc) {
        EXPECT_TRUE(refusal_ok(r, rc, p, name, {"train.opt."}));
        return rc;
    }
    r.stage = "train_check_loss";
    rc = captured(p, [&] { return train_check_loss(m, &r.src, r.x.loss); });
    if (rc) {
        EXPECT_TRUE(refusal_ok(r, rc, p, name, {"train.opt.loss"}));
        return rc;
    }
    r.stage = "train_val_count";
    rc = captured(p, [&] { return train_val_count(&r.c, &r.src, kTrainImages); });
    if (rc) {
        EXPECT_TRUE(refusal_ok(r, rc, p, name, {"train.opt.val"}));
        return rc;
    }
    if (r.c.val >= kTrainImages) {
        r.stage = "--val";
        rc = captured(p, [&] { return train_option_error(&r.src, "val", "leaves no training images"); });
        EXPECT_TRUE(refusal_ok(r, rc, p, name, {"train.opt.val"}));
        return rc;
    }
    int batch = r.x.batch, ntrain, steps;
    train_shape(&r.c, kTrainImages - r.c.val, &batch, &ntrain, &steps);
    r.run = cli_ckpt_run{r.src.ckpt_epochs, steps, batch, ntrain, r.c.val > 0, r.c.early_stop};
    char msg[512] = "";
    r.stage = "cli_ckpt_state_read";
    rc = captured(p, [&] { return cli_ckpt_state_read(meta_get, m, &r.run, &r.st, msg, sizeof msg); });
    EXPECT_EQ(p.out + p.err, "") << "cli_ckpt_state_read printed";
    if (rc) {
        r.message = msg;
        EXPECT_TRUE(starts(msg, "train.") || r.message == "out of memory") << msg;
        EXPECT_EQ(r.st.rows, nullptr);
        return CLI_EDATA;
    }
    const cli_ckpt_state &st = r.st;
    EXPECT_TRUE(st.epoch >= 0 && st.epoch <= r.run.epochs && st.step >= 0 && st.step <= r.run.steps &&
                !(st.epoch == r.run.epochs && st.step))
        << st.epoch << " " << st.step;
    EXPECT_EQ(st.seen, std::min<long long>((long long)st.step * r.run.batch, r.run.ntrain));
    EXPECT_TRUE(st.correct >= 0 && st.correct <= st.seen);
    EXPECT_TRUE(std::isfinite(st.loss_sum) && st.loss_sum >= 0 && (st.seen || st.loss_sum == 0));
    EXPECT_TRUE(std::isfinite(st.epoch_seconds) && st.epoch_seconds >= 0);
    EXPECT_EQ(st.nrows, st.epoch);
    for (int i = 0; i < st.nrows; i++) {
        const cli_epoch_row &w = st.rows[i];
        EXPECT_EQ(w.epoch, i + 1);
        EXPECT_TRUE(w.lr >= 0 && w.lr <= 100 && std::isfinite(w.train_loss) && w.train_loss >= 0 &&
                    w.train_acc >= 0 && w.train_acc <= 100 && std::isfinite(w.seconds) && w.seconds >= 0);
        if (r.run.has_val)
            EXPECT_TRUE(std::isfinite(w.val_loss) && w.val_loss >= 0 && w.val_acc >= 0 && w.val_acc <= 100);
        else
            EXPECT_TRUE(std::isnan(w.val_loss) && std::isnan(w.val_acc));
    }
    if (r.c.epochs < st.epoch + (st.step > 0)) {
        EXPECT_TRUE(cli_opt_find(r.opts, "epochs")->given);
        return CLI_EUSAGE;
    }
    r.stage = "cli_norm_from_model";
    rc = captured(p, [&] { return cli_norm_from_model(TRAIN_CMD, m, &r.nm); });
    if (rc) {
        EXPECT_TRUE(refusal_ok(r, rc, p, nullptr, {"norm_mean", "norm_std"}));
        return rc;
    }
    for (int ch = 0; ch < r.nm.channels; ch++)
        for (float v : r.nm.lut[ch]) EXPECT_TRUE(std::isfinite(v));
    r.stage = "cli_classes_from_model";
    rc = captured(p, [&] { return cli_classes_from_model(TRAIN_CMD, m, &r.names); });
    if (rc) {
        EXPECT_TRUE(refusal_ok(r, rc, p, nullptr, {"'classes'"}));
        return rc;
    }
    EXPECT_LE(r.names.n, cnn_model_output_size(m));
    r.stage = "";
    return CLI_OK;
}

/* Resume, record what the run would write, resume that: the same state.
 * Returns whether the first resume was accepted. */
bool resume_twice(const std::string &what, cnn_model *m, const char *name,
                  const std::vector<std::string> &extra)
{
    Resumed a;
    if (resume_checked(m, name, extra, a) != CLI_OK) return false;
    EXPECT_EQ(cli_ckpt_state_write(meta_set, m, &a.st, 1), 0);
    EXPECT_EQ(train_record_options(a.opts, meta_set, m, 1), 0);
    Resumed b;
    EXPECT_EQ(resume_checked(m, name, extra, b), CLI_OK) << what << ": the recorded checkpoint: " << b.stage
                                                          << " " << b.message;
    EXPECT_EQ(a.st.epoch, b.st.epoch) << what;
    EXPECT_EQ(a.st.step, b.st.step) << what;
    EXPECT_EQ(memcmp(&a.st.epoch_rng, &b.st.epoch_rng, sizeof a.st.epoch_rng), 0) << what;
    EXPECT_EQ(a.st.loss_sum, b.st.loss_sum) << what;
    EXPECT_EQ(a.st.seen, b.st.seen) << what;
    EXPECT_EQ(a.st.correct, b.st.correct) << what;
    EXPECT_EQ(a.st.epoch_seconds, b.st.epoch_seconds) << what;
    EXPECT_EQ(a.st.nrows, b.st.nrows) << what;
    for (int i = 0; i < std::min(a.st.nrows, b.st.nrows); i++) {
        EXPECT_EQ(a.st.rows[i].lr, b.st.rows[i].lr) << what;
        EXPECT_EQ(a.st.rows[i].train_loss, b.st.rows[i].train_loss) << what;
        EXPECT_EQ(a.st.rows[i].seconds, b.st.rows[i].seconds) << what;
    }
    for (int i = 0; a.opts[i].name; i++) {
        char x[4096], y[4096];
        cli_opt_format(&a.opts[i], x, sizeof x);
        cli_opt_format(&b.opts[i], y, sizeof y);
        EXPECT_STREQ(x, y) << what << ": --" << a.opts[i].name;
    }
    return true;
}

/* fuzz_checkpoint's second reading of an input: "key=value" lines ("\n"
 * in a value: a line break), "--" lines are arguments, "arch" builds the
 * model. */
struct Table {
    std::vector<std::pair<std::string, std::string>> meta;
    std::vector<std::string> extra;
    std::string arch = "input 1x28x28\nflatten\ndense 10\nsoftmax\n";
};

Table parse_table(const Bytes &in)
{
    Table t;
    std::string text = in.substr(0, strlen(in.c_str()));
    size_t at = 0;
    for (int n = 0; at <= text.size() && n < 256;) {
        size_t nl = text.find('\n', at);
        std::string line = text.substr(at, nl == std::string::npos ? std::string::npos : nl - at);
        at = nl == std::string::npos ? text.size() + 1 : nl + 1;
        if (starts(line, "--")) {
            if (t.extra.size() < 16) t.extra.push_back(line);
            continue;
        }
        size_t eq = line.find('=');
        if (eq == std::string::npos || eq == 0) continue;
        std::string key = line.substr(0, eq), val, raw = line.substr(eq + 1);
        for (size_t i = 0; i < raw.size(); i++) {
            if (raw[i] == '\\' && i + 1 < raw.size() && raw[i + 1] == 'n') {
                val += '\n';
                i++;
            } else {
                val += raw[i];
            }
        }
        if (key == "arch") {
            if (val.size() <= 1024) t.arch = val;
            continue;
        }
        t.meta.emplace_back(key, val);
        n++;
    }
    return t;
}

/* fuzz_checkpoint's state reader alone on a table: against its "fuzz.run"
 * (epochs,steps,batch,images,validation[,early-stop]) or the seeds' run; an
 * accepted state written back reads back the same. Returns whether it was
 * accepted. */
bool state_alone(const std::string &what, cnn_model *m)
{
    cli_ckpt_run run = {2, 5, 8, 40, 1, 0};
    if (const char *r = cnn_model_get_meta(m, "fuzz.run")) {
        int v[6] = {0, 0, 0, 0, 0, 0};
        const int k = sscanf(r, "%d,%d,%d,%d,%d,%d", &v[0], &v[1], &v[2], &v[3], &v[4], &v[5]);
        if (k != 5 && k != 6) return false;
        if (v[0] < 1 || v[0] > 100000 || v[2] < 1 || v[3] < 1 || v[2] > v[3] || v[3] > 100000000 ||
            v[1] != (v[3] + v[2] - 1) / v[2] || v[5] < 0 || v[5] > 100000)
            return false;
        run = cli_ckpt_run{v[0], v[1], v[2], v[3], v[4] != 0, v[5]};
    }
    cli_ckpt_state st, again;
    char msg[512] = "";
    if (cli_ckpt_state_read(meta_get, m, &run, &st, msg, sizeof msg)) {
        EXPECT_TRUE(starts(msg, "train.")) << what << ": " << msg;
        EXPECT_EQ(st.rows, nullptr) << what;
        return false;
    }
    EXPECT_TRUE(st.epoch <= run.epochs && st.step <= run.steps && st.nrows == st.epoch) << what;
    EXPECT_EQ(cli_ckpt_state_write(meta_set, m, &st, 1), 0) << what;
    EXPECT_EQ(cli_ckpt_state_read(meta_get, m, &run, &again, msg, sizeof msg), 0) << what << ": " << msg;
    EXPECT_EQ(st.epoch, again.epoch) << what;
    EXPECT_EQ(st.step, again.step) << what;
    EXPECT_EQ(st.seen, again.seen) << what;
    EXPECT_EQ(st.loss_sum, again.loss_sum) << what;
    EXPECT_EQ(st.nrows, again.nrows) << what;
    cli_ckpt_state_free(&st);
    cli_ckpt_state_free(&again);
    return true;
}

TEST_F(Hostile, ReplayCheckpointCorpus)
{
    auto files = corpus_files("checkpoint");
    ASSERT_FALSE(files.empty()) << kCorpus / "checkpoint";
    int files_ok = 0, tables_ok = 0, states_ok = 0;
    for (const auto &f : files) {
        std::string what = f.filename().string();
        cnn_model *m = nullptr;
        cnn_status s = cnn_model_load(f.c_str(), &m);
        if (s) {
            EXPECT_NE(std::string(cnn_errmsg()).find(f.string()), std::string::npos) << what << ": " << cnn_errmsg();
        } else {
            files_ok += resume_twice(what, m, f.c_str(), {});
            cnn_model_free(m);
        }
        Bytes in = read_file(f);
        Table t = parse_table(in);
        m = nullptr;
        if (cnn_model_shapes_from_text(t.arch.c_str(), "arch", &m) != CNN_OK)
            ASSERT_EQ(cnn_model_shapes_from_text("input 1x28x28\nflatten\ndense 10\nsoftmax\n", "arch", &m), CNN_OK);
        for (const auto &kv : t.meta) ASSERT_EQ(cnn_model_set_meta(m, kv.first.c_str(), kv.second.c_str()), CNN_OK);
        tables_ok += resume_twice(what + " (table)", m, "table.ckpt", t.extra);
        states_ok += state_alone(what + " (state)", m);
        cnn_model_free(m);
    }
    EXPECT_GT(files_ok, 0) << "no checkpoint in the corpus resumes";
    EXPECT_GT(tables_ok, 0) << "no table in the corpus resumes";
    EXPECT_GT(states_ok, 0) << "no table's state reads alone";
}

} // namespace
