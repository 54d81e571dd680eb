#include "data/image_folder.hpp"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <system_error>
#include <thread>

#include "core/error.hpp"
#include "core/rng.hpp"
#include "data/image_decode.hpp"
#include "data/image_transform.hpp"

namespace fs = std::filesystem;

namespace bsp {

namespace {

bool is_dir(const fs::path& p) {
  std::error_code ec;
  return fs::is_directory(p, ec);
}
bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}
bool ends_with(const std::string& s, const std::string& tail) {
  return s.size() >= tail.size() && s.compare(s.size() - tail.size(), tail.size(), tail) == 0;
}

bool image_name(const std::string& name) {
  if (name.empty() || name[0] == '.') return false;
  std::string lower = name;
  for (char& ch : lower) ch = static_cast<char>(std::tolower(static_cast<unsigned char>(ch)));
  return ends_with(lower, ".jpg") || ends_with(lower, ".jpeg") || ends_with(lower, ".png");
}

// The sorted names of the class folders of `dir` (hidden ones skipped).
std::vector<std::string> class_folders(const fs::path& dir, const std::string& data) {
  std::vector<std::string> names;
  std::error_code ec;
  for (fs::directory_iterator it(dir, ec), end; !ec && it != end; it.increment(ec)) {
    const std::string name = it->path().filename().string();
    if (!name.empty() && name[0] != '.' && is_dir(it->path())) names.push_back(name);
  }
  if (ec) fail("cannot read data '{}': cannot list '{}': {}", data, dir.string(), ec.message());
  std::sort(names.begin(), names.end());
  if (names.empty())
    fail("data '{}': '{}' has no class folders (expected {}/CLASS/*.jpg|jpeg|png)", data, dir.string(), dir.string());
  return names;
}

ImageList scan_split(const fs::path& dir, const std::vector<std::string>& classes, const std::string& data) {
  ImageList l;
  l.name = dir.string();
  for (size_t k = 0; k < classes.size(); ++k) {
    std::vector<std::string> files;
    std::error_code ec;
    const auto opts = fs::directory_options::follow_directory_symlink;
    for (fs::recursive_directory_iterator it(dir / classes[k], opts, ec), end; !ec && it != end; it.increment(ec))
      if (image_name(it->path().filename().string()) && is_file(it->path())) files.push_back(it->path().string());
    if (ec) fail("cannot read data '{}': cannot list '{}': {}", data, (dir / classes[k]).string(), ec.message());
    std::sort(files.begin(), files.end());
    for (std::string& f : files) {
      l.paths.push_back(std::move(f));
      l.labels.push_back(static_cast<int64_t>(k));
    }
  }
  if (l.paths.empty()) fail("data '{}': '{}' holds no images (*.jpg, *.jpeg, *.png in its class folders)", data, l.name);
  return l;
}

ImageList read_list(const fs::path& file, const std::string& data) {
  std::ifstream in(file);
  if (!in) fail("cannot read data '{}': cannot open '{}': {}", data, file.string(), errno_message(errno));
  ImageList l;
  l.name = file.string();
  const fs::path base = file.parent_path();
  std::string line;
  for (int64_t no = 1; std::getline(in, line); ++no) {
    while (!line.empty() && std::isspace(static_cast<unsigned char>(line.back()))) line.pop_back();
    size_t start = 0;
    while (start < line.size() && std::isspace(static_cast<unsigned char>(line[start]))) ++start;
    if (start == line.size() || line[start] == '#') continue;
    const size_t sep = line.find_last_of(" \t");
    if (sep == std::string::npos || sep < start)
      fail("data '{}': line {} of '{}' is not 'PATH LABEL'", data, no, file.string());
    const std::string label = line.substr(sep + 1);
    std::string path = line.substr(start, sep - start);
    while (!path.empty() && std::isspace(static_cast<unsigned char>(path.back()))) path.pop_back();
    char* end = nullptr;
    errno = 0;
    const long long y = std::strtoll(label.c_str(), &end, 10);
    if (errno || *end || y < 0)
      fail("data '{}': line {} of '{}': the label '{}' is not a non-negative integer", data, no, file.string(), label);
    const fs::path p(path);
    l.paths.push_back(p.is_absolute() ? path : (base / p).string());
    l.labels.push_back(y);
  }
  if (in.bad()) fail("cannot read data '{}': error reading '{}'", data, file.string());
  if (l.paths.empty()) fail("data '{}': '{}' lists no images", data, file.string());
  return l;
}

}  // namespace

