#include "train/memory.hpp"

#include <malloc.h>

#include <algorithm>
#include <cmath>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "core/error.hpp"

namespace bsp::train {

namespace {

// Heap bytes in use, over every arena (glibc's mallinfo2).
double heap_in_use() {
  const struct mallinfo2 mi = mallinfo2();
  return static_cast<double>(mi.uordblks + mi.hblkhd);
}

// Heap bytes a Net of `images` holds after one training step on zeros,
// and its value buffers' bytes.
std::pair<double, double> probe(const Model& m, NetOptions o, int64_t images) {
  Model c = clone_graph(m);  // the step updates batchnorm's running statistics
  const double before = heap_in_use();
  o.max_batch = images;
  o.comm = nullptr;
  o.training = true;
  Net net(c, o);
  net.forward(images, Mode::Train);
  Value& out = net.output();
  std::fill(out.grad.begin(), out.grad.end(), 0.0f);
  net.backward();
  return {heap_in_use() - before, net.value_bytes()};
}

}  // namespace

TrainMemory probe_train_memory(const Model& m, const NetOptions& o) {
  const auto [heap1, values1] = probe(m, o, 1);
  const auto [heap2, values2] = probe(m, o, 2);
  TrainMemory t;
  t.per_image_bytes = std::max(heap2 - heap1, values2 - values1);
  t.fixed_bytes = std::max(0.0, heap1 - t.per_image_bytes);
  return t;
}

double available_memory_bytes() {
  double avail = 0;
  std::ifstream mi("/proc/meminfo");
  for (std::string line; std::getline(mi, line);)
    if (line.rfind("MemAvailable:", 0) == 0) {
      std::istringstream ss(line.substr(13));
      double kb = 0;
      if (ss >> kb) avail = kb * 1024;
    }
  // cgroup v2: the limit less what the group already uses.
  std::ifstream mx("/sys/fs/cgroup/memory.max"), cur("/sys/fs/cgroup/memory.current");
  std::string max_s;
  double used = 0;
  if (mx >> max_s && max_s != "max" && cur >> used) {
    try {
      const double left = std::stod(max_s) - used;
      if (left > 0) avail = avail > 0 ? std::min(avail, left) : left;
    } catch (const std::exception&) {
    }
  }
  return avail;
}

std::string memory_str(double bytes) {
  const char* units[] = {"bytes", "KB", "MB", "GB", "TB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) bytes /= 1024, ++u;
  if (u == 0) return fmt::format("{:.0f} bytes", bytes);
  return bytes < 10 ? fmt::format("{:.1f} {}", bytes, units[u]) : fmt::format("{:.0f} {}", bytes, units[u]);
}

double parse_memory(const std::string& s, const char* option) {
  size_t used = 0;
  double v = 0;
  try {
    v = std::stod(s, &used);
  } catch (const std::exception&) {
    fail_usage("{} must be a size such as 512M or 2G, not '{}'", option, s);
  }
  const std::string unit = s.substr(used);
  double scale = 1;
  if (unit == "K" || unit == "k")
    scale = 1024.0;
  else if (unit == "M")
    scale = 1024.0 * 1024;
  else if (unit == "G")
    scale = 1024.0 * 1024 * 1024;
  else if (unit == "T")
    scale = 1024.0 * 1024 * 1024 * 1024;
  else if (!unit.empty())
    fail_usage("{} must be a size such as 512M or 2G, not '{}'", option, s);
  if (!(v > 0) || !std::isfinite(v)) fail_usage("{} must be a positive size, not '{}'", option, s);
  return v * scale;
}

}  // namespace bsp::train
