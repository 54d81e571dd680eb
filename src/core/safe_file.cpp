#include "core/safe_file.hpp"

#include <fcntl.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include "core/error.hpp"

namespace bsp {

namespace {

// Temporary files to remove if a signal ends the process. Fixed storage so
// that the handler does nothing but async-signal-safe calls.
constexpr size_t kMaxTemps = 16;
constexpr size_t kMaxPath = 4096;
std::array<char[kMaxPath], kMaxTemps> g_temps{};
std::array<std::atomic<bool>, kMaxTemps> g_used{};
std::mutex g_temps_mutex;

int register_temp(const std::string& path) {
  std::lock_guard<std::mutex> lock(g_temps_mutex);
  if (path.size() >= kMaxPath) return -1;
  for (size_t i = 0; i < kMaxTemps; ++i) {
    if (!g_used[i].load()) {
      std::memcpy(g_temps[i], path.c_str(), path.size() + 1);
      g_used[i].store(true);
      return static_cast<int>(i);
    }
  }
  return -1;
}

void unregister_temp(int slot) {
  if (slot < 0) return;
  std::lock_guard<std::mutex> lock(g_temps_mutex);
  g_used[static_cast<size_t>(slot)].store(false);
}

extern "C" void cleanup_on_signal(int sig) {
  for (size_t i = 0; i < kMaxTemps; ++i)
    if (g_used[i].load()) unlink(g_temps[i]);
  signal(sig, SIG_DFL);
  raise(sig);
}

volatile sig_atomic_t g_latched = 0;

extern "C" void latch_signal(int sig) {
  if (g_latched) cleanup_on_signal(sig);  // second signal: give up now
  g_latched = sig;
}

std::string temp_dir() {
  const char* t = std::getenv("TMPDIR");
  return (t && *t) ? t : "/tmp";
}

// Creates an empty temporary file from a mkstemp template; returns its path.
std::string make_temp(std::string tmpl, const std::string& what) {
  int fd = mkstemp(tmpl.data());
  if (fd < 0) fail("cannot create a temporary file for {}: {}", what, errno_message(errno));
  // mkstemp makes 0600; give the file the usual permissions under the umask.
  mode_t mask = umask(0);
  umask(mask);
  fchmod(fd, 0666 & ~mask);
  close(fd);
  return tmpl;
}

void copy_fd(int in, int out, const std::string& what) {
  std::array<char, 1 << 16> buf;
  while (true) {
    ssize_t n = read(in, buf.data(), buf.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      fail("cannot read {}: {}", what, errno_message(errno));
    }
    if (n == 0) break;
    for (ssize_t off = 0; off < n;) {
      ssize_t w = write(out, buf.data() + off, static_cast<size_t>(n - off));
      if (w < 0) {
        if (errno == EINTR) continue;
        fail("cannot write {}: {}", what, errno_message(errno));
      }
      off += w;
    }
  }
}

}  // namespace

void install_cleanup_handlers() {
  struct sigaction sa {};
  sa.sa_handler = cleanup_on_signal;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGINT, SIGTERM, SIGHUP}) sigaction(s, &sa, nullptr);
}

SignalLatch::SignalLatch() {
  g_latched = 0;
  struct sigaction sa {};
  sa.sa_handler = latch_signal;
  sigemptyset(&sa.sa_mask);
  for (int s : {SIGINT, SIGTERM}) sigaction(s, &sa, nullptr);
}

SignalLatch::~SignalLatch() { install_cleanup_handlers(); }

int SignalLatch::signal() const { return g_latched; }

OutputFile::OutputFile(std::string target) : target_(std::move(target)) {
  if (target_.empty()) fail_usage("empty output path");
  if (target_ == "-") {
    if (isatty(STDOUT_FILENO)) fail_usage("refusing to write a binary model file to a terminal (use -o FILE)");
    temp_ = make_temp(temp_dir() + "/bsp-out.XXXXXX", "stdout");
  } else {
    auto slash = target_.rfind('/');
    std::string dir = slash == std::string::npos ? "." : target_.substr(0, slash == 0 ? 1 : slash);
    std::string base = slash == std::string::npos ? target_ : target_.substr(slash + 1);
    if (base.empty()) fail_usage("output '{}' is a directory", target_);
    struct stat st {};
    if (stat(target_.c_str(), &st) == 0 && S_ISDIR(st.st_mode)) fail_usage("output '{}' is a directory", target_);
    if (stat(dir.c_str(), &st) != 0) fail("cannot write '{}': directory '{}' does not exist", target_, dir);
    temp_ = make_temp(dir + "/." + base + ".tmp.XXXXXX", fmt::format("'{}'", target_));
  }
  slot_ = register_temp(temp_);
}

OutputFile::~OutputFile() {
  if (!committed_ && !temp_.empty()) unlink(temp_.c_str());
  unregister_temp(slot_);
  slot_ = -1;
}

void OutputFile::commit() {
  if (committed_) return;
  if (target_ == "-") {
    int fd = open(temp_.c_str(), O_RDONLY);
    if (fd < 0) fail("cannot reopen the temporary output: {}", errno_message(errno));
    try {
      copy_fd(fd, STDOUT_FILENO, "stdout");
    } catch (...) {
      close(fd);
      throw;
    }
    close(fd);
    unlink(temp_.c_str());
  } else {
    // fsync so that a crash after the rename cannot leave an empty target.
    int fd = open(temp_.c_str(), O_RDONLY);
    if (fd >= 0) {
      fsync(fd);
      close(fd);
    }
    if (rename(temp_.c_str(), target_.c_str()) != 0)
      fail("cannot write '{}': {}", target_, errno_message(errno));
  }
  committed_ = true;
  unregister_temp(slot_);
  slot_ = -1;
}

InputFile::InputFile(std::string path) : path_(std::move(path)) {
  if (path_ == "-") {
    display_ = "<stdin>";
    if (isatty(STDIN_FILENO)) fail_usage("no model on stdin (it is a terminal)");
    path_ = make_temp(temp_dir() + "/bsp-in.XXXXXX", "stdin");
    temporary_ = true;
    slot_ = register_temp(path_);
    int fd = open(path_.c_str(), O_WRONLY | O_TRUNC);
    if (fd < 0) fail("cannot spool stdin: {}", errno_message(errno));
    try {
      copy_fd(STDIN_FILENO, fd, "stdin");
    } catch (...) {
      close(fd);
      unlink(path_.c_str());
      unregister_temp(slot_);
      throw;
    }
    close(fd);
  } else {
    display_ = path_;
  }
}

InputFile::~InputFile() {
  if (temporary_) {
    unlink(path_.c_str());
    unregister_temp(slot_);
  }
}

bool same_file(const std::string& a, const std::string& b) {
  if (a == "-" || b == "-") return false;
  struct stat sa {}, sb {};
  if (stat(a.c_str(), &sa) != 0 || stat(b.c_str(), &sb) != 0) return false;
  return sa.st_dev == sb.st_dev && sa.st_ino == sb.st_ino;
}

}  // namespace bsp
