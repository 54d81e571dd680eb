// Shared by the libFuzzer targets (tests/fuzz/README): a scratch file per
// process for the reader, which opens files by path, and what the targets do
// with a model that loaded (what `bsp info` does with it).
#pragma once

#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "compact/compact.hpp"
#include "core/error.hpp"
#include "core/model.hpp"
#include "core/stats.hpp"
#include "modelfile/model_file.hpp"

namespace bsp::fuzz {

// A file in /dev/shm (memory) when there is one: bsp's reader takes a path,
// and going through the path is what the real tool does.
inline const std::string& scratch_path(const char* tag) {
  static const std::string p = [tag] {
    const char* dir = std::getenv("BSP_FUZZ_TMP");
    std::string d = dir ? dir : (access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp");
    return d + "/bsp-fuzz-" + tag + "-" + std::to_string(getpid()) + ".h5";
  }();
  return p;
}

inline void write_file(const std::string& path, const uint8_t* data, size_t size) {
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
}

// What `bsp info` computes from a model that loaded: statistics (shapes,
// MACs) and the compact byte counts. Errors are the reader's to report, so
// an Error here still counts as a clean refusal only when the caller
// catches it; a validated model should not throw.
inline uint64_t exercise(const Model& m) {
  uint64_t sink = content_hash(m);
  const ModelStats s = model_stats(m);
  sink += static_cast<uint64_t>(s.macs + s.params + s.bytes);
  for (const Node& n : m.nodes)
    if (op_has_weight(n.op)) {
      const compact::LayerBytes b = compact::layer_bytes(m, n.name);
      sink += static_cast<uint64_t>(b.dense + b.compact);
    }
  return sink;
}

// Loads the model file at path and exercises it; a bsp::Error (a clean
// refusal) is the expected outcome for most inputs, anything else crashes.
inline void load_and_exercise(const std::string& path) {
  try {
    const Model m = load_model(path, "fuzz.h5");
    volatile uint64_t sink = exercise(m);
    (void)sink;
  } catch (const Error&) {
  }
}

}  // namespace bsp::fuzz
