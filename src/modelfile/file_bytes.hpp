// Where a model file's bytes go: the bytes HDF5 stores for each part of the
// file (bsp info; the parts are bsp-format(5)'s sections).
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace bsp {

struct PartBytes {
  std::string key;    // "dense_weights", "params", "masks", "compact", "int8", "schedule", "program",
                      // "train", "history", "other", "hdf5_metadata"
  std::string label;  // for the table: "dense weights", ...
  int64_t bytes = 0;
};

// The stored bytes (after any compression) of the datasets of each part of
// the file at `path`, every part listed (0 bytes when absent), in the order
// above; hdf5_metadata is the rest of the file's size (object headers,
// attributes, B-trees, free space). `display` names the file in errors.
std::vector<PartBytes> file_bytes(const std::string& path, const std::string& display);

}  // namespace bsp
