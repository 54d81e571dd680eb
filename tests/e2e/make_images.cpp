// Writes an image-folder data set from Fashion-MNIST's IDX files, for the
// image-folder tests and tests/bench/imgfolder_fmnist.sh:
//   make_images OUT [--train N] [--val M] [--jpeg-every K] [--idx DIR]
// OUT/train/L/NNNNN.png for the first N training images (label L, index
// NNNNN in the IDX file), OUT/val/L/NNNNN.png for the first M test images,
// every K-th image as a JPEG (quality 95) instead; and OUT/lists/train.txt,
// OUT/lists/val.txt listing the same files in IDX order ("../train/L/NNNNN.png L").
#include <sys/stat.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <string>

#include "../unit/image_helpers.hpp"
#include "data/dataset.hpp"

namespace {

void make_dir(const std::string& p) {
  if (mkdir(p.c_str(), 0755) != 0 && errno != EEXIST) {
    std::perror(p.c_str());
    std::exit(1);
  }
}

void write_split(const bsp::ImageSet& s, int64_t count, const std::string& out, const std::string& split,
                 int64_t jpeg_every) {
  make_dir(out + "/" + split);
  std::ofstream list(out + "/lists/" + split + ".txt");
  for (int64_t i = 0; i < std::min(count, s.n); ++i) {
    const int64_t y = s.labels[static_cast<size_t>(i)];
    const std::string dir = out + "/" + split + "/" + std::to_string(y);
    make_dir(dir);
    bsp::Image8 img;
    img.h = s.h;
    img.w = s.w;
    img.c = s.c;
    img.px.assign(s.u8.data() + i * s.image_size(), s.u8.data() + (i + 1) * s.image_size());
    char name[32];
    const bool jpeg = jpeg_every > 0 && i % jpeg_every == jpeg_every - 1;
    std::snprintf(name, sizeof name, "%05lld.%s", static_cast<long long>(i), jpeg ? "jpg" : "png");
    if (jpeg)
      bsp::test::write_jpeg(dir + "/" + name, img);
    else
      bsp::test::write_png(dir + "/" + name, img);
    list << "../" << split << "/" << y << "/" << name << " " << y << "\n";
  }
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 2) {
    std::fprintf(stderr, "usage: make_images OUT [--train N] [--val M] [--jpeg-every K] [--idx DIR]\n");
    return 2;
  }
  const std::string out = argv[1];
  int64_t train = 60000, val = 10000, jpeg_every = 0;
  std::string idx = bsp::kFashionMnistDir;
  for (int i = 2; i + 1 < argc; i += 2) {
    const std::string k = argv[i];
    if (k == "--train") train = std::atoll(argv[i + 1]);
    else if (k == "--val") val = std::atoll(argv[i + 1]);
    else if (k == "--jpeg-every") jpeg_every = std::atoll(argv[i + 1]);
    else if (k == "--idx") idx = argv[i + 1];
    else {
      std::fprintf(stderr, "make_images: unknown option %s\n", k.c_str());
      return 2;
    }
  }
  make_dir(out);
  make_dir(out + "/lists");
  try {
    if (train > 0)
      write_split(bsp::read_idx(idx + "/train-images-idx3-ubyte.gz", idx + "/train-labels-idx1-ubyte.gz"), train, out,
                  "train", jpeg_every);
    if (val > 0)
      write_split(bsp::read_idx(idx + "/t10k-images-idx3-ubyte.gz", idx + "/t10k-labels-idx1-ubyte.gz"), val, out, "val",
                  jpeg_every);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "make_images: %s\n", e.what());
    return 1;
  }
  return 0;
}
