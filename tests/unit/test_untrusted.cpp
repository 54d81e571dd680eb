// Files from elsewhere (issue 24): the defects the sanitizer build and the
// fuzzers (tests/fuzz) found in the readers, one case each, so that each
// stays fixed. A crafted file is refused with a bsp::Error that says what
// is wrong; never another exception, a crash or undefined behaviour (the
// sanitizer build of tests/sanitize.sh checks the last).
#include <catch2/catch.hpp>

#include "aie2/executor.hpp"
#include "aie2/hardware.hpp"
#include "aie2/isa.hpp"
#include "aie2/loops.hpp"
#include "core/h5.hpp"
#include "modelfile/model_file.hpp"
#include "onnx/metadata.hpp"
#include "test_helpers.hpp"
#include "zoo/builder.hpp"
#include "zoo/zoo.hpp"

using namespace bsp;
using bsp::test::TempDir;

namespace {

// A small model: a conv, a relu, a dense layer.
Model tiny_model() {
  GraphBuilder b("tiny", 6, 6, 3);
  b.dense("fc", b.flatten("flat", b.relu("relu", b.conv("conv", "input", GraphBuilder::square(4, 3, 1, 1)))), 5);
  Model m = b.finish();
  init_weights(m, 3);
  return m;
}

// Runs `edit` on the open file (read-write), then loads it.
template <typename F>
Model edit_and_load(const TempDir& d, F edit) {
  save_model(tiny_model(), d.file("m.h5"));
  {
    h5::Handle f(H5Fopen(d.file("m.h5").c_str(), H5F_ACC_RDWR, H5P_DEFAULT));
    REQUIRE(f.valid());
    edit(f.get());
  }
  return load_model(d.file("m.h5"), "m.h5");
}

void replace_attr(hid_t obj, const std::string& name, const AttrValue& v) {
  if (h5::has_attr(obj, name)) H5Adelete(obj, name.c_str());
  h5::write_attr(obj, name, v);
}

}  // namespace

TEST_CASE("an attribute of the wrong type is an error that names it", "[untrusted]") {
  TempDir d;
  // Each was std::bad_variant_access ("internal error") before.
  SECTION("a node's op as a number") {
    CHECK_THROWS_WITH(edit_and_load(d, [](hid_t f) {
                        h5::Handle g(H5Gopen2(f, "graph/nodes/conv", H5P_DEFAULT));
                        replace_attr(g, "op", int64_t{3});
                      }),
                      Catch::Contains("attribute 'op' is not a string"));
  }
  SECTION("a mask's pattern as a number") {
    CHECK_THROWS_WITH(edit_and_load(d, [](hid_t f) {
                        h5::Handle g(H5Gopen2(f, "graph/nodes/conv", H5P_DEFAULT));
                        Mask m;
                        m.pattern = "unstructured";
                        m.density = 1.0;
                        m.bits = Array<uint8_t>({4, 3, 3, 3});
                        m.bits.fill(1);
                        h5::write_array(g, "mask", m.bits);
                        h5::Handle mask(H5Dopen2(g, "mask", H5P_DEFAULT));
                        h5::write_attr(mask, "pattern", int64_t{7});
                        h5::write_attr(mask, "density", 1.0);
                      }),
                      Catch::Contains("attribute 'pattern' is not a string"));
  }
  SECTION("the architecture as a number") {
    CHECK_THROWS_WITH(edit_and_load(d, [](hid_t f) { replace_attr(f, "arch", 1.5); }),
                      Catch::Contains("attribute 'arch' is not a string"));
  }
}

TEST_CASE("an attribute without a value (a null dataspace) is an error", "[untrusted]") {
  TempDir d;
  // read_attr indexed the dimensions of a dataspace that has none.
  CHECK_THROWS_WITH(edit_and_load(d, [](hid_t f) {
                      H5Adelete(f, "arch");
                      h5::Handle space(H5Screate(H5S_NULL));
                      h5::Handle a(H5Acreate2(f, "arch", H5T_NATIVE_INT64, space, H5P_DEFAULT, H5P_DEFAULT));
                      REQUIRE(a.valid());
                    }),
                    Catch::Contains("attribute 'arch' has no value"));
}

