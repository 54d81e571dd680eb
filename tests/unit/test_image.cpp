// Image-folder data sets: decoding (PNG, JPEG, failures), the torchvision
// transform geometry and PIL's bilinear resampling, folder and list layouts,
// the folder source (reproducible draws, unreadable images) and the
// prefetching queue.
#include <catch2/catch.hpp>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "data/image_decode.hpp"
#include "data/image_folder.hpp"
#include "data/image_transform.hpp"
#include "data/prefetch.hpp"
#include "image_helpers.hpp"
#include "test_helpers.hpp"

using namespace bsp;

namespace {

Image8 pattern(int64_t h, int64_t w, int64_t c) {
  Image8 img;
  img.h = h;
  img.w = w;
  img.c = c;
  for (int64_t i = 0; i < h * w * c; ++i) img.px.push_back(static_cast<uint8_t>((i * 37 + 11) % 251));
  return img;
}

void touch_dir(const std::string& p) { std::filesystem::create_directories(p); }

// DIR/train/{a,b}/ and DIR/val/{a,b}/ with `per` gray 8x8 PNGs per class (class a dark, b bright).
void small_folder(const std::string& root, int per) {
  for (const char* split : {"train", "val"})
    for (int k = 0; k < 2; ++k) {
      const std::string d = root + "/" + split + "/" + (k ? "b" : "a");
      touch_dir(d);
      for (int i = 0; i < per; ++i) {
        Image8 img = pattern(8, 8, 1);
        for (auto& v : img.px) v = static_cast<uint8_t>(k ? 200 + v % 50 : v % 50);
        test::write_png(d + "/" + std::to_string(i) + ".png", img);
      }
    }
}

}  // namespace

TEST_CASE("PNG files decode to their exact pixels, gray and RGB") {
  test::TempDir d;
  for (int64_t c : {1, 3}) {
    const Image8 img = pattern(5, 7, c);
    test::write_png(d.file("p.png"), img);
    Image8 got;
    std::string why;
    REQUIRE(decode_image(d.file("p.png"), got, why));
    CHECK(got.h == 5);
    CHECK(got.w == 7);
    CHECK(got.c == c);
    CHECK(got.px == img.px);
  }
}

TEST_CASE("a JPEG decodes within the tolerance of its compression") {
  test::TempDir d;
  Image8 img;
  img.h = img.w = 32;
  img.c = 3;
  for (int64_t y = 0; y < 32; ++y)
    for (int64_t x = 0; x < 32; ++x)
      for (int64_t c = 0; c < 3; ++c) img.px.push_back(static_cast<uint8_t>(c == 0 ? 8 * x : c == 1 ? 8 * y : 128));
  test::write_jpeg(d.file("g.jpg"), img, 95);
  Image8 got;
  std::string why;
  REQUIRE(decode_image(d.file("g.jpg"), got, why));
  REQUIRE(got.c == 3);
  REQUIRE(got.px.size() == img.px.size());
  double sum = 0;
  int worst = 0;
  for (size_t i = 0; i < img.px.size(); ++i) {
    const int e = std::abs(int(got.px[i]) - int(img.px[i]));
    worst = std::max(worst, e);
    sum += e;
  }
  CHECK(worst <= 12);
  CHECK(sum / static_cast<double>(img.px.size()) < 2.0);
}

TEST_CASE("unreadable files are reported, not thrown") {
  test::TempDir d;
  Image8 got;
  std::string why;
  CHECK_FALSE(decode_image(d.file("missing.png"), got, why));
  CHECK(why == "no such file or directory");
  std::ofstream(d.file("text.png")) << "hello";
  CHECK_FALSE(decode_image(d.file("text.png"), got, why));
  CHECK(why == "not a JPEG or PNG file");
  std::ofstream(d.file("empty.jpg")).close();
  CHECK_FALSE(decode_image(d.file("empty.jpg"), got, why));
  CHECK(why == "empty file");
  // Truncated files: the header survives, the pixels do not.
  test::write_png(d.file("full.png"), pattern(40, 40, 3));
  test::write_jpeg(d.file("full.jpg"), pattern(40, 40, 3));
  for (const char* name : {"full.png", "full.jpg"}) {
    std::ifstream in(d.file(name), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    std::ofstream(d.file("cut"), std::ios::binary) << bytes.substr(0, bytes.size() / 3);
    why.clear();
    const bool ok = decode_image(d.file("cut"), got, why);
    // libjpeg pads a truncated scan with gray and warns: it decodes. libpng fails.
    if (std::string(name) == "full.png") {
      CHECK_FALSE(ok);
      CHECK_FALSE(why.empty());
    }
  }
}

TEST_CASE("gray and RGB convert as PIL converts") {
  Image8 g = pattern(2, 3, 1);
  const std::vector<uint8_t> before = g.px;
  convert_channels(g, 3);
  REQUIRE(g.c == 3);
  for (size_t i = 0; i < before.size(); ++i)
    CHECK((g.px[3 * i] == before[i] && g.px[3 * i + 1] == before[i] && g.px[3 * i + 2] == before[i]));
  Image8 rgb;
  rgb.h = 1;
  rgb.w = 4;
  rgb.c = 3;
  rgb.px = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30};
  convert_channels(rgb, 1);
  // PIL: Image.new("RGB", ...).convert("L") gives 76, 150, 29, 18
  CHECK(rgb.px == std::vector<uint8_t>{76, 150, 29, 18});
}

