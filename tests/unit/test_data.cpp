// Data sets: IDX and HDF5 readers with their failures, normalisation,
// augmentation, shuffling and batch layouts.
#include <limits>

#include <catch2/catch.hpp>

#include <algorithm>
#include <numeric>

#include "data/batch.hpp"
#include "data/dataset.hpp"
#include "data_helpers.hpp"
#include "test_helpers.hpp"

using namespace bsp;

namespace {
std::vector<unsigned char> bytes(size_t n, unsigned char start) {
  std::vector<unsigned char> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<unsigned char>(start + i);
  return v;
}

void write_idx_dir(const test::TempDir& d, bool gzip) {
  const char* ext = gzip ? ".gz" : "";
  test::write_idx(d.file(std::string("train-images-idx3-ubyte") + ext), 0x803, 3, 2, 2, bytes(12, 0), gzip);
  test::write_idx(d.file(std::string("train-labels-idx1-ubyte") + ext), 0x801, 3, 0, 0, {1, 2, 0}, gzip);
  test::write_idx(d.file(std::string("t10k-images-idx3-ubyte") + ext), 0x803, 2, 2, 2, bytes(8, 100), gzip);
  test::write_idx(d.file(std::string("t10k-labels-idx1-ubyte") + ext), 0x801, 2, 0, 0, {9, 4}, gzip);
}
}  // namespace

TEST_CASE("a directory of IDX files, gzip-compressed or not") {
  for (bool gz : {true, false}) {
    test::TempDir d;
    write_idx_dir(d, gz);
    DataSet ds = load_data(d.path(), DataPart::Training);
    REQUIRE(ds.train);
    REQUIRE(ds.test);
    CHECK(ds.train->n == 3);
    CHECK(ds.train->h == 2);
    CHECK(ds.train->c == 1);
    CHECK(ds.train->u8[5] == 5);
    CHECK(ds.train->labels[1] == 2);
    CHECK(ds.test->u8[0] == 100);
    CHECK(ds.test->labels[0] == 9);
    DataSet ev = load_data(d.path(), DataPart::Evaluation);
    CHECK(!ev.train);
    CHECK(ev.test->n == 2);
  }
}

TEST_CASE("IDX failures name the file and the reason") {
  test::TempDir d;
  write_idx_dir(d, true);
  // Labels for a different number of images.
  test::write_idx(d.file("train-labels-idx1-ubyte.gz"), 0x801, 4, 0, 0, {1, 2, 0, 1}, true);
  CHECK_THROWS_WITH(load_data(d.path(), DataPart::Training), Catch::Contains("4 labels for 3 images"));
  // Bad magic.
  test::write_idx(d.file("train-labels-idx1-ubyte.gz"), 0x803, 3, 0, 0, {1, 2, 0}, true);
  CHECK_THROWS_WITH(load_data(d.path(), DataPart::Training), Catch::Contains("not an IDX label file"));
  // Truncated pixels.
  test::write_idx(d.file("train-images-idx3-ubyte.gz"), 0x803, 3, 2, 2, bytes(7, 0), true);
  CHECK_THROWS_WITH(load_data(d.path(), DataPart::Training), Catch::Contains("truncated"));
  // A header that claims more pixels than memory holds (2^32 - 1 images of
  // 65536 x 65536 overflow int64): refused before anything is allocated.
  test::write_idx(d.file("train-images-idx3-ubyte.gz"), 0x803, 0xffffffffu, 65536, 65536, bytes(7, 0), true);
  CHECK_THROWS_WITH(load_data(d.path(), DataPart::Training),
                    Catch::Contains("holds 4294967295 images of 65536x65536x1") &&
                        Catch::Contains("more than this machine's memory"));
  test::write_idx(d.file("train-images-idx3-ubyte.gz"), 0x803, 1u << 30, 1024, 1024, bytes(7, 0), true);
  CHECK_THROWS_WITH(load_data(d.path(), DataPart::Training), Catch::Contains("1.05e+06 GiB of pixels"));
  // No IDX files at all; a path that does not exist.
  test::TempDir empty;
  CHECK_THROWS_WITH(load_data(empty.path(), DataPart::Training), Catch::Contains("no IDX files"));
  CHECK_THROWS_WITH(load_data(empty.file("nope.h5"), DataPart::Training), Catch::Contains("no such file"));
}