TEST_CASE("a loop stride that takes an operand past 32 bits is an error", "[untrusted][aie2]") {
  using namespace bsp::aie2;
  // int32 + int32 overflowed (undefined behaviour) in LoopCursor before.
  std::vector<Instr> code = {make(Opc::Loop, {3, 1}), make(Opc::Acq, {0, 2000000000}),
                             make(Opc::Stride, {0, 2000000000})};
  LoopCursor c(&code);
  Instr in;
  size_t rec = 0;
  REQUIRE(c.next(in, rec));
  CHECK(in.a[1] == 2000000000);
  CHECK_THROWS_WITH(c.next(in, rec), Catch::Contains("operand 1 is 4000000000 at iteration 1 of its loop, past 32 bits"));
}

namespace {

using namespace bsp::aie2;

// A program of one stage on aie2:2x2: one core buffer, one conv kernel, one
// core queue that takes and gives back the buffer's free lock.
Program one_buffer_program() {
  Program p;
  p.hw = load_target("aie2:2x2");
  p.ddr_bytes = 1024;
  StageProg s;
  s.name = "s";
  BufDecl b;
  b.name = "b";
  b.mem = Mem::Core;
  b.addr = p.hw.core_reserved;
  b.slot_bytes = 64;
  b.slots = 1;
  b.rows = 1, b.cols = 4, b.pitch = 4, b.elem_bytes = 4;
  b.free_init = 1;
  s.bufs.push_back(b);
  s.kernels.push_back(KernelDecl{});
  QueueProg q;
  q.code = {make(Opc::Acq, {0, 0, 0, 1, 1, 0}), make(Opc::Rel, {0, 0, 0, 1, 1, 0})};
  s.queues.push_back(q);
  p.stages.push_back(s);
  return p;
}

// The program through its binary form, after `edit` changed one word.
void decode_edited(const Program& p, size_t record, size_t operand, int32_t value) {
  std::vector<std::string> names;
  std::vector<int32_t> words = encode_program(p, names);
  words[record * 16 + 1 + operand] = value;
  Program q;
  decode_program(words, names, q);
}

}  // namespace

TEST_CASE("program buffers and kernels are checked when decoded", "[untrusted][aie2]") {
  const Program p = one_buffer_program();
  REQUIRE_NOTHROW(decode_edited(p, 1, 0, 0));  // unchanged
  REQUIRE_NOTHROW(run_stage(p, p.stages[0], nullptr));
  // Record 1 is the buffer: operands 8..11 rows, cols, pitch, elem_bytes.
  CHECK_THROWS_WITH(decode_edited(p, 1, 8, -1), Catch::Contains("buffer 'b': bad layout [-1][4][4] of 4-byte elements"));
  CHECK_THROWS_WITH(decode_edited(p, 1, 11, 3), Catch::Contains("bad layout [1][4][4] of 3-byte elements"));
  // Record 2 is the kernel: operands 2..7 window, stride, dilation.
  CHECK_THROWS_WITH(decode_edited(p, 2, 4, 0), Catch::Contains("kernel 0: window 1x1, stride 0x1, dilation 1x1 out of range"));
  CHECK_THROWS_WITH(decode_edited(p, 2, 3, 1 << 20), Catch::Contains("out of range 1..65535"));
  CHECK_THROWS_WITH(decode_edited(p, 2, 1, 9), Catch::Contains("kernel 0 has kind 9"));
}

TEST_CASE("the executor checks buffer sizes before it allocates for them", "[untrusted][aie2]") {
  SECTION("a layout whose size passes int64") {
    // rows * cols * pitch * elem_bytes overflowed and passed the slot check.
    Program p = one_buffer_program();
    BufDecl& b = p.stages[0].bufs[0];
    b.rows = b.cols = b.pitch = 1 << 30;
    CHECK_THROWS_WITH(run_stage(p, p.stages[0], nullptr), Catch::Contains("layout is larger than its slot"));
  }
  SECTION("a billion empty slots") {
    // Zero-byte slots fit any memory: the lock and window tables were
    // allocated for every one of them (tens of GB).
    Program p = one_buffer_program();
    BufDecl& b = p.stages[0].bufs[0];
    b.slot_bytes = 0;
    b.rows = b.cols = b.pitch = 0;
    b.slots = 1 << 30;
    CHECK_THROWS_WITH(run_stage(p, p.stages[0], nullptr), Catch::Contains("buffer 'b' has empty slots"));
  }
}