bool is_image_folder(const std::string& spec) {
  const fs::path p(spec);
  if (is_dir(p))
    return is_dir(p / "train") || is_dir(p / "val") || is_file(p / "train.txt") || is_file(p / "val.txt");
  return ends_with(spec, ".txt") && is_file(p);
}

ImageFolder read_image_folder(const std::string& spec, DataPart part) {
  ImageFolder f;
  f.name = spec;
  const fs::path root(spec);
  const bool training = part == DataPart::Training;
  if (!is_dir(root)) {  // one list file: training without a val split, or evaluation
    (training ? f.train : f.test) = read_list(root, spec);
    return f;
  }
  const bool lists = is_file(root / "train.txt") || is_file(root / "val.txt");
  if (lists && (is_dir(root / "train") || is_dir(root / "val")))
    fail("data '{}' holds both list files (train.txt, val.txt) and class folders (train/, val/): keep one kind", spec);
  if (lists) {
    if (training && !is_file(root / "train.txt")) fail("data '{}' has no training list '{}'", spec, (root / "train.txt").string());
    if (!training && !is_file(root / "val.txt")) fail("data '{}' has no val list '{}'", spec, (root / "val.txt").string());
    if (training) f.train = read_list(root / "train.txt", spec);
    if (is_file(root / "val.txt")) f.test = read_list(root / "val.txt", spec);
    return f;
  }
  const fs::path train = root / "train", val = root / "val";
  if (training && !is_dir(train))
    fail("data '{}' has no training images (expected {}/CLASS/*.jpg|jpeg|png)", spec, train.string());
  if (!training && !is_dir(val))
    fail("data '{}' has no val images (expected {}/CLASS/*.jpg|jpeg|png)", spec, val.string());
  // Class indices come from train/ when it is there, so that bsp eval on
  // val/ numbers the classes as bsp finetune did.
  f.classes = class_folders(is_dir(train) ? train : val, spec);
  if (is_dir(train) && is_dir(val)) {
    const std::vector<std::string> vc = class_folders(val, spec);
    if (vc != f.classes) {
      std::string diff;
      for (const std::string& c : vc)
        if (!std::binary_search(f.classes.begin(), f.classes.end(), c)) diff = fmt::format("'{}' is only in val/", c);
      for (const std::string& c : f.classes)
        if (diff.empty() && !std::binary_search(vc.begin(), vc.end(), c)) diff = fmt::format("'{}' is only in train/", c);
      fail("data '{}': the class folders of train/ and val/ differ ({} and {} classes; {})", spec, f.classes.size(),
           vc.size(), diff);
    }
  }
  if (training) f.train = scan_split(train, f.classes, spec);
  if (is_dir(val)) f.test = scan_split(val, f.classes, spec);
  return f;
}

FolderSource::FolderSource(ImageList list, FolderTransforms t)
    : list_(std::move(list)), t_(std::move(t)), bad_(new std::atomic<uint8_t>[list_.paths.size()]) {
  for (size_t i = 0; i < list_.paths.size(); ++i) bad_[i].store(0, std::memory_order_relaxed);
  if (t_.c != 1 && t_.c != 3)
    fail("image folders give 1-channel (gray) or 3-channel (RGB) images, but the model takes {} channels", t_.c);
  if (!t_.norm.mean.empty()) {
    for (int64_t c = 0; c < t_.c; ++c) {
      // (v / 255 - mean) / std = v * scale + shift, as assemble_batch computes it for 8-bit data
      scale_.push_back(static_cast<float>((1.0 / 255.0) / t_.norm.std[static_cast<size_t>(c)]));
      shift_.push_back(static_cast<float>(-t_.norm.mean[static_cast<size_t>(c)] / t_.norm.std[static_cast<size_t>(c)]));
    }
  }
}

void FolderSource::record_bad(int64_t i, const std::string& why) const {
  if (bad_[static_cast<size_t>(i)].exchange(1)) return;  // counted once
  std::lock_guard<std::mutex> lock(mu_);
  if (unreadable_.count++ == 0) {
    unreadable_.first_path = list_.paths[static_cast<size_t>(i)];
    unreadable_.first_why = why;
  }
}

Unreadable FolderSource::unreadable() const {
  std::lock_guard<std::mutex> lock(mu_);
  return unreadable_;
}

