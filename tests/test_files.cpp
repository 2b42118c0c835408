/* test_files.cpp — the files a user names: every loader refuses a FIFO (or
 * a device, or a directory) at once instead of waiting on it, and every
 * save is atomic: through a temporary file made with O_EXCL (a link planted
 * at a temporary name is never followed), into a device without replacing
 * it, keeping a symbolic link, keeping the old file's mode, removing what
 * a killed save left behind, and refusing a path it cannot write before
 * any work. */
#include "testutil.h"

#include <gtest/gtest.h>

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <sys/resource.h>
#include <sys/sysmacros.h>
#include <sys/wait.h>
#include <unistd.h>

#include <filesystem>
#include <fstream>
#include <functional>
#include <string>
#include <thread>

namespace fs = std::filesystem;

namespace {

const char *kArch = "input 1x4x4\nflatten\ndense 3\n";

std::string read_all(const std::string &p)
{
    std::ifstream f(p, std::ios::binary);
    return std::string((std::istreambuf_iterator<char>(f)), std::istreambuf_iterator<char>());
}

void write_all(const std::string &p, const std::string &s)
{
    std::ofstream f(p, std::ios::binary);
    f << s;
}

cnn_model *small_model()
{
    cnn_model *m = nullptr;
    EXPECT_EQ(cnn_model_from_text(kArch, "small", &m), CNN_OK) << cnn_errmsg();
    return m;
}

/* Run fn in a child process that gets `seconds` to finish. Returns "" if
 * it returned true in time, else what went wrong. A hang in the code under
 * test then fails the test instead of stopping the suite. */
std::string in_child(const std::function<bool(std::string &)> &fn, unsigned seconds = 10)
{
    int pipefd[2];
    if (pipe(pipefd) != 0) return "pipe failed";
    pid_t pid = fork();
    if (pid < 0) return "fork failed";
    if (pid == 0) {
        close(pipefd[0]);
        alarm(seconds);
        std::string why;
        bool ok = fn(why);
        if (!ok && write(pipefd[1], why.data(), why.size()) < 0) _exit(3);
        _exit(ok ? 0 : 1);
    }
    close(pipefd[1]);
    std::string why;
    char buf[512];
    ssize_t r;
    while ((r = read(pipefd[0], buf, sizeof buf)) > 0) why.append(buf, (size_t)r);
    close(pipefd[0]);
    int status = 0;
    waitpid(pid, &status, 0);
    if (WIFSIGNALED(status) && WTERMSIG(status) == SIGALRM)
        return "did not finish within " + std::to_string(seconds) + " s (hung)";
    if (WIFSIGNALED(status)) return "killed by signal " + std::to_string(WTERMSIG(status));
    if (WEXITSTATUS(status) != 0) return why.empty() ? "failed" : why;
    return "";
}

/* A pid that no process has: a child that has been reaped. */
pid_t dead_pid()
{
    pid_t p = fork();
    if (p == 0) _exit(0);
    waitpid(p, nullptr, 0);
    return p;
}

class Files : public ::testing::Test {
  protected:
    TempDir tmp{"cnn_files"};
    std::string path(const std::string &n) { return tmp / n; }
};

}  // namespace

/* ------------------------------------------------------------------ inputs */

TEST_F(Files, EveryLoaderRefusesAFifoAtOnce)
{
    const std::string fifo = path("pipe");
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    const std::string idx_ok = path("labels");
    write_all(idx_ok, std::string("\0\0\x08\x01\0\0\0\x01\x03", 9));
    struct Loader {
        const char *name;
        std::function<cnn_status()> run;
    } loaders[] = {
        {"model", [&] { cnn_model *m = nullptr; cnn_status s = cnn_model_load(fifo.c_str(), &m); cnn_model_free(m); return s; }},
        {"weights", [&] { cnn_model *m = small_model(); cnn_status s = cnn_model_load_weights(m, fifo.c_str()); cnn_model_free(m); return s; }},
        {"architecture", [&] { cnn_model *m = nullptr; cnn_status s = cnn_model_from_file(fifo.c_str(), &m); cnn_model_free(m); return s; }},
        {"idx images", [&] { cnn_dataset d{}; cnn_status s = cnn_idx_load(fifo.c_str(), idx_ok.c_str(), &d); cnn_dataset_free(&d); return s; }},
        {"idx labels", [&] { cnn_dataset d{}; cnn_status s = cnn_idx_load(idx_ok.c_str(), fifo.c_str(), &d); cnn_dataset_free(&d); return s; }},
        {"image", [&] { uint8_t px[28 * 28]; return cnn_image_load_mnist(fifo.c_str(), px); }},
    };
    for (auto &l : loaders) {
        std::string err = in_child([&](std::string &why) {
            cnn_status s = l.run();
            std::string msg = cnn_errmsg();
            if (s != CNN_ERR_IO || msg.find(fifo) == std::string::npos ||
                msg.find("FIFO") == std::string::npos) {
                why = std::string(cnn_status_name(s)) + ": " + msg;
                return false;
            }
            return true;
        });
        EXPECT_EQ(err, "") << l.name;
    }
}

