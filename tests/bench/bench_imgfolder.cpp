// Decoding + augmentation throughput of an image folder on ONE thread (images
// per second per core), for tests/bench/imgfolder_fmnist.sh:
//   bench_imgfolder DIR H W C [IMAGES]      DIR/train of an image folder
//   bench_imgfolder --synthetic N            N 500x375 RGB JPEGs (quality 90,
//       Fashion-MNIST upscaled and tinted, with noise) to 224x224x3: an
//       ImageNet-sized file, not an ImageNet photograph
// Prints, per transform, images/s of FolderSource::fill on one thread
// (decode, transform, normalise) and of decode_image alone.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <string>
#include <vector>

#include "../unit/image_helpers.hpp"
#include "core/rng.hpp"
#include "data/image_folder.hpp"

using namespace bsp;
using Clock = std::chrono::steady_clock;

namespace {

double seconds_since(Clock::time_point t) { return std::chrono::duration<double>(Clock::now() - t).count(); }

void measure(const ImageList& list, FolderTransforms t, int64_t images) {
  images = std::min<int64_t>(images, static_cast<int64_t>(list.paths.size()));
  t.workers = 1;
  t.norm = Normalization{std::vector<double>(static_cast<size_t>(t.c), 0.5), std::vector<double>(static_cast<size_t>(t.c), 0.25)};
  FolderSource src(list, t);
  std::vector<int64_t> idx(static_cast<size_t>(images));
  // spread over the classes (the list is sorted by class)
  for (int64_t i = 0; i < images; ++i) idx[static_cast<size_t>(i)] = i * static_cast<int64_t>(list.paths.size()) / images;
  const int64_t B = 128;
  for (int pass = 0; pass < 2; ++pass) {
    const bool train = pass == 0;
    Batch b;
    const auto t0 = Clock::now();
    for (int64_t i0 = 0; i0 < images; i0 += B) {
      BatchRequest r;
      r.idx = idx.data() + i0;
      r.n = std::min(B, images - i0);
      r.train = train;
      r.key = static_cast<uint64_t>(i0);
      src.fill(r, b);
    }
    const double s = seconds_since(t0);
    std::printf("%-44s %8.0f images/s/core  (%lld images, %.2f s)\n",
                train ? "decode + RandomResizedCrop + flip + normalise" : "decode + Resize + CenterCrop + normalise",
                static_cast<double>(images) / s, static_cast<long long>(images), s);
  }
  Image8 img;
  std::string why;
  const auto t0 = Clock::now();
  for (int64_t i = 0; i < images; ++i) decode_image(list.paths[static_cast<size_t>(idx[static_cast<size_t>(i)])], img, why);
  const double s = seconds_since(t0);
  std::printf("%-44s %8.0f images/s/core\n", "decode only", static_cast<double>(images) / s);
}

}  // namespace

int main(int argc, char** argv) {
  try {
    if (argc >= 3 && std::string(argv[1]) == "--synthetic") {
      const int64_t n = std::atoll(argv[2]);
      const ImageSet fm = read_idx(std::string(kFashionMnistDir) + "/t10k-images-idx3-ubyte.gz",
                                   std::string(kFashionMnistDir) + "/t10k-labels-idx1-ubyte.gz");
      const std::string dir = "/tmp/bench_imgfolder_synthetic";
      std::filesystem::create_directories(dir + "/train/a");
      ImageList list;
      list.name = dir;
      Rng rng(1);
      for (int64_t i = 0; i < n; ++i) {
        Image8 img;
        img.h = 375;
        img.w = 500;
        img.c = 3;
        img.px.resize(375 * 500 * 3);
        for (int64_t y = 0; y < 375; ++y)
          for (int64_t x = 0; x < 500; ++x) {
            const int v = fm.u8[static_cast<size_t>(i % fm.n * 784 + (y * 28 / 375) * 28 + x * 28 / 500)];
            for (int c = 0; c < 3; ++c) {
              const int noisy = v * (c + 2) / 4 + static_cast<int>(rng.below(48)) + 20;
              img.px[static_cast<size_t>((y * 500 + x) * 3 + c)] = static_cast<uint8_t>(std::min(noisy, 255));
            }
          }
        const std::string p = dir + "/train/a/" + std::to_string(i) + ".jpg";
        test::write_jpeg(p, img, 90);
        list.paths.push_back(p);
        list.labels.push_back(0);
      }
      std::printf("synthetic 500x375 JPEGs -> 224x224x3, one thread:\n");
      FolderTransforms t;
      t.h = t.w = 224;
      t.c = 3;
      measure(list, t, n);
      std::filesystem::remove_all(dir);
      return 0;
    }
    if (argc < 5) {
      std::fprintf(stderr, "usage: bench_imgfolder DIR H W C [IMAGES] | bench_imgfolder --synthetic N\n");
      return 2;
    }
    const ImageFolder f = read_image_folder(argv[1], DataPart::Training);
    FolderTransforms t;
    t.h = std::atoll(argv[2]);
    t.w = std::atoll(argv[3]);
    t.c = std::atoll(argv[4]);
    std::printf("%s/train -> %sx%sx%s, one thread:\n", argv[1], argv[2], argv[3], argv[4]);
    measure(*f.train, t, argc > 5 ? std::atoll(argv[5]) : 20000);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "bench_imgfolder: %s\n", e.what());
    return 1;
  }
  return 0;
}