TEST_CASE("resize then center crop: known pixels") {
  const Image8 img = pattern(6, 6, 1);
  std::vector<float> out(16);
  // shorter side to floor(4 / (2/3)) = 6: no resampling; the crop starts at (1, 1)
  const Region r = resize_center_crop(6, 6, 4, 4, 4.0 / 6.0);
  resample(img, r, 4, 4, out.data());
  for (int64_t y = 0; y < 4; ++y)
    for (int64_t x = 0; x < 4; ++x) CHECK(out[static_cast<size_t>(y * 4 + x)] == img.px[static_cast<size_t>((y + 1) * 6 + x + 1)]);
  // fraction 1 on an image of the input size is the identity
  const Image8 rgb = pattern(28, 28, 3);
  std::vector<float> same(28 * 28 * 3);
  resample(rgb, resize_center_crop(28, 28, 28, 28, 1.0), 28, 28, same.data());
  for (size_t i = 0; i < same.size(); ++i) REQUIRE(same[i] == rgb.px[i]);
  // torchvision: 32x48 -> Resize(32 / 0.875 = 36): 36x54, CenterCrop 32 at (2, 11)
  const Region t = resize_center_crop(32, 48, 32, 32, 0.875);
  CHECK(t.y0 == Approx(2 * 32.0 / 36));
  CHECK(t.x0 == Approx(11 * 48.0 / 54));
  CHECK(t.h == Approx(32 * 32.0 / 36));
}

TEST_CASE("downscaling averages with PIL's widened triangle filter") {
  Image8 row;
  row.h = 1;
  row.w = 4;
  row.c = 1;
  row.px = {0, 10, 20, 30};
  Region r;
  r.h = 1;
  r.w = 4;
  r.clip_y1 = 1;
  r.clip_x1 = 4;
  std::vector<float> out(2);
  resample(row, r, 1, 2, out.data());
  // output 0: centre 1.0, support 2: pixels 0, 1, 2 weighted 0.75, 0.75, 0.25
  CHECK(out[0] == Approx((0.75 * 0 + 0.75 * 10 + 0.25 * 20) / 1.75));
  CHECK(out[1] == Approx((0.25 * 10 + 0.75 * 20 + 0.75 * 30) / 1.75));
  r.flip = true;
  std::vector<float> flipped(2);
  resample(row, r, 1, 2, flipped.data());
  CHECK(flipped[0] == out[1]);
  CHECK(flipped[1] == out[0]);
}

TEST_CASE("RandomResizedCrop boxes follow torchvision's rules") {
  Rng rng(7);
  for (int i = 0; i < 2000; ++i) {
    const Region r = random_resized_crop(375, 500, rng);
    REQUIRE(r.h >= 1);
    REQUIRE(r.y0 >= 0);
    REQUIRE(r.x0 >= 0);
    REQUIRE(r.y0 + r.h <= 375);
    REQUIRE(r.x0 + r.w <= 500);
    const double area = r.h * r.w / (375.0 * 500.0), ratio = r.w / r.h;
    REQUIRE(area >= 0.07);
    REQUIRE(area <= 1.0);
    REQUIRE(ratio >= 0.7);
    REQUIRE(ratio <= 1.4);
    REQUIRE(r.clip_y1 - r.clip_y0 == static_cast<int64_t>(r.h));  // the filter reads the crop only
  }
  // A 1x100 strip never fits a random box: the central crop of ratio 4/3 (1x1).
  const Region f = random_resized_crop(1, 100, rng);
  CHECK(f.h == 1);
  CHECK(f.w == 1);
  CHECK(f.x0 == 49);
}

TEST_CASE("class folders: sorted classes, files, and the errors") {
  test::TempDir d;
  small_folder(d.path(), 3);
  CHECK(is_image_folder(d.path()));
  ImageFolder f = read_image_folder(d.path(), DataPart::Training);
  CHECK(f.classes == std::vector<std::string>{"a", "b"});
  REQUIRE(f.train);
  REQUIRE(f.test);
  CHECK(f.train->paths.size() == 6);
  CHECK(f.train->labels == std::vector<int64_t>{0, 0, 0, 1, 1, 1});
  CHECK(f.train->paths[1] == d.path() + "/train/a/1.png");
  // val/ with another class
  touch_dir(d.file("val/c"));
  CHECK_THROWS_WITH(read_image_folder(d.path(), DataPart::Training),
                    Catch::Contains("the class folders of train/ and val/ differ (2 and 3 classes; 'c' is only in val/)"));
  // train/ with no class folders
  test::TempDir e;
  touch_dir(e.file("train"));
  test::write_png(e.file("train/x.png"), pattern(4, 4, 1));
  CHECK_THROWS_WITH(read_image_folder(e.path(), DataPart::Training), Catch::Contains("has no class folders"));
}

