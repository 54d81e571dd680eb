// libFuzzer target, structure-aware: takes a valid bsp model file (one of
// the files in $BSP_FUZZ_BASES, made by tests/fuzz/make_seeds.sh), applies
// edits the input chooses through the HDF5 API (attribute and dataset values,
// types, shapes, deletions, names), then loads the result with load_model.
// The files stay well-formed HDF5, so the fuzzer spends its time in bsp's
// validation instead of HDF5's parser. Input: byte 0 picks the base file,
// then records of 12 bytes: kind, object (2 bytes), name, value (8 bytes).
#include <dirent.h>
#include <hdf5.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>

#include "core/h5.hpp"
#include "fuzz_common.hpp"
#include "modelfile/model_file.hpp"

namespace {

std::vector<std::vector<uint8_t>> g_bases;

// Every group and dataset of a file, by path.
struct Obj {
  std::string path;
  bool dataset;
};

herr_t visit(hid_t, const char* name, const H5O_info_t* info, void* data) {
  auto* v = static_cast<std::vector<Obj>*>(data);
  if (info->type == H5O_TYPE_GROUP || info->type == H5O_TYPE_DATASET)
    v->push_back({std::string("/") + (std::strcmp(name, ".") == 0 ? "" : name), info->type == H5O_TYPE_DATASET});
  return 0;
}

// Values worth trying for integers and floats; the value bytes pick one or
// are taken as they are.
int64_t pick_int(uint64_t v) {
  static const int64_t table[] = {0,  1,  -1, 2,  3,  7,  8,  16, 255, 256, 65535, 65536, INT32_MAX, INT32_MIN,
                                  (int64_t{1} << 31), (int64_t{1} << 32), (int64_t{1} << 40), INT64_MAX, INT64_MIN,
                                  -2, 4, 13, 32767, 1000000};
  const size_t n = sizeof table / sizeof table[0];
  if ((v & 0xff) < 0xc0) return table[(v >> 8) % n];
  return static_cast<int64_t>(v >> 8) - (int64_t{1} << 55);
}
double pick_double(uint64_t v) {
  static const double table[] = {0.0, -0.0, 1.0, -1.0, 0.5, 2.0, 1e-30, 1e30, 1e300, -1e300,
                                 std::numeric_limits<double>::quiet_NaN(), std::numeric_limits<double>::infinity(),
                                 -std::numeric_limits<double>::infinity(), 4.9e-324, 0.999, 1.0000001};
  const size_t n = sizeof table / sizeof table[0];
  if ((v & 0xff) < 0xc0) return table[(v >> 8) % n];
  double d;
  std::memcpy(&d, &v, 8);
  return d;
}
std::string pick_string(uint64_t v, const std::vector<std::string>& dict) {
  if ((v & 0xff) < 0x80 && !dict.empty()) return dict[(v >> 8) % dict.size()];
  static const char* table[] = {"", "conv2d", "dense", "relu", "add", "maxpool2d", "avgpool2d", "batchnorm",
                                "input", "flatten", "concat", "softmax", "int8", "fp32", "bf16", "nm", "block",
                                "tile", "unstructured", "csr", "bitmap", "dense", "A", "B", "0123456789abcdef",
                                "ffffffffffffffff", "{}", "[]", "bsp", "same", "valid", "global_avgpool"};
  if ((v & 0xff) < 0xe0) return table[(v >> 8) % (sizeof table / sizeof table[0])];
  char raw[8];
  std::memcpy(raw, &v, 8);
  return std::string(raw, 1 + (v >> 61));
}

hid_t vlen_str() {
  hid_t t = H5Tcopy(H5T_C_S1);
  H5Tset_size(t, H5T_VARIABLE);
  H5Tset_cset(t, H5T_CSET_UTF8);
  return t;
}

void write_scalar_attr(hid_t obj, const std::string& name, hid_t type, const void* v, int rank = 0, hsize_t n = 1) {
  if (H5Aexists(obj, name.c_str()) > 0) H5Adelete(obj, name.c_str());
  hid_t space = rank ? H5Screate_simple(1, &n, nullptr) : H5Screate(H5S_SCALAR);
  hid_t a = H5Acreate2(obj, name.c_str(), type, space, H5P_DEFAULT, H5P_DEFAULT);
  if (a >= 0) {
    H5Awrite(a, type, v);
    H5Aclose(a);
  }
  H5Sclose(space);
}

// Changes one element of a dataset (index from the value's high bits).
void set_element(hid_t d, uint64_t v, const std::vector<std::string>& dict) {
  hid_t space = H5Dget_space(d);
  hssize_t n = H5Sget_simple_extent_npoints(space);
  int rank = H5Sget_simple_extent_ndims(space);
  hid_t type = H5Dget_type(d);
  if (n > 0 && rank >= 1 && rank <= 8) {
    hsize_t dims[8];
    H5Sget_simple_extent_dims(space, dims, nullptr);
    uint64_t idx = (v >> 32) % static_cast<uint64_t>(n);
    hsize_t coord[8];
    for (int i = rank - 1; i >= 0; --i) {
      coord[i] = idx % dims[i];
      idx /= dims[i];
    }
    H5Sselect_elements(space, H5S_SELECT_SET, 1, coord);
    hsize_t one = 1;
    hid_t mem = H5Screate_simple(1, &one, nullptr);
    const H5T_class_t cls = H5Tget_class(type);
    if (cls == H5T_FLOAT) {
      double x = pick_double(v & 0xffffffffu ? v : v | 0xc0);
      H5Dwrite(d, H5T_NATIVE_DOUBLE, mem, space, H5P_DEFAULT, &x);
    } else if (cls == H5T_INTEGER) {
      int64_t x = pick_int(v & 0xffffffffu);
      H5Dwrite(d, H5T_NATIVE_INT64, mem, space, H5P_DEFAULT, &x);
    } else if (cls == H5T_STRING && H5Tis_variable_str(type) > 0) {
      std::string s = pick_string(v, dict);
      const char* p = s.c_str();
      hid_t t = vlen_str();
      H5Dwrite(d, t, mem, space, H5P_DEFAULT, &p);
      H5Tclose(t);
    }
    H5Sclose(mem);
  }
  H5Tclose(type);
  H5Sclose(space);
}

// Replaces a dataset by one of the same type and another shape: a dimension
// changed, added or dropped; contents zero, or the old bytes where they fit.
void reshape_dataset(hid_t file, const std::string& path, uint64_t v) {
  hid_t d = H5Dopen2(file, path.c_str(), H5P_DEFAULT);
  if (d < 0) return;
  hid_t type = H5Dget_type(d);
  hid_t space = H5Dget_space(d);
  int rank = H5Sget_simple_extent_ndims(space);
  hsize_t dims[8] = {0};
  if (rank > 0 && rank <= 8) H5Sget_simple_extent_dims(space, dims, nullptr);
  if (rank < 0 || rank > 8 || H5Tget_class(type) == H5T_STRING) {
    H5Sclose(space), H5Tclose(type), H5Dclose(d);
    return;
  }
  const int how = v & 3;
  const hsize_t val = static_cast<hsize_t>((v >> 8) & 0xff);  // 0..255: small
  if (how == 0 && rank > 0) dims[(v >> 16) % static_cast<uint64_t>(rank)] = val;
  else if (how == 1 && rank < 8) dims[rank++] = val % 4 + 1;
  else if (how == 2 && rank > 0) --rank;
  else if (rank > 0) dims[(v >> 16) % static_cast<uint64_t>(rank)] += 1;
  hssize_t old_n = H5Sget_simple_extent_npoints(space);
  size_t es = H5Tget_size(type);
  std::vector<uint8_t> buf(static_cast<size_t>(std::max<hssize_t>(old_n, 0)) * es);
  if (!buf.empty()) H5Dread(d, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data());
  H5Sclose(space);
  H5Dclose(d);
  H5Ldelete(file, path.c_str(), H5P_DEFAULT);
  hid_t ns = rank ? H5Screate_simple(rank, dims, nullptr) : H5Screate(H5S_SCALAR);
  hid_t nd = H5Dcreate2(file, path.c_str(), type, ns, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (nd >= 0) {
    hssize_t n = H5Sget_simple_extent_npoints(ns);
    std::vector<uint8_t> nb(static_cast<size_t>(std::max<hssize_t>(n, 0)) * es, 0);
    if (!nb.empty() && !buf.empty()) std::memcpy(nb.data(), buf.data(), std::min(nb.size(), buf.size()));
    if (!nb.empty()) H5Dwrite(nd, type, H5S_ALL, H5S_ALL, H5P_DEFAULT, nb.data());
    H5Dclose(nd);
  }
  H5Sclose(ns);
  H5Tclose(type);
}

// Converts a dataset to another element type (int8, int32, float64, ...).
void retype_dataset(hid_t file, const std::string& path, uint64_t v) {
  static const hid_t* types[] = {&H5T_STD_I8LE, &H5T_STD_U8LE, &H5T_STD_I32LE, &H5T_STD_I64LE, &H5T_IEEE_F32LE,
                                 &H5T_IEEE_F64LE, &H5T_STD_U64LE, &H5T_IEEE_F32BE};
  hid_t d = H5Dopen2(file, path.c_str(), H5P_DEFAULT);
  if (d < 0) return;
  hid_t type = H5Dget_type(d);
  hid_t space = H5Dget_space(d);
  const bool numeric = H5Tget_class(type) == H5T_INTEGER || H5Tget_class(type) == H5T_FLOAT;
  hssize_t n = H5Sget_simple_extent_npoints(space);
  if (!numeric || n < 0) {
    H5Sclose(space), H5Tclose(type), H5Dclose(d);
    return;
  }
  std::vector<double> buf(static_cast<size_t>(n));
  if (n) H5Dread(d, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data());
  H5Dclose(d);
  H5Ldelete(file, path.c_str(), H5P_DEFAULT);
  hid_t nt = *types[(v >> 8) % (sizeof types / sizeof types[0])];
  hid_t nd = H5Dcreate2(file, path.c_str(), nt, space, H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT);
  if (nd >= 0) {
    if (n) H5Dwrite(nd, H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT, buf.data());
    H5Dclose(nd);
  }
  H5Sclose(space);
  H5Tclose(type);
}

std::vector<std::string> read_order(hid_t file) {
  std::vector<std::string> out;
  if (H5Lexists(file, "graph", H5P_DEFAULT) <= 0 || H5Lexists(file, "graph/order", H5P_DEFAULT) <= 0) return out;
  hid_t d = H5Dopen2(file, "graph/order", H5P_DEFAULT);
  if (d < 0) return out;
  hid_t space = H5Dget_space(d);
  hssize_t n = H5Sget_simple_extent_npoints(space);
  hid_t t = vlen_str();
  if (n > 0) {
    std::vector<char*> p(static_cast<size_t>(n), nullptr);
    if (H5Dread(d, t, H5S_ALL, H5S_ALL, H5P_DEFAULT, p.data()) >= 0) {
      for (char* s : p) out.emplace_back(s ? s : "");
      H5Dvlen_reclaim(t, space, H5P_DEFAULT, p.data());
    }
  }
  H5Tclose(t);
  H5Sclose(space);
  H5Dclose(d);
  return out;
}

void apply(hid_t file, const uint8_t* r, const std::vector<Obj>& objs, const std::vector<std::string>& dict) {
  const int kind = r[0] % 12;
  const Obj& o = objs[(static_cast<size_t>(r[1]) | static_cast<size_t>(r[2]) << 8) % objs.size()];
  uint64_t v;
  std::memcpy(&v, r + 4, 8);
  hid_t obj = H5Oopen(file, o.path.c_str(), H5P_DEFAULT);
  if (obj < 0) return;
  std::vector<std::string> attrs = bsp::h5::attr_names(obj);
  // An attribute of the object, or one of the names bsp reads.
  static const char* known[] = {
      "arch", "block", "channel_bounds", "clamp", "count_rq_mult", "count_rq_shift", "ddr_bytes", "ddr_const_bytes",
      "density", "dtype", "fingerprint", "format", "format_version", "fused_into", "hardware", "in_mult",
      "in_rq_mult", "in_rq_shift", "in_shift", "input_addr", "input_shape", "inputs", "kind", "name", "nm",
      "nodes", "op", "order", "output_addr", "output_shape", "pattern", "row_order", "rq", "scale", "source_hash",
      "split", "target", "tile", "tile_width", "version", "weight_shape", "weights_resident", "alpha", "beta",
      "count_include_pad", "dilation", "eps", "groups", "kernel", "max", "min", "pad", "shape", "stride", "content_hash"};
  const std::string an = !attrs.empty() && !(r[3] & 0x80) ? attrs[r[3] % attrs.size()]
                                                          : known[(r[3] & 0x7f) % (sizeof known / sizeof known[0])];
  switch (kind) {
    case 0: {  // an integer attribute
      int64_t x = pick_int(v);
      write_scalar_attr(obj, an, H5T_NATIVE_INT64, &x);
      break;
    }
    case 1: {  // a float attribute
      double x = pick_double(v);
      write_scalar_attr(obj, an, H5T_NATIVE_DOUBLE, &x);
      break;
    }
    case 2: {  // a string attribute
      std::string s = pick_string(v, dict);
      const char* p = s.c_str();
      hid_t t = vlen_str();
      write_scalar_attr(obj, an, t, &p);
      H5Tclose(t);
      break;
    }
    case 3:  // no attribute
      if (H5Aexists(obj, an.c_str()) > 0) H5Adelete(obj, an.c_str());
      break;
    case 4: {  // a list of integers (a scalar's list, a list's length changed)
      hsize_t n = (v >> 56) % 6;
      std::vector<int64_t> xs(n ? n : 1);
      for (size_t i = 0; i < xs.size(); ++i) xs[i] = pick_int(v >> (i * 7));
      write_scalar_attr(obj, an, H5T_NATIVE_INT64, xs.data(), 1, n);
      break;
    }
    case 5: {  // a list of strings (node inputs)
      hsize_t n = v % 4;
      std::vector<std::string> ss;
      for (hsize_t i = 0; i < n; ++i) ss.push_back(pick_string(v >> (8 * (i + 1)), dict));
      std::vector<const char*> ps;
      for (auto& s : ss) ps.push_back(s.c_str());
      hid_t t = vlen_str();
      write_scalar_attr(obj, an, t, ps.data(), 1, n);
      H5Tclose(t);
      break;
    }
    case 6: case 7:  // one element of a dataset
      if (o.dataset) set_element(obj, v, dict);
      break;
    case 8:  // no such object
      H5Oclose(obj);
      if (o.path != "/") H5Ldelete(file, o.path.c_str(), H5P_DEFAULT);
      return;
    case 9:
      H5Oclose(obj);
      if (o.dataset) reshape_dataset(file, o.path, v);
      return;
    case 10:
      H5Oclose(obj);
      if (o.dataset) retype_dataset(file, o.path, v);
      return;
    case 11: {  // a copy of the object under another name (a node twice, ...)
      H5Oclose(obj);
      std::string to = o.path.substr(0, o.path.rfind('/') + 1) + pick_string(v, dict);
      if (o.path != "/" && to.back() != '/' && H5Lexists(file, to.c_str(), H5P_DEFAULT) == 0)
        H5Ocopy(file, o.path.c_str(), file, to.c_str(), H5P_DEFAULT, H5P_DEFAULT);
      return;
    }
  }
  H5Oclose(obj);
}

}  // namespace

extern "C" int LLVMFuzzerInitialize(int*, char***) {
  const char* dir = std::getenv("BSP_FUZZ_BASES");
  if (!dir) {
    std::fprintf(stderr, "fuzz_edit: set BSP_FUZZ_BASES to a folder of bsp model files\n");
    std::exit(2);
  }
  std::vector<std::string> files;
  if (DIR* d = opendir(dir)) {
    while (dirent* e = readdir(d))
      if (std::string n = e->d_name; n.size() > 3 && n.substr(n.size() - 3) == ".h5") files.push_back(std::string(dir) + "/" + n);
    closedir(d);
  }
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    std::ifstream in(f, std::ios::binary);
    g_bases.emplace_back(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
  }
  if (g_bases.empty()) {
    std::fprintf(stderr, "fuzz_edit: no .h5 files in %s\n", dir);
    std::exit(2);
  }
  H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  return 0;
}

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size < 1) return 0;
  const std::string& path = bsp::fuzz::scratch_path("edit");
  const auto& base = g_bases[data[0] % g_bases.size()];
  bsp::fuzz::write_file(path, base.data(), base.size());
  {
    hid_t f = H5Fopen(path.c_str(), H5F_ACC_RDWR, H5P_DEFAULT);
    if (f < 0) std::abort();  // a base file HDF5 cannot open
    std::vector<std::string> dict = read_order(f);
    for (size_t i = 1; i + 12 <= size && i < 1 + 12 * 16; i += 12) {
      std::vector<Obj> objs;
      H5Ovisit2(f, H5_INDEX_NAME, H5_ITER_INC, visit, &objs, H5O_INFO_BASIC);
      if (objs.empty()) break;
      apply(f, data + i, objs, dict);
    }
    H5Fclose(f);
  }
  bsp::fuzz::load_and_exercise(path);
  return 0;
}