TEST_CASE("Fashion-MNIST from Debian's package, when it is installed") {
  DataSet ds;
  try {
    ds = load_data("fashion-mnist", DataPart::Evaluation);
  } catch (const Error& e) {
    WARN("fashion-mnist not installed: " << e.what());
    return;
  }
  CHECK(ds.test->n == 10000);
  CHECK(ds.test->h == 28);
  CHECK(ds.test->w == 28);
  int64_t hist[10] = {};
  for (int64_t i = 0; i < ds.test->n; ++i) ++hist[ds.test->labels[static_cast<size_t>(i)]];
  for (int64_t c : hist) CHECK(c == 1000);
}

TEST_CASE("HDF5 data files: with and without a split, uint8 and float32") {
  test::TempDir d;
  ImageSet a = test::blob_set(20, 1), b = test::blob_set(7, 2);
  {
    h5::Handle f = h5::create_file(d.file("split.h5"));
    test::write_h5_set(f, "train", a);
    test::write_h5_set(f, "test", b);
  }
  DataSet ds = load_data(d.file("split.h5"), DataPart::Training);
  CHECK(ds.train->n == 20);
  CHECK(ds.test->n == 7);
  CHECK(ds.train->is_u8());
  CHECK(std::equal(a.u8.begin(), a.u8.end(), ds.train->u8.begin()));
  CHECK(std::equal(b.labels.begin(), b.labels.end(), ds.test->labels.begin()));
  CHECK(load_data(d.file("split.h5"), DataPart::Evaluation).test->n == 7);

  {
    h5::Handle f = h5::create_file(d.file("flat.h5"));
    Tensor imgs({5, 3, 4});  // [N, H, W]: one channel
    for (size_t i = 0; i < imgs.size(); ++i) imgs[i] = 0.1f * static_cast<float>(i);
    h5::write_array(f, "images", imgs);
    h5::write_array(f, "labels", Array<int32_t>({5}, {0, 1, 2, 1, 0}));
  }
  DataSet flat = load_data(d.file("flat.h5"), DataPart::Training);
  CHECK(flat.train->c == 1);
  CHECK(flat.train->w == 4);
  CHECK(!flat.train->is_u8());
  CHECK(!flat.test);
  CHECK(flat.train->labels[3] == 1);
  CHECK(load_data(d.file("flat.h5"), DataPart::Evaluation).test->n == 5);
}

TEST_CASE("HDF5 data file failures") {
  test::TempDir d;
  auto expect = [&](const std::string& name, const std::function<void(hid_t)>& fill, const std::string& msg) {
    {
      h5::Handle f = h5::create_file(d.file(name));
      fill(f);
    }
    CHECK_THROWS_WITH(load_data(d.file(name), DataPart::Training), Catch::Contains(msg) && Catch::Contains(name));
  };
  expect("nolabels.h5", [](hid_t f) { h5::write_array(f, "images", Array<uint8_t>({2, 2, 2})); },
         "missing dataset 'labels'");
  expect("count.h5",
         [](hid_t f) {
           h5::write_array(f, "images", Array<uint8_t>({2, 2, 2}));
           h5::write_array(f, "labels", Array<int64_t>({3}));
         },
         "3 labels for 2 images");
  expect("int16.h5",
         [](hid_t f) {
           h5::write_array(f, "images", Array<int16_t>({2, 2, 2}));
           h5::write_array(f, "labels", Array<int64_t>({2}));
         },
         "must be uint8 or float32");
  expect("flabels.h5",
         [](hid_t f) {
           h5::write_array(f, "images", Array<uint8_t>({2, 2, 2}));
           h5::write_array(f, "labels", Tensor({2}));
         },
         "must hold integers");
  expect("nan.h5",
         [](hid_t f) {
           Tensor t({2, 2, 2});
           t[5] = std::nanf("");
           h5::write_array(f, "images", t);
           h5::write_array(f, "labels", Array<int64_t>({2}));
         },
         "image 1 has pixel nan (float32 pixels must be finite, at most 1e+06 in magnitude)");
  expect("inf.h5",
         [](hid_t f) {
           Tensor t({3, 2, 2});
           t[11] = -std::numeric_limits<float>::infinity();
           h5::write_array(f, "images", t);
           h5::write_array(f, "labels", Array<int64_t>({3}));
         },
         "image 2 has pixel -inf");
  expect("huge.h5",
         [](hid_t f) {
           Tensor t({2, 2, 2});
           t[1] = 1e30f;
           h5::write_array(f, "images", t);
           h5::write_array(f, "labels", Array<int64_t>({2}));
         },
         "dataset 'images': image 0 has pixel 1e+30 (float32 pixels must be finite, at most 1e+06");
  expect("wide.h5",
         [](hid_t f) {
           h5::write_array(f, "images", Array<uint8_t>({1, 1, 70000}));
           h5::write_array(f, "labels", Array<int64_t>({1}));
         },
         "dataset 'images' has images of 1x70000x1 (HxWxC): each side must be 1 to 65536");
  expect("empty.h5", [](hid_t f) { h5::create_group(f, "stuff"); }, "not a data file");
  expect("notrain.h5", [](hid_t f) { test::write_h5_set(f, "test", test::blob_set(3, 1)); }, "no training images");
}

