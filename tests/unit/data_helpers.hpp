// Small data files for the data and trainer tests: MNIST-style IDX files
// (gzip or plain) and HDF5 data files (man/bsp-format.5, DATA FILES).
#pragma once

#include <zlib.h>

#include <string>
#include <vector>

#include "core/h5.hpp"
#include "core/rng.hpp"
#include "data/dataset.hpp"

namespace bsp::test {

inline void put_be32(std::vector<unsigned char>& b, uint32_t v) {
  for (int s = 24; s >= 0; s -= 8) b.push_back(static_cast<unsigned char>(v >> s));
}

// Writes an IDX image file (n x h x w bytes) or label file (h = w = 0).
inline void write_idx(const std::string& path, uint32_t magic, uint32_t n, uint32_t h, uint32_t w,
                      const std::vector<unsigned char>& payload, bool gzip) {
  std::vector<unsigned char> b;
  put_be32(b, magic);
  put_be32(b, n);
  if (h) {
    put_be32(b, h);
    put_be32(b, w);
  }
  b.insert(b.end(), payload.begin(), payload.end());
  if (gzip) {
    gzFile f = gzopen(path.c_str(), "wb");
    gzwrite(f, b.data(), static_cast<unsigned>(b.size()));
    gzclose(f);
  } else {
    FILE* f = std::fopen(path.c_str(), "wb");
    std::fwrite(b.data(), 1, b.size(), f);
    std::fclose(f);
  }
}

// A synthetic classification set: class c has a bright 3x3 blob in quadrant
// c (of 4) of an 8x8 image, plus noise; `classes` <= 4.
inline ImageSet blob_set(int64_t n, uint64_t seed, int64_t classes = 4) {
  ImageSet s;
  s.n = n;
  s.h = 8;
  s.w = 8;
  s.c = 1;
  s.u8 = Array<uint8_t>({n, 8, 8, 1});
  s.labels = Array<int64_t>({n});
  Rng r(seed);
  for (int64_t i = 0; i < n; ++i) {
    const int64_t c = static_cast<int64_t>(r.below(static_cast<uint64_t>(classes)));
    s.labels[static_cast<size_t>(i)] = c;
    const int64_t y0 = (c / 2) * 4 + static_cast<int64_t>(r.below(2)), x0 = (c % 2) * 4 + static_cast<int64_t>(r.below(2));
    for (int64_t p = 0; p < 64; ++p) s.u8[static_cast<size_t>(i * 64 + p)] = static_cast<uint8_t>(r.below(60));
    for (int64_t y = y0; y < y0 + 3 && y < 8; ++y)
      for (int64_t x = x0; x < x0 + 3 && x < 8; ++x) s.u8[static_cast<size_t>(i * 64 + y * 8 + x)] = 200;
  }
  return s;
}

// Writes `s` as /<group>/images, /<group>/labels ("" for the root).
inline void write_h5_set(hid_t f, const std::string& group, const ImageSet& s) {
  hid_t g = f;
  h5::Handle gh;
  if (!group.empty()) {
    gh = h5::create_group(f, group);
    g = gh;
  }
  h5::write_array(g, "images", s.u8);
  h5::write_array(g, "labels", s.labels);
}

}  // namespace bsp::test
