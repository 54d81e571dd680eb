// The log of `bsp explore --log/--resume` (man/bsp-explore.1, LOG): JSON
// lines, the first one the settings every evaluation depends on (model
// fingerprint, data, held-out images, ...), then one line per evaluation,
// {"key": ..., "result": {...}}, written and flushed as it is made so that
// an interrupted run keeps everything it measured. Resuming reads the
// results back and measures only what is missing; decisions are the same
// because the numbers are read back exactly (shortest round-trip decimals).
#pragma once

#include <cstdio>
#include <map>
#include <string>

#include "core/json.hpp"

namespace bsp::explore {

class EvalLog {
 public:
  // header: the settings. resume: a log to read first ("" for none); it must
  // have been made with the same header, else a bsp::Error saying what
  // differs. path: where to write ("" for nowhere); when it is the resumed
  // file, new lines are appended, otherwise it is created afresh and the
  // resumed evaluations copied into it.
  EvalLog(Json header, const std::string& resume, const std::string& path);
  ~EvalLog();
  EvalLog(const EvalLog&) = delete;
  EvalLog& operator=(const EvalLog&) = delete;

  const Json* find(const std::string& key) const;
  void record(const std::string& key, const Json& result);
  size_t resumed() const { return resumed_; }  // evaluations read from the resumed log
  size_t reused() const { return reused_; }    // of those, how many were asked for

 private:
  void write_line(const Json& j);
  Json header_;
  std::map<std::string, Json> done_;
  std::FILE* f_ = nullptr;
  std::string path_;
  size_t resumed_ = 0;
  mutable size_t reused_ = 0;
};

}  // namespace bsp::explore
