/* test_checkpoint.cpp — the training state in a checkpoint's metadata
 * (src/cli/checkpoint.c): what is written reads back exactly; a final
 * model's record has no wall times; and each field that does not fit the
 * run it describes is refused with a message that names the field's key,
 * the state left empty. The same function is what a fuzz target
 * would call: no printing, no global state. */
extern "C" {
#include "cli/checkpoint.h"
}

#include <gtest/gtest.h>

#include <cmath>
#include <map>
#include <string>

namespace {

using Meta = std::map<std::string, std::string>;

const char *get(const void *ctx, const char *key)
{
    const Meta *m = static_cast<const Meta *>(ctx);
    auto it = m->find(key);
    return it == m->end() ? nullptr : it->second.c_str();
}

int set(void *ctx, const char *key, const char *value)
{
    Meta *m = static_cast<Meta *>(ctx);
    if (value) (*m)[key] = value;
    else m->erase(key);
    return 0;
}

/* 600 images in steps of 16: 38 steps, the last of 8 images */
const cli_ckpt_run kRun = {4, 38, 16, 600, 1};

/* A run stopped at epoch 3 (two done), step 5. */
cli_ckpt_state sample()
{
    cli_ckpt_state st{};
    st.epoch = 2;
    st.step = 5;
    for (int i = 0; i < 4; i++) st.epoch_rng.s[i] = 0x0123456789abcdefULL * (i + 1);
    st.loss_sum = 12.345678901234567;
    st.correct = 61;
    st.seen = 80;
    st.epoch_seconds = 0.25;
    for (int e = 1; e <= 2; e++) {
        /* a rate as the run has it: a float */
        cli_epoch_row r = {e, (double)(float)(0.01 / e), 0.5 / e, 80.0 + e, 0.3 / e, 90.0 + e, 1.5 * e};
        EXPECT_EQ(cli_ckpt_push_row(&st, r), 0);
    }
    return st;
}

Meta written(int checkpoint = 1)
{
    cli_ckpt_state st = sample();
    Meta m;
    EXPECT_EQ(cli_ckpt_state_write(set, &m, &st, checkpoint), 0);
    cli_ckpt_state_free(&st);
    return m;
}

/* Read m against run; the message, or "" if it was accepted. */
std::string refusal(const Meta &m, const cli_ckpt_run &run = kRun)
{
    cli_ckpt_state st;
    char msg[512] = "";
    int rc = cli_ckpt_state_read(get, &m, &run, &st, msg, sizeof msg);
    if (rc == 0) {
        cli_ckpt_state_free(&st);
        return "";
    }
    EXPECT_EQ(st.rows, nullptr);
    EXPECT_EQ(st.nrows, 0);
    EXPECT_NE(msg[0], '\0');
    return msg;
}

TEST(Checkpoint, WrittenStateReadsBackExactly)
{
    Meta m = written();
    cli_ckpt_state want = sample(), got;
    char msg[512];
    ASSERT_EQ(cli_ckpt_state_read(get, &m, &kRun, &got, msg, sizeof msg), 0) << msg;
    EXPECT_EQ(got.epoch, want.epoch);
    EXPECT_EQ(got.step, want.step);
    for (int i = 0; i < 4; i++) EXPECT_EQ(got.epoch_rng.s[i], want.epoch_rng.s[i]);
    EXPECT_EQ(got.loss_sum, want.loss_sum);
    EXPECT_EQ(got.correct, want.correct);
    EXPECT_EQ(got.seen, want.seen);
    EXPECT_EQ(got.epoch_seconds, want.epoch_seconds);
    ASSERT_EQ(got.nrows, 2);
    for (int i = 0; i < 2; i++) {
        EXPECT_EQ(got.rows[i].epoch, i + 1);
        EXPECT_EQ(got.rows[i].lr, want.rows[i].lr);
        EXPECT_EQ(got.rows[i].train_loss, want.rows[i].train_loss);
        EXPECT_EQ(got.rows[i].val_acc, want.rows[i].val_acc);
        EXPECT_EQ(got.rows[i].seconds, want.rows[i].seconds);
    }
    EXPECT_TRUE(cli_ckpt_is_checkpoint(get, &m));
    cli_ckpt_state_free(&want);
    cli_ckpt_state_free(&got);
}

TEST(Checkpoint, FinalModelRecordHasNoWallTimes)
{
    Meta m = written(1);
    cli_ckpt_state st = sample();
    ASSERT_EQ(cli_ckpt_state_write(set, &m, &st, 0), 0);
    cli_ckpt_state_free(&st);
    EXPECT_EQ(m.count("train.seconds"), 0u);
    EXPECT_EQ(m.count("train.epoch_seconds"), 0u);
    EXPECT_EQ(m.count("train.history"), 1u);
    EXPECT_FALSE(cli_ckpt_is_checkpoint(get, &m));
}

TEST(Checkpoint, EveryFieldIsCheckedAgainstTheRun)
{
    struct Case {
        const char *key, *value; /* value nullptr: the key removed */
    } cases[] = {
        {"train.epoch", "-1"}, {"train.epoch", "5"}, {"train.epoch", "2 "}, {"train.epoch", "0x2"},
        {"train.epoch", "3"}, /* the history then has too few rows */
        {"train.step", "-1"}, {"train.step", "39"}, {"train.step", "5.0"}, {"train.step", nullptr},
        {"train.seen", "81"}, {"train.seen", "79"}, {"train.correct", "81"}, {"train.correct", "-1"},
        {"train.loss_sum", "nan"}, {"train.loss_sum", "-inf"}, {"train.loss_sum", "-0.5"},
        {"train.data_rng", "0123"}, {"train.data_rng", nullptr},
        {"train.data_rng", "0000000000000000000000000000000000000000000000000000000000000000"},
        {"train.data_rng", "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdeX"},
        {"train.history", ""}, {"train.history", "1,0.01,0.5,81,0.3,91"},
        {"train.history", "1,0.01,0.5,81,0.3,91;3,0.005,0.25,82,0.15,92"},
        {"train.history", "1,0.01,0.5,181,0.3,91;2,0.005,0.25,82,0.15,92"},
        {"train.history", "1,0.01,0.5,81,0.3;2,0.005,0.25,82,0.15,92"},
        {"train.history", "1,0.01,0.5,81,0.3,91,7;2,0.005,0.25,82,0.15,92"},
        {"train.seconds", "1.5"}, {"train.seconds", "1.5,x"}, {"train.seconds", "1.5,3,"},
        {"train.epoch_seconds", "-1"},
    };
    ASSERT_EQ(refusal(written()), "");
    for (const Case &c : cases) {
        Meta m = written();
        if (c.value) m[c.key] = c.value;
        else m.erase(c.key);
        std::string msg = refusal(m);
        EXPECT_NE(msg.find(c.key), std::string::npos) << c.key << " = " << (c.value ? c.value : "(removed)")
                                           << ": " << (msg.empty() ? "accepted" : msg);
    }
}

TEST(Checkpoint, SeenFollowsTheSteps)
{
    /* the last step is short: 38 steps cover all 600 images */
    Meta m = written();
    m["train.step"] = "38";
    m["train.seen"] = "600";
    EXPECT_EQ(refusal(m), "");
    m["train.seen"] = "608";
    EXPECT_EQ(refusal(m).rfind("train.seen", 0), 0u);
    /* every epoch done: nothing of a next one */
    m = written();
    m["train.epoch"] = "4";
    m["train.history"] += ";3,0.003,0.2,83,0.1,93;4,0.001,0.1,84,0.05,94";
    m["train.seconds"] += ",4.5,6";
    EXPECT_EQ(refusal(m).rfind("train.step", 0), 0u);
    m["train.step"] = "0";
    m["train.seen"] = "0";
    m["train.correct"] = "0";
    m["train.loss_sum"] = "0";
    EXPECT_EQ(refusal(m), "");
}

TEST(Checkpoint, ValidationColumnsMatchTheRun)
{
    cli_ckpt_run no_val = kRun;
    no_val.has_val = 0;
    Meta m = written();
    EXPECT_EQ(refusal(m, no_val).rfind("train.history", 0), 0u);
    m["train.history"] = "1,0.01,0.5,81,nan,nan;2,0.005,0.25,82,nan,nan";
    EXPECT_EQ(refusal(m, no_val), "");
    EXPECT_EQ(refusal(m).rfind("train.history", 0), 0u);
}

TEST(Checkpoint, EarlyStopEndsTheRun)
{
    cli_ckpt_run run = kRun;
    run.early_stop = 1;
    Meta m = written(); /* validation losses 0.3, 0.15: still falling */
    EXPECT_EQ(refusal(m, run), "");
    /* epoch 2 no better than epoch 1: patience 1 stopped the run there,
     * so no step of epoch 3 was taken */
    m["train.history"] = "1,0.01,0.5,81,0.3,91;2,0.005,0.25,82,0.35,92";
    EXPECT_EQ(refusal(m, run).rfind("train.step", 0), 0u);
    m["train.step"] = "0";
    m["train.seen"] = "0";
    m["train.correct"] = "0";
    m["train.loss_sum"] = "0";
    EXPECT_EQ(refusal(m, run), "");
    /* nor a third epoch, however good */
    m["train.epoch"] = "3";
    m["train.history"] += ";3,0.003,0.2,83,0.1,93";
    m["train.seconds"] += ",4.5";
    std::string msg = refusal(m, run);
    EXPECT_EQ(msg.rfind("train.history", 0), 0u) << msg;
    EXPECT_NE(msg.find("stops after epoch 2, not 3"), std::string::npos) << msg;
    /* with patience 2 the run went on, and epoch 3 is the best */
    run.early_stop = 2;
    EXPECT_EQ(refusal(m, run), "");
    cli_ckpt_state st;
    char buf[512];
    ASSERT_EQ(cli_ckpt_state_read(get, &m, &run, &st, buf, sizeof buf), 0) << buf;
    EXPECT_EQ(cli_ckpt_best_epoch(&st), 3);
    EXPECT_FALSE(cli_ckpt_stops_early(&st, 2));
    cli_ckpt_state_free(&st);
}

} // namespace
