// Test helper: writes a synthetic HDF5 data file (man/bsp-format.5, DATA
// FILES) for the end-to-end tests.
//   make_data_h5 FILE N H W C CLASSES [split|flat|float|badlabel|nan|huge]
// split (default): /train with N images and /test with N/4, uint8;
// flat: /images and /labels only; float: float32 images in [0, 1];
// badlabel: the last test label is CLASSES + 2; nan: one float32 pixel is NaN;
// huge: one float32 pixel is 1e30 (finite, beyond the bound of bsp-format(5)).
// Class k brightens the horizontal band of rows k*H/CLASSES .. (k+1)*H/CLASSES.
#include <hdf5.h>

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <vector>

namespace {

uint64_t g_state = 12345;
uint32_t next() {
  g_state = g_state * 6364136223846793005ULL + 1442695040888963407ULL;
  return static_cast<uint32_t>(g_state >> 33);
}

void write(hid_t loc, const char* name, hid_t file_type, hid_t mem_type, const std::vector<hsize_t>& dims,
           const void* data) {
  hid_t space = H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr);
  hid_t d = H5Dcreate2(loc, name, file_type, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  H5Dwrite(d, mem_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, data);
  H5Dclose(d);
  H5Sclose(space);
}

void write_set(hid_t loc, long n, long h, long w, long c, long classes, const std::string& mode, bool is_test) {
  std::vector<int64_t> labels(static_cast<size_t>(n));
  std::vector<float> px(static_cast<size_t>(n * h * w * c));
  for (long i = 0; i < n; ++i) {
    const long k = static_cast<long>(next() % static_cast<uint32_t>(classes));
    labels[static_cast<size_t>(i)] = k;
    for (long y = 0; y < h; ++y)
      for (long x = 0; x < w; ++x)
        for (long ch = 0; ch < c; ++ch) {
          const bool band = y * classes / h == k;
          px[static_cast<size_t>(((i * h + y) * w + x) * c + ch)] =
              static_cast<float>((band ? 160 : 0) + next() % 80) / 255.0f;
        }
  }
  if (mode == "badlabel" && is_test) labels.back() = classes + 2;
  if (mode == "nan") px[7] = std::nanf("");
  if (mode == "huge") px[7] = 1e30f;
  const std::vector<hsize_t> dims = {static_cast<hsize_t>(n), static_cast<hsize_t>(h), static_cast<hsize_t>(w),
                                     static_cast<hsize_t>(c)};
  if (mode == "float" || mode == "nan" || mode == "huge") {
    write(loc, "images", H5T_IEEE_F32LE, H5T_NATIVE_FLOAT, dims, px.data());
  } else {
    std::vector<uint8_t> u8(px.size());
    for (size_t i = 0; i < px.size(); ++i) u8[i] = static_cast<uint8_t>(std::lround(px[i] * 255.0f));
    write(loc, "images", H5T_STD_U8LE, H5T_NATIVE_UINT8, dims, u8.data());
  }
  write(loc, "labels", H5T_STD_I64LE, H5T_NATIVE_INT64, {static_cast<hsize_t>(n)}, labels.data());
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 7) {
    std::fprintf(stderr, "usage: make_data_h5 FILE N H W C CLASSES [split|flat|float|badlabel|nan|huge]\n");
    return 2;
  }
  const long n = std::atol(argv[2]), h = std::atol(argv[3]), w = std::atol(argv[4]), c = std::atol(argv[5]),
             classes = std::atol(argv[6]);
  const std::string mode = argc > 7 ? argv[7] : "split";
  hid_t f = H5Fcreate(argv[1], H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT);
  if (f < 0) return 1;
  if (mode == "flat") {
    write_set(f, n, h, w, c, classes, mode, true);
  } else {
    hid_t tr = H5Gcreate2(f, "train", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    write_set(tr, n, h, w, c, classes, mode, false);
    H5Gclose(tr);
    hid_t te = H5Gcreate2(f, "test", H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
    write_set(te, std::max(1L, n / 4), h, w, c, classes, mode, true);
    H5Gclose(te);
  }
  H5Fclose(f);
  return 0;
}
