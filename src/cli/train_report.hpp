// What bsp finetune shows while it trains: a progress bar on a terminal
// (stderr), one line per epoch, and the --log file (CSV or JSON lines).
#pragma once

#include <cstdio>
#include <string>

#include "train/trainer.hpp"

namespace bsp::cli {

class TrainReport {
 public:
  // lines: where the epoch lines go (stdout, or stderr when the model goes
  // to stdout; null with --quiet). log_path: empty for none; ".csv" for CSV,
  // anything else JSON lines. The log is opened (appending) right away.
  TrainReport(FILE* lines, const std::string& log_path);
  ~TrainReport();
  TrainReport(const TrainReport&) = delete;
  TrainReport& operator=(const TrainReport&) = delete;

  void progress(const train::Progress& p);
  void epoch(const train::EpochRecord& r);
  void note(const std::string& line);  // an informative line, with the epoch lines
  void clear_bar();

 private:
  FILE* lines_;
  FILE* log_ = nullptr;
  bool csv_ = false;
  bool tty_ = false;
  bool bar_shown_ = false;
  double last_draw_ = -1;
  int64_t tenth_epoch_ = -1, last_tenth_ = 0;  // not a terminal: the epoch and the last tenth reported
};

// "1:02:03" / "4:05"
std::string clock_str(double seconds);

}  // namespace bsp::cli