TEST_F(Files, LoadersRefuseDevicesAndDirectories)
{
    cnn_model *m = nullptr;
    EXPECT_EQ(cnn_model_load("/dev/zero", &m), CNN_ERR_IO);
    EXPECT_NE(std::string(cnn_errmsg()).find("character device"), std::string::npos) << cnn_errmsg();
    EXPECT_EQ(cnn_model_from_file(tmp.path.c_str(), &m), CNN_ERR_IO);
    EXPECT_NE(std::string(cnn_errmsg()).find("is a directory"), std::string::npos) << cnn_errmsg();
    uint8_t px[28 * 28];
    EXPECT_EQ(cnn_image_load_mnist("/dev/zero", px), CNN_ERR_IO);
    EXPECT_EQ(m, nullptr);
}

/* ----------------------------------------------------------------- outputs */

TEST_F(Files, SaveNeverFollowsALinkAtATemporaryName)
{
    cnn_model *m = small_model();
    const std::string p = path("m.safetensors"), victim = path("victim");
    write_all(victim, "precious");
    // links at every name an older scheme (<path>.tmp.<pid>) would use
    ASSERT_EQ(symlink(victim.c_str(), (p + ".tmp." + std::to_string(getpid())).c_str()), 0);
    ASSERT_EQ(cnn_model_save(m, p.c_str(), 0), CNN_OK) << cnn_errmsg();
    EXPECT_EQ(read_all(victim), "precious");
    EXPECT_TRUE(fs::is_symlink(p + ".tmp." + std::to_string(getpid())));
    EXPECT_TRUE(fs::is_regular_file(fs::symlink_status(p)));
    cnn_model_free(m);
}

TEST_F(Files, SaveThroughASymlinkKeepsTheLink)
{
    cnn_model *m = small_model();
    fs::create_directory(path("real"));
    const std::string target = path("real/m.safetensors"), link = path("m.safetensors");
    write_all(target, "old");
    ASSERT_EQ(symlink(target.c_str(), link.c_str()), 0);
    ASSERT_EQ(cnn_model_save(m, link.c_str(), 0), CNN_OK) << cnn_errmsg();
    EXPECT_TRUE(fs::is_symlink(link));
    EXPECT_NE(read_all(target), "old");
    cnn_model *back = nullptr;
    EXPECT_EQ(cnn_model_load(link.c_str(), &back), CNN_OK) << cnn_errmsg();
    cnn_model_free(back);
    // a dangling link is refused, and nothing is created
    const std::string dangling = path("dangling");
    ASSERT_EQ(symlink(path("nowhere/x").c_str(), dangling.c_str()), 0);
    EXPECT_EQ(cnn_model_save(m, dangling.c_str(), 0), CNN_ERR_IO);
    EXPECT_NE(std::string(cnn_errmsg()).find("symbolic link"), std::string::npos) << cnn_errmsg();
    cnn_model_free(m);
}

TEST_F(Files, SaveIntoACharacterDeviceKeepsTheDevice)
{
    cnn_model *m = small_model();
    // /dev/null itself: as root a rename would replace the device node
    ASSERT_EQ(cnn_model_save(m, "/dev/null", 0), CNN_OK) << cnn_errmsg();
    struct stat sb;
    ASSERT_EQ(stat("/dev/null", &sb), 0);
    EXPECT_TRUE(S_ISCHR(sb.st_mode));
    // a null device of our own, where we may make one
    const std::string dev = path("null");
    if (mknod(dev.c_str(), S_IFCHR | 0666, makedev(1, 3)) == 0) {
        ASSERT_EQ(cnn_model_save(m, dev.c_str(), 0), CNN_OK) << cnn_errmsg();
        ASSERT_EQ(stat(dev.c_str(), &sb), 0);
        EXPECT_TRUE(S_ISCHR(sb.st_mode));
        EXPECT_EQ(cnn_check_writable(dev.c_str()), CNN_OK) << cnn_errmsg();
    }
    for (auto &e : fs::directory_iterator(tmp.path))
        EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
    cnn_model_free(m);
}

