/* test_atomic_save.cpp — a save killed at a random moment (SIGKILL: no
 * cleanup runs) never leaves a model file that fails to load or holds a mix
 * of two versions: the previous file stays intact until the rename. */
#include "testutil.h"

#include <gtest/gtest.h>

#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

static const char *kArch =
    "input 1x28x28\n"
    "conv 32 3x3\n"
    "relu\n"
    "maxpool 2\n"
    "flatten\n"
    "dense 64\n"
    "relu\n"
    "dense 10\n";

/* Every weight of version v is the float v: a loaded file is intact if all
 * its weights are one and the same version. */
static void fill(cnn_model *m, float v)
{
    for (int i = 0; i < cnn_model_num_tensors(m); i++) {
        cnn_tensor t;
        cnn_model_tensor(m, i, &t);
        for (size_t j = 0; j < t.size; j++) t.data[j] = v;
    }
}

static int count_temp_files(const std::string &dir)
{
    int n = 0;
    DIR *d = opendir(dir.c_str());
    if (!d) return -1;
    while (struct dirent *e = readdir(d))
        if (std::strstr(e->d_name, ".tmp")) n++;
    closedir(d);
    return n;
}

TEST(AtomicSave, SigkillDuringSavesNeverCorruptsTheModelFile)
{
    char tmpl[] = "/tmp/cnn_atomic_XXXXXX";
    ASSERT_NE(mkdtemp(tmpl), nullptr);
    const std::string dir = tmpl, path = dir + "/model.safetensors";

    cnn_model *m = nullptr;
    ASSERT_EQ(cnn_model_from_text(kArch, "atomic", &m), CNN_OK) << cnn_errmsg();
    fill(m, 1.0f);
    ASSERT_EQ(cnn_model_save(m, path.c_str(), 0), CNN_OK) << cnn_errmsg();

    cnn_rng r;
    cnn_rng_seed(&r, 2024);
    int kills = 0, versions_seen[64] = {0};
    for (int round = 0; round < 30; round++) {
        int done[2];
        ASSERT_EQ(pipe(done), 0);
        pid_t pid = fork();
        ASSERT_GE(pid, 0);
        if (pid == 0) {
            /* the child saves version after version as fast as it can,
             * telling the parent after each save (without ever waiting) */
            close(done[0]);
            fcntl(done[1], F_SETFL, O_NONBLOCK);
            for (int v = 2;; v++) {
                fill(m, (float)(v % 60 + 2));
                if (cnn_model_save(m, path.c_str(), v % 3 == 0) != CNN_OK) _exit(3);
                if (write(done[1], "s", 1) < 0) { /* a full pipe: the parent knows enough */ }
            }
        }
        close(done[1]);
        /* every other round, wait for a finished save first, so that kills
         * land after new versions however slowly a loaded machine runs the
         * child; then kill anywhere in the next few saves (a save, write +
         * two fsyncs + rename, takes a few to tens of ms here) */
        char c;
        if (round % 2 == 1) ASSERT_EQ(read(done[0], &c, 1), 1) << "the saving child died";
        usleep(1000 + cnn_rng_below(&r, 150000));
        kill(pid, SIGKILL);
        close(done[0]);
        int status = 0;
        waitpid(pid, &status, 0);
        ASSERT_TRUE(WIFSIGNALED(status)) << "the saving child stopped on its own: " << status;
        kills++;

        cnn_model *back = nullptr;
        ASSERT_EQ(cnn_model_load(path.c_str(), &back), CNN_OK)
            << "round " << round << ": " << cnn_errmsg();
        cnn_tensor t0;
        cnn_model_tensor(back, 0, &t0);
        const float v = t0.data[0];
        for (int i = 0; i < cnn_model_num_tensors(back); i++) {
            cnn_tensor t;
            cnn_model_tensor(back, i, &t);
            for (size_t j = 0; j < t.size; j++)
                ASSERT_EQ(t.data[j], v) << "round " << round << ": a mix of two versions in "
                                        << t.name;
        }
        if (v >= 0 && v < 64) versions_seen[(int)v] = 1;
        cnn_model_free(back);
        /* the killed save's temporary file may remain; it is never the model */
        for (DIR *d = opendir(dir.c_str()); d;) {
            struct dirent *e = readdir(d);
            if (!e) {
                closedir(d);
                break;
            }
            if (std::strstr(e->d_name, ".tmp")) unlink((dir + "/" + e->d_name).c_str());
        }
    }
    EXPECT_EQ(kills, 30);
    int distinct = 0;
    for (int v : versions_seen) distinct += v;
    /* the kills landed at different points: more than one version survived */
    EXPECT_GT(distinct, 1);
    EXPECT_EQ(count_temp_files(dir), 0);
    cnn_model_free(m);
    unlink(path.c_str());
    rmdir(dir.c_str());
}