TEST_CASE("list files: PATH LABEL lines, relative to the list") {
  test::TempDir d;
  touch_dir(d.file("img dir"));
  test::write_png(d.file("img dir/x.png"), pattern(4, 4, 1));
  std::ofstream(d.file("train.txt")) << "# a comment\n\nimg dir/x.png 3\n  " << d.file("img dir/x.png") << "\t1  \n";
  ImageFolder f = read_image_folder(d.path(), DataPart::Training);
  REQUIRE(f.train);
  CHECK_FALSE(f.test);
  CHECK(f.classes.empty());
  CHECK(f.train->paths == std::vector<std::string>{d.file("img dir/x.png"), d.file("img dir/x.png")});
  CHECK(f.train->labels == std::vector<int64_t>{3, 1});
  std::ofstream(d.file("bad.txt")) << "x.png cat\n";
  CHECK_THROWS_WITH(read_image_folder(d.file("bad.txt"), DataPart::Evaluation),
                    Catch::Contains("line 1 of '" + d.file("bad.txt") + "': the label 'cat' is not a non-negative integer"));
  CHECK_THROWS_WITH(read_image_folder(d.path(), DataPart::Evaluation), Catch::Contains("has no val list"));
}

TEST_CASE("a folder source: reproducible draws, unreadable images replaced or left out") {
  test::TempDir d;
  small_folder(d.path(), 4);
  ImageFolder f = read_image_folder(d.path(), DataPart::Training);
  std::ofstream(f.train->paths[2]) << "not an image";  // class a, third file
  FolderTransforms t;
  t.h = t.w = 6;
  t.c = 3;  // gray files expanded to RGB
  t.norm = {{0.5, 0.5, 0.5}, {0.25, 0.25, 0.25}};
  FolderSource src(*f.train, t);
  std::vector<int64_t> idx = {0, 1, 2, 3, 4, 5, 6, 7};
  BatchRequest r;
  r.idx = idx.data();
  r.n = 8;
  r.train = true;
  r.key = 99;
  Batch a, b, c;
  src.fill(r, a);
  src.fill(r, b);
  CHECK(a.n == 8);
  CHECK(a.x == b.x);
  CHECK(a.index[2] == 3);  // the next readable image took the slot
  CHECK(a.labels[2] == 0);
  r.key = 100;
  src.fill(r, c);
  CHECK(c.x != a.x);
  // RGB from gray: the three channels agree
  for (int64_t p = 0; p < 36; ++p) CHECK((a.x[p * 3] == a.x[p * 3 + 1] && a.x[p * 3] == a.x[p * 3 + 2]));
  r.train = false;
  src.fill(r, c);
  CHECK(c.n == 7);
  CHECK(c.index[2] == 3);
  const Unreadable u = src.unreadable();
  CHECK(u.count == 1);  // counted once, however often it was met
  CHECK(u.first_path == f.train->paths[2]);
  CHECK(u.first_why == "not a JPEG or PNG file");
  // normalised: (v / 255 - 0.5) / 0.25 stays within [-2, 2]
  for (int64_t i = 0; i < c.n * 108; ++i) REQUIRE(std::abs(c.x[static_cast<size_t>(i)]) <= 2.0f);
}

TEST_CASE("the prefetching queue hands out the batches in order, as filled in one thread") {
  test::TempDir d;
  small_folder(d.path(), 10);
  ImageFolder f = read_image_folder(d.path(), DataPart::Training);
  FolderTransforms t;
  t.h = t.w = 5;
  t.c = 1;
  t.norm = {{0.0}, {1.0}};
  t.workers = 3;
  FolderSource src(*f.train, t);
  std::vector<int64_t> order(20);
  for (int64_t i = 0; i < 20; ++i) order[static_cast<size_t>(i)] = (i * 7) % 20;
  auto request = [&](int64_t k) {
    BatchRequest r;
    r.idx = order.data() + k * 4;
    r.n = 4;
    r.train = true;
    r.key = static_cast<uint64_t>(k);
    return r;
  };
  BatchQueue threaded(src, request, 5);
  BatchQueue inline_(src, request, 5, 0);
  for (int k = 0; k < 5; ++k) {
    const Batch& x = threaded.next();
    const Batch y = inline_.next();
    REQUIRE(x.n == 4);
    CHECK(x.index == y.index);
    CHECK(x.x == y.x);
  }
  CHECK_THROWS_WITH(threaded.next(), Catch::Contains("internal: batch 5 asked of a queue of 5"));
}
