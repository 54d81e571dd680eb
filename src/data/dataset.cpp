#include "data/dataset.hpp"

#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/error.hpp"
#include "data/image_folder.hpp"

namespace bsp {

void ImageSet::limit(int64_t count) {
  if (count < 0 || count >= n) return;
  const size_t per = static_cast<size_t>(image_size());
  auto shrink = [&](auto& a, Shape s, size_t keep) {
    using A = std::remove_reference_t<decltype(a)>;
    A b(std::move(s));
    if (keep) std::memcpy(b.data(), a.data(), keep * sizeof(*a.data()));
    a = std::move(b);
  };
  if (!u8.empty()) shrink(u8, {count, h, w, c}, static_cast<size_t>(count) * per);
  if (!f32.empty()) shrink(f32, {count, h, w, c}, static_cast<size_t>(count) * per);
  shrink(labels, {count}, static_cast<size_t>(count));
  n = count;
}

void check_image_set_size(const std::string& what, int64_t n, int64_t h, int64_t w, int64_t c,
                          int64_t bytes_per_pixel) {
  if (n < 0) fail("{} has a negative image count {}", what, n);
  for (int64_t d : {h, w, c})
    if (d < 1 || d > kMaxImageSide)
      fail("{} has images of {}x{}x{} (HxWxC): each side must be 1 to {}", what, h, w, c, kMaxImageSide);
  int64_t bytes = 0;
  const bool overflow = __builtin_mul_overflow(n, h * w * c * bytes_per_pixel, &bytes);
  const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
  const double have = pages > 0 && page > 0 ? static_cast<double>(pages) * static_cast<double>(page) : 0;
  const double need = static_cast<double>(n) * static_cast<double>(h * w * c * bytes_per_pixel);
  if (overflow || (have > 0 && need > have))
    fail("{} holds {} images of {}x{}x{}: {:.3g} GiB of pixels, more than this machine's memory ({:.3g} GiB)", what,
         n, h, w, c, need / 1073741824.0, have / 1073741824.0);
}

namespace {

bool is_dir(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}
bool exists(const std::string& p) {
  struct stat st {};
  return stat(p.c_str(), &st) == 0;
}

// "<dir>/<stem>" with or without ".gz"; the .gz name when neither exists (for the message).
std::string idx_file(const std::string& dir, const std::string& stem) {
  std::string plain = dir + "/" + stem;
  if (!exists(plain + ".gz") && exists(plain)) return plain;
  return plain + ".gz";
}

DataSet read_idx_dir(const std::string& dir, const std::string& name, DataPart part) {
  DataSet ds;
  ds.name = name;
  const std::string train_img = idx_file(dir, "train-images-idx3-ubyte");
  const std::string test_img = idx_file(dir, "t10k-images-idx3-ubyte");
  if (!exists(train_img) && !exists(test_img)) {
    if (name == "fashion-mnist")
      fail("cannot read data 'fashion-mnist': no IDX files in '{}' (install Debian's dataset-fashion-mnist)", dir);
    fail("cannot read data '{}': no IDX files (train-images-idx3-ubyte[.gz], t10k-images-idx3-ubyte[.gz]) and no "
         "image folders ({}/train/CLASS/*.jpg|png, {}/val/CLASS/...)",
         dir, dir, dir);
  }
  if (part == DataPart::Training) {
    ds.train = read_idx(train_img, idx_file(dir, "train-labels-idx1-ubyte"));
    if (exists(test_img)) ds.test = read_idx(test_img, idx_file(dir, "t10k-labels-idx1-ubyte"));
  } else {
    ds.test = read_idx(test_img, idx_file(dir, "t10k-labels-idx1-ubyte"));
  }
  return ds;
}

}  // namespace

DataSet load_data(const std::string& spec, DataPart part) {
  if (spec.empty()) fail_usage("--data is required (fashion-mnist, a directory of IDX files or an HDF5 data file)");
  if (is_image_folder(spec))
    fail("data '{}' is an image folder: only bsp finetune and bsp eval read image folders", spec);
  DataSet ds;
  if (spec == "fashion-mnist") {
    ds = read_idx_dir(kFashionMnistDir, spec, part);
  } else if (is_dir(spec)) {
    ds = read_idx_dir(spec, spec, part);
  } else if (exists(spec)) {
    ds = read_h5_data(spec, part);
  } else {
    fail("cannot read data '{}': {} (expected fashion-mnist, a directory of IDX files or an HDF5 data file)", spec,
         errno_message(ENOENT));
  }
  for (ImageSet* s : {ds.train ? &*ds.train : nullptr, ds.test ? &*ds.test : nullptr})
    if (s && s->n == 0) fail("data '{}' holds no images", ds.name);
  if (ds.train && ds.test && (ds.train->h != ds.test->h || ds.train->w != ds.test->w || ds.train->c != ds.test->c))
    fail("data '{}': training images are {}x{}x{} but test images {}x{}x{}", ds.name, ds.train->h, ds.train->w,
         ds.train->c, ds.test->h, ds.test->w, ds.test->c);
  return ds;
}

}  // namespace bsp
