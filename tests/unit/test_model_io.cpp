#include <fcntl.h>
#include <unistd.h>

#include <filesystem>
#include <catch2/catch.hpp>

#include <cstring>
#include <fstream>
#include <limits>

#include "core/h5.hpp"
#include "modelfile/model_file.hpp"
#include "sparsity/mask.hpp"
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
  apply_mask(conv);  // pruned weights are stored as zeros
  apply_mask(fc);

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
  big.conv("c", "input", GraphBuilder::square(512, 3, 1, 1));  // [512, 3, 3, 512]: 9 MB, read in 256 KB slabs
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
  SECTION("read through HDF5 when not read-only (no direct read), bit for bit") {
    h5::Handle f = h5::open_file_readwrite(d.file("m.h5"));
    h5::Handle g = h5::open_group(f, "graph/nodes/c");
    Tensor r = h5::read_floats_scanned(g, "weight", [](const float*, size_t, size_t) {});
    CHECK(std::memcmp(r.data(), w.data(), w.size() * sizeof(float)) == 0);
  }
  SECTION("a file with a user block: the direct read starts at the right byte") {
    h5::Handle fcpl(H5Pcreate(H5P_FILE_CREATE));
    H5Pset_userblock(fcpl, 4096);
    {
      h5::Handle f(H5Fcreate(d.file("u.h5").c_str(), H5F_ACC_TRUNC, fcpl, H5P_DEFAULT));
      h5::write_array(f, "weight", w);
    }
    h5::Handle f = h5::open_file_readonly(d.file("u.h5"));
    Tensor r = h5::read_floats_scanned(f, "weight", [](const float*, size_t, size_t) {});
    CHECK(std::memcmp(r.data(), w.data(), w.size() * sizeof(float)) == 0);
  }
  SECTION("chunked and compressed, or in an external file: HDF5 reads it") {
    const hsize_t dims[1] = {static_cast<hsize_t>(w.size())};
    for (bool external : {false, true}) {
      CAPTURE(external);
      {
        h5::Handle f(H5Fcreate(d.file("x.h5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
        h5::Handle space(H5Screate_simple(1, dims, nullptr));
        h5::Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
        const hsize_t chunk[1] = {4096};
        if (external)
          H5Pset_external(dcpl, d.file("x.raw").c_str(), 0, w.size() * sizeof(float));
        else
          H5Pset_chunk(dcpl, 1, chunk), H5Pset_deflate(dcpl, 1);
        h5::Handle ds(H5Dcreate2(f, "weight", H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT));
        REQUIRE(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w.data()) >= 0);
      }
      h5::Handle f = h5::open_file_readonly(d.file("x.h5"));
      Tensor r = h5::read_floats_scanned(f, "weight", [](const float*, size_t, size_t) {});
      CHECK(std::memcmp(r.data(), w.data(), w.size() * sizeof(float)) == 0);
    }
  }
  SECTION("big-endian float32 is converted (HDF5 reads it)") {
    {
      h5::Handle f(H5Fcreate(d.file("be.h5").c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, H5P_DEFAULT));
      const hsize_t dims[2] = {static_cast<hsize_t>(w.shape()[0]), static_cast<hsize_t>(w.size() / w.shape()[0])};
      h5::Handle space(H5Screate_simple(2, dims, nullptr));
      h5::Handle ds(H5Dcreate2(f, "weight", H5T_IEEE_F32BE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
      REQUIRE(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, w.data()) >= 0);
    }
    h5::Handle f = h5::open_file_readonly(d.file("be.h5"));
    Tensor r = h5::read_floats_scanned(f, "weight", [](const float*, size_t, size_t) {});
    CHECK(std::memcmp(r.data(), w.data(), w.size() * sizeof(float)) == 0);
  }
  SECTION("a file cut inside the values: a clean error") {
    h5::Handle f0 = h5::open_file_readonly(d.file("m.h5"));
    h5::Handle d0(H5Dopen2(f0, "graph/nodes/c/weight", H5P_DEFAULT));
    const auto cut = static_cast<std::uintmax_t>(H5Dget_offset(d0) + w.size() * sizeof(float) / 2);
    d0.reset();
    f0.reset();
    std::filesystem::resize_file(d.file("m.h5"), cut);
    // HDF5 refuses it when opened (end of file before the end of its
    // allocation); the direct read checks the file's size again.
    CHECK_THROWS_WITH(load_model(d.file("m.h5"), "m.h5"), Catch::StartsWith("cannot read 'm.h5': "));
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

TEST_CASE("direct reads run in parallel slabs: every value read, the first hit of each read found") {
  TempDir d;
  // Three reads of one raw file: 3M floats (12 MB, over the parallel
  // threshold, many slabs), 10 floats, and one that runs past the end.
  const size_t n0 = 3'000'000, n1 = 10;
  std::vector<float> v(n0 + n1);
  for (size_t i = 0; i < v.size(); ++i) v[i] = static_cast<float>(i % 977);
  const float nan = std::numeric_limits<float>::quiet_NaN();
  v[2'500'000] = nan;  // two hits in the big read: the earlier one is reported
  v[1'000'003] = nan;
  v[n0 + 7] = std::numeric_limits<float>::infinity();
  {
    std::ofstream out(d.file("raw.bin"), std::ios::binary);
    out.write(reinterpret_cast<const char*>(v.data()), static_cast<std::streamsize>(v.size() * sizeof(float)));
  }
  const int fd = ::open(d.file("raw.bin").c_str(), O_RDONLY);
  REQUIRE(fd >= 0);
  std::vector<float> a(n0), b(n1), c(n1);
  const std::vector<h5::DirectRead> reads{{fd, 0, a.data(), n0},
                                          {fd, static_cast<int64_t>(n0 * sizeof(float)), b.data(), n1},
                                          {fd, static_cast<int64_t>((n0 + 5) * sizeof(float)), c.data(), n1}};
  const std::vector<h5::DirectResult> res = h5::read_direct_parallel(reads, &find_nonfinite);
  ::close(fd);
  REQUIRE(res.size() == 3);
  CHECK(!res[0].failed);
  CHECK(res[0].found == std::optional<size_t>(1'000'003));
  CHECK(std::memcmp(a.data(), v.data(), n0 * sizeof(float)) == 0);
  CHECK(!res[1].failed);
  CHECK(res[1].found == std::optional<size_t>(7));
  CHECK(std::memcmp(b.data(), v.data() + n0, n1 * sizeof(float)) == 0);
  CHECK(res[2].failed);  // the file ends 5 floats into it
  CHECK(h5::read_direct_parallel({}, &find_nonfinite).empty());
}

namespace {
// Replaces (or adds) dataset `name` of node `node` in a model file, as
// another tool would.
template <typename T>
void put_dataset(const std::string& path, const std::string& node, const std::string& name, const Array<T>& a) {
  h5::Handle f = h5::open_file_readwrite(path);
  h5::Handle g = h5::open_group(f, "graph/nodes/" + node);
  std::vector<std::pair<std::string, AttrValue>> attrs;  // a mask's pattern, density, block
  if (h5::exists(g, name)) {
    h5::Handle d(H5Dopen2(g, name.c_str(), H5P_DEFAULT));
    for (const auto& k : h5::attr_names(d)) attrs.emplace_back(k, h5::read_attr(d, k));
    d.reset();
    H5Ldelete(g, name.c_str(), H5P_DEFAULT);
  }
  h5::write_array(g, name, a);
  h5::Handle d(H5Dopen2(g, name.c_str(), H5P_DEFAULT));
  for (const auto& [k, v] : attrs) h5::write_attr(d, k, v);
}

// small_model() with an unstructured mask on fc2 keeping every other weight
// and a block mask on conv2.conv, pruned weights zero.
Model masked_model() {
  Model m = small_model();
  Node& fc = *m.find("fc2");
  Mask em;
  em.pattern = "unstructured";
  em.bits = Array<uint8_t>(fc.param("weight").shape());
  for (size_t i = 0; i < em.bits.size(); i += 2) em.bits[i] = 1;
  em.density = 0.5;
  fc.mask = std::move(em);
  apply_mask(fc);
  Node& conv = *m.find("conv2.conv");
  Mask bm;
  bm.pattern = "block:8x8";
  bm.block_rows = bm.block_cols = 8;
  bm.bits = Array<uint8_t>({4, 4}, std::vector<uint8_t>{1, 0, 1, 0, 0, 1, 0, 1, 1, 1, 0, 0, 0, 0, 1, 1});
  bm.density = 0.5;
  conv.mask = std::move(bm);
  apply_mask(conv);
  return m;
}
}  // namespace

TEST_CASE("a mask holds only 0 and 1 and its pruned weights are zero") {
  TempDir d;
  const std::string f = d.file("m.h5");
  Model m = masked_model();
  save_model(m, f);
  REQUIRE_NOTHROW(load_model(f, "m.h5"));
  SECTION("a mask value other than 0 and 1") {
    Array<uint8_t> bits = m.find("fc2")->mask->bits.clone();
    bits[4] = 2;
    put_dataset(f, "fc2", "mask", bits);
    CHECK_THROWS_WITH(load_model(f, "m.h5"), Catch::Contains("node 'fc2': mask holds 2 at index 4: only 0 and 1"));
  }
  SECTION("a nonzero weight under a zero element mask") {
    Tensor w = m.find("fc2")->param("weight").clone();
    w[3] = 0.25f;
    put_dataset(f, "fc2", "weight", w);
    CHECK_THROWS_WITH(load_model(f, "m.h5"),
                      Catch::Contains("node 'fc2': weight 0.25 at index 3 is pruned by the mask but not zero"));
  }
  SECTION("a nonzero weight under a zero block") {
    // conv2.conv is [32, 3, 3, 32]; block (0, 1) is pruned: output 0, input 8.
    Tensor w = m.find("conv2.conv")->param("weight").clone();
    REQUIRE(w.shape() == Shape{32, 3, 3, 32});
    const size_t at = ((0 * 3 + 2) * 3 + 1) * 32 + 8;
    w[at] = -1.5f;
    put_dataset(f, "conv2.conv", "weight", w);
    CHECK_THROWS_WITH(load_model(f, "m.h5"), Catch::Contains(fmt::format(
                                                 "node 'conv2.conv': weight -1.5 at index {} is pruned by the mask", at)));
  }
  SECTION("a negative zero is a zero") {
    Tensor w = m.find("fc2")->param("weight").clone();
    w[3] = -0.0f;
    put_dataset(f, "fc2", "weight", w);
    CHECK_NOTHROW(load_model(f, "m.h5"));
  }
  SECTION("an in-memory model is checked the same way when saved") {
    m.find("fc2")->param("weight")[1] = 1.0f;
    CHECK_THROWS_WITH(save_model(m, d.file("o.h5")), Catch::Contains("node 'fc2': weight 1 at index 1 is pruned"));
  }
}

TEST_CASE("a tile-wise mask's tile rows hold 0 and 1 and every tile keeps a row") {
  TempDir d;
  Model m = small_model();
  Node& fc = *m.find("fc2");  // [10, 256]: K = 256, N = 10
  Mask tm;
  tm.pattern = "tw:4";
  tm.bits = Array<uint8_t>(fc.param("weight").shape());
  tm.column_tile = Array<int32_t>({10});
  tm.tile_rows = Array<uint8_t>({3, 256});
  for (int32_t c = 0; c < 10; ++c) tm.column_tile[static_cast<size_t>(c)] = c / 4;
  for (size_t t = 0; t < 3; ++t) tm.tile_rows[t * 256 + t] = 1;
  for (int64_t c = 0; c < 10; ++c) tm.bits[static_cast<size_t>(c * 256 + c / 4)] = 1;
  tm.density = 0.1 / 25.6;
  fc.mask = std::move(tm);
  apply_mask(fc);
  REQUIRE_NOTHROW(m.validate());
  SECTION("a tile row of 2") {
    fc.mask->tile_rows[256 + 5] = 2;
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("node 'fc2': mask_tile_rows[1, 5] = 2: only 0 and 1"));
  }
  SECTION("a tile that keeps no row") {
    fc.mask->tile_rows[2 * 256 + 2] = 0;
    for (int64_t c = 8; c < 10; ++c) fc.mask->bits[static_cast<size_t>(c * 256 + 2)] = 0;
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("node 'fc2': tile 2 of the mask keeps no row"));
  }
  SECTION("a tile wider than the pattern's G") {
    fc.mask->pattern = "tw:3";
    CHECK_THROWS_WITH(m.validate(), Catch::Contains("node 'fc2': tile 0 of the mask has more than the pattern's 3 columns"));
  }
}

TEST_CASE("datasets of the wrong stored type are refused, not converted") {
  TempDir d;
  const std::string f = d.file("m.h5");
  Model m = masked_model();
  save_model(m, f);
  SECTION("a float64 weight") {
    const Tensor& w = m.find("fc2")->param("weight");
    Array<double> w64(w.shape());
    for (size_t i = 0; i < w.size(); ++i) w64[i] = w[i];
    put_dataset(f, "fc2", "weight", w64);
    CHECK_THROWS_WITH(load_model(f, "m.h5"),
                      Catch::Contains("node 'fc2': dataset 'weight' is float64, expected float32"));
  }
  SECTION("an int32 bias") {
    Array<int32_t> b({10});
    put_dataset(f, "fc2", "bias", b);
    CHECK_THROWS_WITH(load_model(f, "m.h5"), Catch::Contains("node 'fc2': dataset 'bias' is int32, expected float32"));
  }
  SECTION("a float mask") {
    const Array<uint8_t>& bits = m.find("fc2")->mask->bits;
    Tensor fm(bits.shape());
    for (size_t i = 0; i < bits.size(); ++i) fm[i] = bits[i] ? 0.5f : 0.0f;
    put_dataset(f, "fc2", "mask", fm);
    CHECK_THROWS_WITH(load_model(f, "m.h5"), Catch::Contains("node 'fc2': dataset 'mask' is float32, expected uint8"));
  }
  SECTION("big-endian float32 is float32") {
    h5::Handle file = h5::open_file_readwrite(f);
    h5::Handle g = h5::open_group(file, "graph/nodes/fc2");
    const Tensor& b = m.find("fc2")->param("bias");
    H5Ldelete(g, "bias", H5P_DEFAULT);
    hsize_t n = b.size();
    h5::Handle space(H5Screate_simple(1, &n, nullptr));
    h5::Handle ds(H5Dcreate2(g, "bias", H5T_IEEE_F32BE, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT));
    REQUIRE(H5Dwrite(ds, H5T_NATIVE_FLOAT, H5S_ALL, H5S_ALL, H5P_DEFAULT, b.data()) >= 0);
    ds.reset();
    g.reset();
    file.reset();
    Model r = load_model(f, "m.h5");
    CHECK(bsp::test::max_abs_diff(r.find("fc2")->param("bias"), b) == 0);
  }
}

TEST_CASE("unknown datasets and groups inside a node are ignored, as bsp-format(5) says") {
  TempDir d;
  const std::string f = d.file("m.h5");
  save_model(small_model(), f);
  put_dataset(f, "fc2", "notes", Array<int32_t>({3}));
  put_dataset(f, "conv1.relu", "bias", Tensor({4}));  // not a relu's parameter
  {
    h5::Handle file = h5::open_file_readwrite(f);
    h5::Handle g = h5::open_group(file, "graph/nodes/fc2");
    h5::Handle sub = h5::create_group(g, "extra");
  }
  Model r = load_model(f, "m.h5");
  CHECK(!r.find("fc2")->has_param("notes"));
  CHECK(r.find("conv1.relu")->params.empty());
  // a known parameter is still required and checked
  put_dataset(f, "fc2", "weight", Array<int16_t>({10, 256}));
  CHECK_THROWS_WITH(load_model(f, "m.h5"), Catch::Contains("node 'fc2': dataset 'weight' is int16, expected float32"));
}