TEST_F(Files, AFifoIsWrittenOnlyWithAReader)
{
    const std::string fifo = path("out.fifo");
    ASSERT_EQ(mkfifo(fifo.c_str(), 0600), 0);
    std::string err = in_child([&](std::string &why) {
        cnn_outfile o;
        cnn_status s = cnn_out_open(&o, fifo.c_str());
        if (s != CNN_ERR_IO || std::string(cnn_errmsg()).find("no process reads") == std::string::npos) {
            why = cnn_errmsg();
            if (s == CNN_OK) cnn_out_abort(&o);
            return false;
        }
        return cnn_check_writable(fifo.c_str()) == CNN_ERR_IO;
    });
    EXPECT_EQ(err, "");
    // with a reader, the bytes arrive and the FIFO stays a FIFO
    std::string got;
    int rfd = open(fifo.c_str(), O_RDONLY | O_NONBLOCK);
    ASSERT_GE(rfd, 0);
    cnn_outfile o;
    ASSERT_EQ(cnn_out_write(&o, fifo.c_str(), "hello", 5), CNN_OK) << cnn_errmsg();
    char buf[16];
    ssize_t r = read(rfd, buf, sizeof buf);
    close(rfd);
    EXPECT_EQ(std::string(buf, r > 0 ? (size_t)r : 0), "hello");
    struct stat sb;
    ASSERT_EQ(lstat(fifo.c_str(), &sb), 0);
    EXPECT_TRUE(S_ISFIFO(sb.st_mode));
}

TEST_F(Files, StaleTemporaryFilesOfDeadProcessesAreRemoved)
{
    cnn_model *m = small_model();
    const std::string p = path("m.safetensors");
    const std::string dead = std::to_string(dead_pid());
    const std::string stale1 = p + ".tmp." + dead, stale2 = p + ".tmp." + dead + ".a1B2c3";
    const std::string live = p + ".tmp.1.a1B2c3";        // pid 1 is alive
    const std::string other = path("n.safetensors.tmp." + dead);  // another file's
    for (auto &s : {stale1, stale2, live, other}) write_all(s, "half a model");
    ASSERT_EQ(cnn_model_save(m, p.c_str(), 0), CNN_OK) << cnn_errmsg();
    EXPECT_FALSE(fs::exists(stale1));
    EXPECT_FALSE(fs::exists(stale2));
    EXPECT_TRUE(fs::exists(live));
    EXPECT_TRUE(fs::exists(other));
    cnn_model_free(m);
}

TEST_F(Files, ModesFollowTheOldFileOrTheUmask)
{
    cnn_model *m = small_model();
    const std::string fresh = path("fresh"), kept = path("kept");
    mode_t old = umask(022);
    ASSERT_EQ(cnn_model_save(m, fresh.c_str(), 0), CNN_OK) << cnn_errmsg();
    write_all(kept, "x");
    ASSERT_EQ(chmod(kept.c_str(), 0640), 0);
    ASSERT_EQ(cnn_model_save(m, kept.c_str(), 0), CNN_OK) << cnn_errmsg();
    umask(old);
    struct stat sb;
    ASSERT_EQ(stat(fresh.c_str(), &sb), 0);
    EXPECT_EQ(sb.st_mode & 0777, 0644u);
    ASSERT_EQ(stat(kept.c_str(), &sb), 0);
    EXPECT_EQ(sb.st_mode & 0777, 0640u);
    cnn_model_free(m);
}

TEST_F(Files, CheckWritableSaysWhyAndLeavesNothing)
{
    EXPECT_EQ(cnn_check_writable(path("ok.safetensors").c_str()), CNN_OK) << cnn_errmsg();
    EXPECT_FALSE(fs::exists(path("ok.safetensors")));
    EXPECT_TRUE(fs::is_empty(tmp.path));

    EXPECT_EQ(cnn_check_writable(path("no/such/m.safetensors").c_str()), CNN_ERR_IO);
    EXPECT_NE(std::string(cnn_errmsg()).find("does not exist"), std::string::npos) << cnn_errmsg();
    EXPECT_NE(std::string(cnn_errmsg()).find(path("no/such")), std::string::npos) << cnn_errmsg();

    EXPECT_EQ(cnn_check_writable(tmp.path.c_str()), CNN_ERR_IO);
    EXPECT_NE(std::string(cnn_errmsg()).find("is a directory"), std::string::npos) << cnn_errmsg();
    EXPECT_EQ(cnn_check_writable((tmp.path.string() + "/").c_str()), CNN_ERR_IO);
    EXPECT_EQ(cnn_check_writable(""), CNN_ERR_ARG);
}

TEST_F(Files, AFailedWriteIsReportedAndLeavesTheOldFile)
{
    const std::string p = path("out.txt");
    write_all(p, "old");
    std::string err = in_child([&](std::string &why) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit lim = {10, 10};  // 10 bytes: the disk is "full"
        setrlimit(RLIMIT_FSIZE, &lim);
        std::string big(4096, 'x');
        cnn_outfile o;
        cnn_status s = cnn_out_write(&o, p.c_str(), big.data(), big.size());
        std::string msg = cnn_errmsg();
        if (s != CNN_ERR_IO || msg.find(p) == std::string::npos ||
            msg.find("too large") == std::string::npos) {  // strerror(EFBIG)
            why = msg;
            return false;
        }
        return true;
    });
    EXPECT_EQ(err, "");
    EXPECT_EQ(read_all(p), "old");
    for (auto &e : fs::directory_iterator(tmp.path))
        EXPECT_EQ(e.path().filename().string().find(".tmp."), std::string::npos) << e.path();
}
