#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>
#include <limits>

#include "core/h5.hpp"
#include "modelfile/model_file.hpp"
#include "test_helpers.hpp"
#include "zoo/builder.hpp"
#include "zoo/zoo.hpp"

using namespace bsp;
using bsp::test::TempDir;

namespace {
Model small_model() {
  Model m = build_fmnist_cnn(10);
  init_weights(m, 7);
  m.history = {"bsp init --arch fmnist-cnn -o a.h5", "bsp something 'quoted arg'"};
  return m;
}

void set_root_attr(const std::string& path, const std::string& name, const AttrValue& v) {
  h5::Handle f(H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
  REQUIRE(f.valid());
  if (h5::has_attr(f, name)) H5Adelete(f, name.c_str());
  h5::write_attr(f, name, v);
}
}  // namespace

TEST_CASE("a model survives a save and load bit for bit") {
  TempDir d;
  Model m = small_model();
  // A mask of each kind, and attributes of each type.
  Node& conv = *m.find("conv2.conv");
  Mask bm;
  bm.pattern = "block:8x8";
  bm.density = 0.5;
  bm.block_rows = bm.block_cols = 8;
  bm.bits = Array<uint8_t>({4, 4}, std::vector<uint8_t>{1, 0, 1, 0, 0, 1, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1});
  conv.mask = std::move(bm);
  conv.attrs.set("note", std::string("hello"));
  conv.attrs.set("scales", std::vector<double>{0.5, 0.25});
  Node& fc = *m.find("fc2");
  Mask em;
  em.pattern = "unstructured";
  em.density = 0.25;
  em.bits = Array<uint8_t>(fc.param("weight").shape());
  em.bits[3] = 1;
  fc.mask = std::move(em);

  save_model(m, d.file("m.h5"));
  Model r = load_model(d.file("m.h5"), "m.h5");
  REQUIRE(r.nodes.size() == m.nodes.size());
  CHECK(r.arch == "fmnist-cnn");
  CHECK(r.history == m.history);
  for (size_t i = 0; i < m.nodes.size(); ++i) {
    const Node& a = m.nodes[i];
    const Node& b = r.nodes[i];
    CHECK(a.name == b.name);
    CHECK(a.op == b.op);
    CHECK(a.inputs == b.inputs);
    CHECK(a.attrs.all() == b.attrs.all());
    REQUIRE(a.params.size() == b.params.size());
    for (const auto& [k, t] : a.params) {
      const Tensor& u = b.param(k);
      REQUIRE(u.shape() == t.shape());
      CHECK(std::memcmp(u.data(), t.data(), t.size() * sizeof(float)) == 0);
    }
    CHECK(a.mask.has_value() == b.mask.has_value());
  }
  const Mask& rb = *r.find("conv2.conv")->mask;
  CHECK(rb.pattern == "block:8x8");
  CHECK(rb.density == 0.5);
  CHECK(rb.block_rows == 8);
  CHECK(rb.bits.shape() == Shape{4, 4});
  CHECK(std::memcmp(rb.bits.data(), m.find("conv2.conv")->mask->bits.data(), 16) == 0);
  const Mask& re = *r.find("fc2")->mask;
  CHECK_FALSE(re.is_block());
  CHECK(re.bits[3] == 1);
  CHECK(re.bits[4] == 0);
}

TEST_CASE("the same model gives a byte-identical file") {
  TempDir d;
  Model m = small_model();
  save_model(m, d.file("a.h5"));
  save_model(m, d.file("b.h5"));
  std::ifstream a(d.file("a.h5"), std::ios::binary), b(d.file("b.h5"), std::ios::binary);
  std::string sa((std::istreambuf_iterator<char>(a)), {}), sb((std::istreambuf_iterator<char>(b)), {});
  CHECK(sa.size() > 1000);
  CHECK(sa == sb);
}

TEST_CASE("readers ignore unknown groups and newer minor versions") {
  TempDir d;
  save_model(small_model(), d.file("m.h5"));
  {
    h5::Handle f(H5Fopen(d.file("m.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    h5::Handle g = h5::create_group(f, "schedule");
    h5::write_attr(g, "target", std::string("aie2:4x4"));
    h5::Handle g2 = h5::create_group(f, "from_the_future");
  }
  set_root_attr(d.file("m.h5"), "format_version", std::vector<int64_t>{1, 7});
  Model r = load_model(d.file("m.h5"), "m.h5");
  CHECK(r.nodes.size() == small_model().nodes.size());
}

TEST_CASE("files that are not bsp models are refused with a clear reason") {
  TempDir d;
  SECTION("missing file") {
    CHECK_THROWS_WITH(load_model(d.file("none.h5"), "none.h5"),
                      "cannot read 'none.h5': no such file or directory");
  }
  SECTION("not HDF5") {
    std::ofstream(d.file("x.h5")) << "hello\n";
    CHECK_THROWS_WITH(load_model(d.file("x.h5"), "x.h5"), "cannot read 'x.h5': not an HDF5 file");
  }
  SECTION("HDF5 but not bsp") {
    { h5::Handle f = h5::create_file(d.file("p.h5")); }
    CHECK_THROWS_WITH(load_model(d.file("p.h5"), "p.h5"), Catch::Contains("not a bsp model file"));
  }
  SECTION("another format name") {
    save_model(small_model(), d.file("m.h5"));
    set_root_attr(d.file("m.h5"), "format", std::string("onnx"));
    CHECK_THROWS_WITH(load_model(d.file("m.h5"), "m.h5"), Catch::Contains("not a bsp model file"));
  }
  SECTION("newer major version") {
    save_model(small_model(), d.file("m.h5"));
    set_root_attr(d.file("m.h5"), "format_version", std::vector<int64_t>{2, 0});
    CHECK_THROWS_WITH(load_model(d.file("m.h5"), "m.h5"), Catch::Contains("format version 2.0 is newer"));
  }
  SECTION("truncated") {
    save_model(small_model(), d.file("m.h5"));
    std::ifstream in(d.file("m.h5"), std::ios::binary);
    std::string bytes((std::istreambuf_iterator<char>(in)), {});
    for (size_t keep : {bytes.size() / 2, bytes.size() - 10, size_t{600}}) {
      std::ofstream(d.file("t.h5"), std::ios::binary).write(bytes.data(), static_cast<std::streamsize>(keep));
      CHECK_THROWS_WITH(load_model(d.file("t.h5"), "t.h5"), Catch::StartsWith("cannot read 't.h5': "));
    }
  }
  SECTION("a directory") {
    CHECK_THROWS_WITH(load_model(d.path(), "dir"), "cannot read 'dir': is a directory");
  }
}

TEST_CASE("parameters are checked for finite values slab by slab as they are read") {
  TempDir d;
  GraphBuilder big("t", 4, 4, 512);
  big.conv("c", "input", GraphBuilder::square(512, 3, 1, 1));  // [512, 3, 3, 512]: 9 MB, read in 1 MB slabs
  Model m = big.finish();
  Tensor& w = m.nodes[1].params["weight"];
  for (size_t i = 0; i < w.size(); ++i) w[i] = static_cast<float>(i % 1000) * 1e-3f;
  save_model(m, d.file("m.h5"));
  SECTION("the slabs read back bit for bit, every element scanned once") {
    h5::Handle f = h5::open_file_readonly(d.file("m.h5"));
    h5::Handle g = h5::open_group(f, "graph/nodes/c");
    size_t scanned = 0, slabs = 0;
    Tensor r = h5::read_floats_scanned(g, "weight", [&](const float*, size_t first, size_t count) {
      CHECK(first == scanned);
      scanned += count;
      ++slabs;
    });
    CHECK(scanned == w.size());
    CHECK(slabs > 1);
    CHECK(r.shape() == w.shape());
    CHECK(std::memcmp(r.data(), w.data(), w.size() * sizeof(float)) == 0);
  }
  for (size_t bad : {size_t{5}, w.size() - 3}) {
    DYNAMIC_SECTION("a nan at index " << bad) {
      h5::Handle f(H5Fopen(d.file("m.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
      h5::Handle g = h5::open_group(f, "graph/nodes/c");
      H5Ldelete(g, "weight", H5P_DEFAULT);
      w[bad] = std::numeric_limits<float>::quiet_NaN();
      h5::write_array(g, "weight", w);
      f.reset();
      CHECK_THROWS_WITH(load_model(d.file("m.h5"), "m.h5"),
                        Catch::Contains(fmt::format("node 'c': parameter 'weight' holds nan at index {}", bad)));
    }
  }
}
