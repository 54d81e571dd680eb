// Stored bytes per part of a model file (file_bytes.hpp).
#include "modelfile/file_bytes.hpp"

#include <sys/stat.h>

#include <cerrno>

#include "core/h5.hpp"
#include "core/model_io.hpp"

namespace bsp {

std::vector<PartBytes> file_bytes(const std::string& path, const std::string& display) {
  std::vector<PartBytes> parts = {
      {"dense_weights", "dense weights", 0}, {"params", "other parameters", 0}, {"masks", "masks", 0},
      {"compact", "compact weights", 0},    {"int8", "int8 program", 0},      {"schedule", "schedule", 0},
      {"program", "program", 0},            {"train", "training state", 0},   {"history", "history and order", 0},
      {"other", "other", 0},                {"hdf5_metadata", "HDF5 metadata", 0},
  };
  auto add = [&](const char* key, int64_t b) {
    for (PartBytes& p : parts)
      if (p.key == key) p.bytes += b;
  };
  try {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) fail("{}", errno_message(errno));
    h5::Handle f = open_model_file(path);
    for (const std::string& top : h5::children(f)) {
      if (top == "graph") {
        h5::Handle graph = h5::open_group(f, "graph");
        for (const std::string& g : h5::children(graph)) {
          if (g != "nodes") {
            add(g == "order" ? "history" : "other", h5::stored_bytes(graph, g));
            continue;
          }
          h5::Handle nodes = h5::open_group(graph, "nodes");
          for (const std::string& n : h5::children(nodes)) {
            h5::Handle node = h5::open_group(nodes, n);
            for (const std::string& d : h5::children(node)) {
              const int64_t b = h5::stored_bytes(node, d);
              add(d == "weight" ? "dense_weights" : d.rfind("mask", 0) == 0 ? "masks" : "params", b);
            }
          }
        }
      } else if (top == "compact") {
        h5::Handle c = h5::open_group(f, "compact");
        for (const std::string& g : h5::children(c)) add(g == "int8" ? "int8" : "compact", h5::stored_bytes(c, g));
      } else if (top == "schedule" || top == "program" || top == "train" || top == "history") {
        add(top.c_str(), h5::stored_bytes(f, top));
      } else {
        add("other", h5::stored_bytes(f, top));
      }
    }
    int64_t sum = 0;
    for (const PartBytes& p : parts) sum += p.bytes;
    add("hdf5_metadata", static_cast<int64_t>(st.st_size) - sum);
  } catch (const Error& e) {
    throw Error(fmt::format("cannot read '{}': {}", display, e.what()), e.exit_code());
  }
  return parts;
}

}  // namespace bsp