TEST_CASE("normalisation, augmentation and shuffling") {
  ImageSet s = test::blob_set(50, 3);
  Normalization nm = channel_stats(s);
  REQUIRE(nm.mean.size() == 1);
  // The normalised batch of all images has mean 0 and variance 1.
  std::vector<int64_t> idx(50);
  std::iota(idx.begin(), idx.end(), 0);
  Tensor x({50 * 64});
  assemble_batch(s, idx.data(), 50, nm, Augmentation{}, 0, x.data());
  double m = 0, v = 0;
  for (float f : x) m += f;
  m /= 3200;
  for (float f : x) v += (f - m) * (f - m);
  CHECK(m == Approx(0).margin(1e-5));
  CHECK(v / 3200 == Approx(1).epsilon(1e-4));

  // NHWC and channel-major agree for one channel; a flip mirrors the rows.
  Tensor y({50 * 64});
  assemble_batch(s, idx.data(), 50, nm, Augmentation{}, 0, y.data(), BatchLayout::NHWC);
  CHECK(test::max_abs_diff(x, y) == 0.0f);
  Augmentation flip_only;
  flip_only.flip = true;
  Tensor f1({50 * 64}), f2({50 * 64});
  assemble_batch(s, idx.data(), 50, nm, flip_only, 7, f1.data());
  assemble_batch(s, idx.data(), 50, nm, flip_only, 7, f2.data());
  CHECK(test::max_abs_diff(f1, f2) == 0.0f);  // the same key: the same draws
  int flipped = 0;
  for (int64_t j = 0; j < 50; ++j) {
    bool same = true, mirrored = true;
    for (int64_t p = 0; p < 64; ++p) {
      const int64_t yy = p / 8, xx = p % 8;
      same &= f1[static_cast<size_t>(j * 64 + p)] == x[static_cast<size_t>(j * 64 + p)];
      mirrored &= f1[static_cast<size_t>(j * 64 + p)] == x[static_cast<size_t>(j * 64 + yy * 8 + 7 - xx)];
    }
    CHECK((same || mirrored));
    flipped += !same;
  }
  CHECK(flipped > 10);
  CHECK(flipped < 40);
  // A crop shifts in zero pixels: (0 - mean) / std.
  Augmentation crop;
  crop.pad = 2;
  assemble_batch(s, idx.data(), 50, nm, crop, 9, f1.data());
  const float zero = static_cast<float>(-nm.mean[0] / nm.std[0]);
  int padded = 0;
  for (float f : f1) padded += f == zero;
  CHECK(padded > 0);

  std::vector<int64_t> o1 = shuffled_order(1000, 5, 0), o2 = shuffled_order(1000, 5, 0), o3 = shuffled_order(1000, 5, 1);
  CHECK(o1 == o2);
  CHECK(o1 != o3);
  std::vector<int64_t> sorted = o1;
  std::sort(sorted.begin(), sorted.end());
  for (int64_t i = 0; i < 1000; ++i) CHECK(sorted[static_cast<size_t>(i)] == i);
}