TEST_CASE("a stored hardware description names no other file", "[untrusted][aie2]") {
  // "base" made reading a model file open the file it named.
  CHECK_THROWS_WITH(hardware_from_json(Json::parse(R"({"base": "/etc/passwd"})"), "/program"),
                    "/program: a stored hardware description has no 'base'");
  const Hardware hw = load_target("aie2:2x2");
  CHECK(hardware_from_json(Json::parse(hardware_to_json(hw).dump()), "/program").cores() == 4);
}

TEST_CASE("an input normalisation of the wrong type is an error on export", "[untrusted]") {
  // bsp export took it for a float64 list (std::bad_variant_access).
  Model m = tiny_model();
  m.nodes.at(0).attrs.set("norm_mean", int64_t{1});
  m.nodes.at(0).attrs.set("norm_std", std::vector<double>{1, 1, 1});
  CHECK_THROWS_WITH(onnx_io::bsp_metadata(m), "node 'input': attribute 'norm_mean' is not a float64 list");
}

TEST_CASE("a kernel call is checked against its buffers in timing runs too", "[untrusted][aie2]") {
  // bsp estimate (timing only) took any tile size: oh * ow * nnz * 64 * kh * kw
  // overflowed int64, and so did the cycle count's conversion.
  Program p = one_buffer_program();
  StageProg& s = p.stages[0];
  s.bufs.clear();
  for (int32_t f = 0; f < 3; ++f) {  // input, weights, output: private core buffers of core 0
    BufDecl b;
    b.id = f;
    b.name = "f" + std::to_string(f);
    b.mem = Mem::Core;
    b.addr = p.hw.core_reserved + f * 1024;
    b.slot_bytes = 1024;
    b.rows = b.cols = 4, b.pitch = 8, b.elem_bytes = 4;
    b.flags = f == 1 ? (kBufPrivate | kBufLinear) : kBufPrivate;
    b.family = f;
    s.bufs.push_back(b);
  }
  KernelDecl& k = s.kernels[0];
  k.in_buf = 0, k.w_buf = 1, k.out_buf = 2;
  auto comp = [&](int32_t oh, int32_t ow, int32_t co, int32_t nnz) {
    s.queues[0].code = {make(Opc::Comp, {0, 0, 0, 0, 0, oh, ow, co, 8, nnz, kCFirst | kCLast})};
    return run_stage(p, s, nullptr);
  };
  CHECK(comp(4, 4, 8, 1).cls[kClsComp].macs > 0);
  CHECK_THROWS_WITH(comp(1 << 30, 1 << 30, 8, 1), Catch::Contains("output tile of 1073741824x1073741824x8 does not fit its buffer [4][4][8]"));
  CHECK_THROWS_WITH(comp(4, 4, 8, 1 << 20), Catch::Contains("1048576 weight blocks do not fit a weight slot of 1024 bytes"));
}

TEST_CASE("a dataspace of more elements than int64 counts is an error", "[untrusted]") {
  // fuzz_model: the element count overflowed int64 in Array (shape_numel).
  TempDir d;
  CHECK_THROWS_WITH(edit_and_load(d, [](hid_t f) {
                      H5Ldelete(f, "graph/nodes/fc/bias", H5P_DEFAULT);
                      const hsize_t dims[2] = {hsize_t{1} << 40, hsize_t{1} << 40}, chunk[2] = {1, 1};
                      h5::Handle space(H5Screate_simple(2, dims, nullptr));
                      h5::Handle dcpl(H5Pcreate(H5P_DATASET_CREATE));
                      H5Pset_chunk(dcpl, 2, chunk);
                      h5::Handle ds(H5Dcreate2(f, "graph/nodes/fc/bias", H5T_IEEE_F32LE, space, H5P_DEFAULT, dcpl, H5P_DEFAULT));
                      REQUIRE(ds.valid());
                    }),
                    Catch::Contains("a dataspace of 9223372036854775807 elements or more"));
}
