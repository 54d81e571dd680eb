// The generic HDF5 data file (man/bsp-format.5, DATA FILES):
//   /train/images, /train/labels, /test/images, /test/labels   (a split)
//   /images, /labels                                            (no split)
// images: uint8 (pixel v / 255) or float32, [N, H, W, C] or [N, H, W];
// labels: any integer type, [N].
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>

#include "core/error.hpp"
#include "core/h5.hpp"
#include "data/dataset.hpp"

namespace bsp {

namespace {

ImageSet read_set(hid_t parent, const std::string& prefix) {
  const std::string img = prefix + "images", lab = prefix + "labels";
  if (!h5::exists(parent, img)) fail("missing dataset '{}'", img);
  if (!h5::exists(parent, lab)) fail("missing dataset '{}'", lab);
  h5::Handle d(H5Dopen2(parent, img.c_str(), H5P_DEFAULT));
  if (!d.valid()) fail("cannot open dataset '{}'", img);
  h5::Handle type(H5Dget_type(d));
  const H5T_class_t cls = H5Tget_class(type);
  const size_t bytes = H5Tget_size(type);
  const bool is_u8 = cls == H5T_INTEGER && bytes == 1 && H5Tget_sign(type) == H5T_SGN_NONE;
  const bool is_f32 = cls == H5T_FLOAT && bytes == 4;
  if (!is_u8 && !is_f32) fail("dataset '{}' must be uint8 or float32", img);

  ImageSet s;
  Shape shape = h5::dataset_shape(parent, img);
  if (shape.size() != 3 && shape.size() != 4)
    fail("dataset '{}' has shape {}, expected [N, H, W, C] or [N, H, W]", img, shape_str(shape));
  s.n = shape[0];
  s.h = shape[1];
  s.w = shape[2];
  s.c = shape.size() == 4 ? shape[3] : 1;
  if (s.h < 1 || s.w < 1 || s.c < 1) fail("dataset '{}' has an empty image shape {}", img, shape_str(shape));
  if (is_u8) {
    s.u8 = h5::read_array<uint8_t>(parent, img);
    s.u8.reshape({s.n, s.h, s.w, s.c});
  } else {
    s.f32 = h5::read_array<float>(parent, img);
    s.f32.reshape({s.n, s.h, s.w, s.c});
    const int64_t total = static_cast<int64_t>(s.f32.size());
    int64_t bad = -1;
#pragma omp parallel for reduction(max : bad) schedule(static)
    for (int64_t i = 0; i < total; ++i)
      if (!std::isfinite(s.f32[static_cast<size_t>(i)])) bad = std::max(bad, i / s.image_size());
    if (bad >= 0) fail("dataset '{}': image {} has a non-finite pixel", img, bad);
  }

  h5::Handle ld(H5Dopen2(parent, lab.c_str(), H5P_DEFAULT));
  if (!ld.valid()) fail("cannot open dataset '{}'", lab);
  h5::Handle ltype(H5Dget_type(ld));
  if (H5Tget_class(ltype) != H5T_INTEGER) fail("dataset '{}' must hold integers", lab);
  Shape lshape = h5::dataset_shape(parent, lab);
  if (lshape.size() != 1) fail("dataset '{}' has shape {}, expected [N]", lab, shape_str(lshape));
  if (lshape[0] != s.n) fail("dataset '{}' has {} labels for {} images", lab, lshape[0], s.n);
  s.labels = h5::read_array_converted<int64_t>(parent, lab);  // any integer type
  return s;
}

}  // namespace

DataSet read_h5_data(const std::string& path, DataPart part) {
  DataSet ds;
  ds.name = path;
  try {
    struct stat st {};
    if (stat(path.c_str(), &st) != 0) fail("{}", errno_message(errno));
    if (access(path.c_str(), R_OK) != 0) fail("{}", errno_message(errno));
    if (!h5::is_hdf5(path)) fail("not an HDF5 file");
    h5::Handle f = h5::open_file_readonly(path);
    const bool split = h5::exists(f, "train") || h5::exists(f, "test");
    if (!split && !h5::exists(f, "images"))
      fail("not a data file: no 'train' or 'test' group and no 'images' dataset");
    if (part == DataPart::Training) {
      if (split) {
        if (!h5::exists(f, "train")) fail("no training images (missing group 'train')");
        ds.train = read_set(f, "train/");
        if (h5::exists(f, "test")) ds.test = read_set(f, "test/");
      } else {
        ds.train = read_set(f, "");
      }
    } else {
      if (split) {
        if (!h5::exists(f, "test")) fail("no test images (missing group 'test')");
        ds.test = read_set(f, "test/");
      } else {
        ds.test = read_set(f, "");
      }
    }
  } catch (const Error& e) {
    throw Error(fmt::format("cannot read '{}': {}", path, e.what()), e.exit_code());
  }
  return ds;
}

}  // namespace bsp
