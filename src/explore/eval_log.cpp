#include "explore/eval_log.hpp"

#include <cerrno>
#include <cstring>
#include <vector>

#include "core/error.hpp"
#include "core/safe_file.hpp"

namespace bsp::explore {

namespace {

std::string read_all(const std::string& path) {
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (!f) fail("cannot resume from '{}': {}", path, std::strerror(errno));
  std::string text;
  char buf[65536];
  size_t got;
  while ((got = std::fread(buf, 1, sizeof buf, f)) > 0) text.append(buf, got);
  const bool bad = std::ferror(f);
  std::fclose(f);
  if (bad) fail("cannot resume from '{}': read error", path);
  return text;
}

// Names the first setting that differs.
std::string first_difference(const Json& want, const Json& got) {
  for (const auto& [k, v] : want.as_object()) {
    const Json* g = got.find(k);
    if (!g) return fmt::format("it has no '{}'", k);
    if (g->dump() != v.dump())
      return k == "model" ? std::string("it was made for another model (its weights, masks or rules differ)")
                          : fmt::format("it was made with {} {}, not {}", k, g->dump(), v.dump());
  }
  return "its settings differ";
}

}  // namespace

EvalLog::EvalLog(Json header, const std::string& resume, const std::string& path)
    : header_(std::move(header)), path_(path) {
  std::vector<std::pair<std::string, Json>> order;
  if (!resume.empty()) {
    const std::string text = read_all(resume);
    size_t pos = 0;
    int line_no = 0;
    while (pos < text.size()) {
      size_t end = text.find('\n', pos);
      const bool last = end == std::string::npos;
      if (last) end = text.size();
      const std::string line = text.substr(pos, end - pos);
      pos = end + 1;
      ++line_no;
      Json j;
      try {
        j = Json::parse(line);
      } catch (const Error&) {
        // A line cut short by an interruption: only ever the last one.
        if (last) break;
        fail("cannot resume from '{}': line {} is not JSON", resume, line_no);
      }
      if (line_no == 1) {
        if (!j.is_object() || !j.contains("bsp_explore_log"))
          fail("cannot resume from '{}': it is not a bsp explore log", resume);
        if (j.dump() != header_.dump()) fail("cannot resume from '{}': {}", resume, first_difference(header_, j));
        continue;
      }
      if (!j.is_object() || !j.contains("key") || !j.at("key").is_string() || !j.contains("result"))
        fail("cannot resume from '{}': line {} is not an evaluation", resume, line_no);
      if (done_.emplace(j.at("key").as_string(), j.at("result")).second) order.emplace_back(j.at("key").as_string(), j.at("result"));
    }
    if (line_no == 0) fail("cannot resume from '{}': the file is empty", resume);
    resumed_ = done_.size();
  }
  if (path_.empty()) return;
  // The log written afresh (a resumed one through a temporary file renamed
  // over it, which also drops a line an interruption cut short), then
  // appended to evaluation by evaluation.
  {
    OutputFile out(path_);
    f_ = std::fopen(out.temp_path().c_str(), "wb");
    if (!f_) fail("cannot write the log '{}': {}", path_, std::strerror(errno));
    write_line(header_);
    for (const auto& [k, r] : order) {
      Json j = Json::object();
      j["key"] = k;
      j["result"] = r;
      write_line(j);
    }
    const bool bad = std::fclose(f_) != 0;
    f_ = nullptr;
    if (bad) fail("cannot write the log '{}': {}", path_, std::strerror(errno));
    out.commit();
  }
  f_ = std::fopen(path_.c_str(), "ab");
  if (!f_) fail("cannot write the log '{}': {}", path_, std::strerror(errno));
}

EvalLog::~EvalLog() {
  if (f_) std::fclose(f_);
}

const Json* EvalLog::find(const std::string& key) const {
  auto it = done_.find(key);
  if (it == done_.end()) return nullptr;
  ++reused_;
  return &it->second;
}

void EvalLog::record(const std::string& key, const Json& result) {
  done_[key] = result;
  if (!f_) return;
  Json j = Json::object();
  j["key"] = key;
  j["result"] = result;
  write_line(j);
}

void EvalLog::write_line(const Json& j) {
  const std::string s = j.dump() + "\n";
  if (std::fwrite(s.data(), 1, s.size(), f_) != s.size() || std::fflush(f_) != 0)
    fail("cannot write the log '{}': {}", path_, std::strerror(errno));
}

}  // namespace bsp::explore