bool FolderSource::load(int64_t i, bool train, uint64_t draw, float* out) const {
  if (bad_[static_cast<size_t>(i)].load(std::memory_order_relaxed)) return false;
  Image8 img;
  std::string why;
  if (!decode_image(list_.paths[static_cast<size_t>(i)], img, why)) {
    record_bad(i, why);
    return false;
  }
  convert_channels(img, t_.c);
  Region r;
  if (train && t_.augment) {
    Rng rng(draw);
    r = random_resized_crop(img.h, img.w, rng);
    r.flip = rng.uniform() < 0.5;
  } else {
    r = resize_center_crop(img.h, img.w, t_.h, t_.w, t_.fraction);
  }
  resample(img, r, t_.h, t_.w, out);
  return true;
}

void FolderSource::fill(const BatchRequest& r, Batch& out) const {
  reserve_batch(*this, r.n, out);
  const int64_t per = t_.h * t_.w * t_.c, total = size();
  int64_t n = 0;
  for (int64_t j = 0; j < r.n; ++j) {
    const uint64_t draw = mix64(r.key ^ mix64(static_cast<uint64_t>(r.j0 + j) + 0x9e37ULL));
    float* x = out.x.data() + n * per;
    int64_t i = r.idx[j];
    bool ok = load(i, r.train, draw, x);
    // Training: the next readable image of the data set takes the slot.
    for (int64_t tries = 1; !ok && r.train && tries < total; ++tries) {
      i = (i + 1) % total;
      ok = load(i, r.train, draw, x);
    }
    if (!ok) {
      if (r.train) fail("data '{}': no image of '{}' can be read", list_.name, list_.name);
      continue;
    }
    for (int64_t p = 0; p < t_.h * t_.w; ++p)
      for (int64_t c = 0; c < t_.c; ++c) {
        float& v = x[p * t_.c + c];
        v = v * scale_[static_cast<size_t>(c)] + shift_[static_cast<size_t>(c)];
      }
    out.labels[static_cast<size_t>(n)] = list_.labels[static_cast<size_t>(i)];
    out.index[static_cast<size_t>(n)] = i;
    ++n;
  }
  out.n = n;
}

Normalization folder_stats(const FolderSource& src, int64_t max_images) {
  const int64_t total = src.size(), n = std::min(total, max_images), C = src.c(), per = src.h() * src.w();
  // Per-image sums in double, then a fixed-order total (as channel_stats):
  // the same result for any thread count.
  std::vector<double> part(static_cast<size_t>(n * C * 2), 0.0);
  std::vector<uint8_t> ok(static_cast<size_t>(n), 0);
  const int threads = std::max(1, src.workers());
  std::vector<std::thread> pool;
  for (int t = 0; t < threads; ++t)
    pool.emplace_back([&, t] {
      std::vector<float> x(static_cast<size_t>(per * C));
      for (int64_t k = t; k < n; k += threads) {
        const int64_t i = n == total ? k : k * total / n;  // spread evenly
        if (!src.load(i, false, 0, x.data())) continue;
        ok[static_cast<size_t>(k)] = 1;
        for (int64_t c = 0; c < C; ++c) {
          double a = 0, b = 0;
          for (int64_t p = 0; p < per; ++p) {
            const double v = x[static_cast<size_t>(p * C + c)] / 255.0;
            a += v;
            b += v * v;
          }
          part[static_cast<size_t>((k * C + c) * 2)] = a;
          part[static_cast<size_t>((k * C + c) * 2 + 1)] = b;
        }
      }
    });
  for (std::thread& t : pool) t.join();
  std::vector<double> sum(static_cast<size_t>(C), 0.0), sq(static_cast<size_t>(C), 0.0);
  int64_t used = 0;
  for (int64_t k = 0; k < n; ++k) {
    if (!ok[static_cast<size_t>(k)]) continue;
    ++used;
    for (int64_t c = 0; c < C; ++c) {
      sum[static_cast<size_t>(c)] += part[static_cast<size_t>((k * C + c) * 2)];
      sq[static_cast<size_t>(c)] += part[static_cast<size_t>((k * C + c) * 2 + 1)];
    }
  }
  if (used == 0) fail("data: none of the images of '{}' sampled for the normalisation can be read", src.name());
  return normalization_from_sums(sum, sq, static_cast<double>(used * per));
}

}  // namespace bsp
