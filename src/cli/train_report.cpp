#include "cli/train_report.hpp"

#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cmath>

#include <fmt/format.h>

#include "core/error.hpp"
#include "core/json.hpp"

namespace bsp::cli {

namespace {
double now_s() {
  return std::chrono::duration<double>(std::chrono::steady_clock::now().time_since_epoch()).count();
}
bool ends_with(const std::string& s, const std::string& suf) {
  return s.size() >= suf.size() && s.compare(s.size() - suf.size(), suf.size(), suf) == 0;
}
}  // namespace

std::string clock_str(double s) {
  if (!std::isfinite(s) || s < 0) s = 0;
  const int64_t t = static_cast<int64_t>(s + 0.5);
  if (t >= 3600) return fmt::format("{}:{:02}:{:02}", t / 3600, (t / 60) % 60, t % 60);
  return fmt::format("{}:{:02}", t / 60, t % 60);
}

TrainReport::TrainReport(FILE* lines, const std::string& log_path) : lines_(lines) {
  tty_ = isatty(STDERR_FILENO) != 0;
  if (!log_path.empty()) {
    log_ = std::fopen(log_path.c_str(), "a");
    if (!log_) fail("cannot open log '{}': {}", log_path, errno_message(errno));
    csv_ = ends_with(log_path, ".csv");
    if (csv_ && std::ftell(log_) == 0) {
      std::fprintf(log_, "epoch,epochs,lr,loss,train_acc,test_loss,test_acc,seconds,images_per_s\n");
      std::fflush(log_);
    }
  }
}

TrainReport::~TrainReport() {
  clear_bar();
  if (log_) std::fclose(log_);
}

void TrainReport::clear_bar() {
  if (!bar_shown_) return;
  std::fprintf(stderr, "\r\033[K");
  std::fflush(stderr);
  bar_shown_ = false;
}

void TrainReport::progress(const train::Progress& p) {
  if (!lines_) return;  // --quiet, or a data-parallel rank other than 0
  if (!tty_) {
    // Not a terminal (a log, a batch job): a plain line each time the epoch
    // passes another tenth, with the epoch lines.
    const int64_t tenth = p.steps ? 10 * p.step / p.steps : 0;
    if (p.epoch != tenth_epoch_) {
      tenth_epoch_ = p.epoch;
      last_tenth_ = 10 * (p.step - 1) / std::max<int64_t>(1, p.steps);  // a resumed epoch starts where it stood
    }
    if (tenth <= last_tenth_ || p.step == p.steps) return;
    last_tenth_ = tenth;
    std::fprintf(lines_, "  %3lld%% of epoch %lld/%lld: step %lld/%lld  loss %.4f  %.0f img/s  ETA %s\n",
                 static_cast<long long>(10 * tenth), static_cast<long long>(p.epoch), static_cast<long long>(p.epochs),
                 static_cast<long long>(p.step), static_cast<long long>(p.steps), p.loss, p.images_per_s,
                 clock_str(p.eta_s).c_str());
    std::fflush(lines_);
    return;
  }
  const double t = now_s();
  if (p.step != p.steps && t - last_draw_ < 0.2) return;
  last_draw_ = t;
  constexpr int kWidth = 24;
  const int fill = p.steps ? static_cast<int>(kWidth * p.step / p.steps) : 0;
  std::string bar(static_cast<size_t>(fill), '#');
  bar.append(static_cast<size_t>(kWidth - fill), '.');
  std::fprintf(stderr, "\r\033[Kepoch %lld/%lld [%s] %lld/%lld loss %.4f %.0f img/s ETA %s",
               static_cast<long long>(p.epoch), static_cast<long long>(p.epochs), bar.c_str(),
               static_cast<long long>(p.step), static_cast<long long>(p.steps), p.loss, p.images_per_s,
               clock_str(p.eta_s).c_str());
  std::fflush(stderr);
  bar_shown_ = true;
}

void TrainReport::note(const std::string& line) {
  if (!lines_) return;
  clear_bar();
  std::fprintf(lines_, "%s\n", line.c_str());
  std::fflush(lines_);
}

void TrainReport::epoch(const train::EpochRecord& r) {
  if (lines_) {
    std::string test = r.has_test ? fmt::format("  test {:.2f}% (loss {:.4f})", 100 * r.test_acc, r.test_loss) : "";
    std::string density = r.density >= 0 ? fmt::format("  density {:.4f}", r.density) : "";
    std::string wait = r.data_wait_s >= 0 ? fmt::format("  waited {:.1f} s for data", r.data_wait_s) : "";
    note(fmt::format("epoch {}/{}  lr {:.4g}  loss {:.4f}  train {:.2f}%{}{}  {:.1f} s  {:.0f} img/s{}", r.epoch,
                     r.epochs, r.lr, r.loss, 100 * r.train_acc, test, density, r.seconds, r.images_per_s, wait));
  }
  if (!log_) return;
  if (csv_) {
    std::fprintf(log_, "%lld,%lld,%.8g,%.6f,%.6f,%s,%s,%.3f,%.1f\n", static_cast<long long>(r.epoch),
                 static_cast<long long>(r.epochs), r.lr, r.loss, r.train_acc,
                 r.has_test ? fmt::format("{:.6f}", r.test_loss).c_str() : "",
                 r.has_test ? fmt::format("{:.6f}", r.test_acc).c_str() : "", r.seconds, r.images_per_s);
  } else {
    Json j = Json::object();
    j["epoch"] = r.epoch;
    j["epochs"] = r.epochs;
    j["lr"] = r.lr;
    j["loss"] = r.loss;
    j["train_acc"] = r.train_acc;
    j["test_loss"] = r.has_test ? Json(r.test_loss) : Json();
    j["test_acc"] = r.has_test ? Json(r.test_acc) : Json();
    j["seconds"] = r.seconds;
    j["images_per_s"] = r.images_per_s;
    if (r.density >= 0) j["density"] = r.density;
    if (r.data_wait_s >= 0) j["data_wait_s"] = r.data_wait_s;
    std::fprintf(log_, "%s\n", j.dump().c_str());
  }
  std::fflush(log_);
}

}  // namespace bsp::cli
