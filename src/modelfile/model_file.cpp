// Whole model files and what makes their groups stale (model_file.hpp).
#include "modelfile/model_file.hpp"

#include <algorithm>
#include <map>
#include <optional>

#include "aie2/store.hpp"
#include "compact/compact.hpp"
#include "core/h5.hpp"
#include "core/model_io.hpp"

namespace bsp {

namespace {

// The staleness rule of model_file.hpp, one test per group.
bool compact_fresh(const Model& m, uint64_t source_hash) { return source_hash == content_hash(m); }
bool aie2_fresh(const Model& m, DType dtype, uint64_t source_hash) {
  return source_hash == aie2::model_hash(m, dtype);
}

// Whether the file's /schedule or /program group (`group`) is there and
// made for m; when it is there but not, the reason goes to m.aie2_dropped.
bool aie2_group_fits(Model& m, hid_t f, const char* group, const char* made) {
  const std::optional<aie2::GroupSource> src = aie2::stored_source(f, group);
  if (!src) return false;
  if (!src->readable) {
    m.aie2_dropped = fmt::format("the /{} group is of another version: ignored", group);
    return false;
  }
  if (!aie2_fresh(m, src->dtype, src->source_hash)) {
    m.aie2_dropped = fmt::format("{} for other weights or masks: it was dropped", made);
    return false;
  }
  return true;
}

// A stripped file (bsp-format(5), DROPPED DENSE WEIGHTS): its graph holds
// zero weights for `weightless` (read_graph's placeholders). /compact is
// read whatever its source_hash says, it gives those weights back, and the
// graph rebuilt with them must be the one bsp wrote (rebuilt_hash).
void read_stripped(Model& m, hid_t f, const std::vector<std::string>& weightless) {
  // read_graph's weight_shape callback refused a weightless node without /compact.
  const std::string first = weightless.empty() ? std::string() : weightless.front();
  std::optional<uint64_t> stored;
  std::shared_ptr<const compact::CompactModel> c = compact::load_compact(m, f, &stored);
  if (!stored)
    fail("node '{}': no weight, and /compact has no rebuilt_hash: only a file written with its dense weights "
         "dropped (bsp strip) leaves them out",
         first);
  // Exactly the layers whose compact form holds their values are left out.
  for (const auto& [name, l] : c->layers) {
    const bool absent = std::find(weightless.begin(), weightless.end(), name) != weightless.end();
    if (absent && !compact::holds_values(l))
      fail("node '{}': no weight, and its compact form (fp32 dense) is the graph's weight", name);
    if (!absent && compact::holds_values(l))
      fail("node '{}': a dense weight in a file whose dense weights were dropped (/compact has rebuilt_hash)", name);
  }
  for (const std::string& name : weightless) m.find(name)->param("weight") = compact::rebuild_weight(m, *c, name);
  m.validate();  // the rebuilt values: finite, zero where a mask prunes
  const uint64_t h = graph_hash(m);
  if (h != *stored)
    fail("the graph is not the one its weights were dropped from (rebuilt, it hashes to {:016x}, not rebuilt_hash "
         "{:016x}): edited after bsp wrote it",
         h, *stored);
  m.compact = std::move(c);
  m.drop_dense = true;
  m.rebuilt = Model::Rebuilt{h, m.compact->source_hash, m.compact->dtype, weightless};
}

bool has_rebuilt_hash(hid_t f) {
  return h5::exists(f, "compact") && h5::has_attr(h5::open_group(f, "compact"), "rebuilt_hash");
}

// Reads the groups of an open file into m (the graph already read), in the
// order they depend on each other.
void read_groups(Model& m, hid_t f, const std::vector<std::string>& weightless) {
  if (!weightless.empty() || has_rebuilt_hash(f)) {
    read_stripped(m, f, weightless);
  } else if (auto h = compact::stored_source_hash(f)) {
    if (compact_fresh(m, *h))
      m.compact = compact::load_compact(m, f);
    else
      m.compact_dropped = "the compact weights were made from other weights (the model changed after bsp compact)";
  }
  if (aie2_group_fits(m, f, "schedule", "the stored schedule was made")) m.schedule = aie2::load_schedule(m, f);
  // A program is generated from the schedule beside it: without that one
  // (absent, of another version, dropped) it is not believed either.
  if (aie2_group_fits(m, f, "program", "the stored program was generated")) {
    if (!m.schedule || !m.aie2_dropped.empty()) {
      if (m.aie2_dropped.empty()) m.aie2_dropped = "the /program group has no /schedule beside it: ignored";
    } else {
      m.program = aie2::load_program(f);
    }
  }
}

}  // namespace

Model load_model(const std::string& path, const std::string& display) {
  try {
    h5::Handle f = open_model_file(path);
    std::vector<std::string> weightless;
    Model m = read_graph(
        f,
        [&](const std::string& node) {
          if (!h5::exists(f, "compact"))
            fail("node '{}': no weight, and no /compact group to rebuild it from (bsp-format(5), DROPPED DENSE "
                 "WEIGHTS)",
                 node);
          return compact::stored_weight_shape(f.get(), node);
        },
        &weightless);
    read_groups(m, f, weightless);
    return m;
  } catch (const Error& e) {
    throw Error(fmt::format("cannot read '{}': {}", display, e.what()), e.exit_code());
  }
}

void save_model(const Model& m, const std::string& path, const SaveOptions& opt) {
  m.validate();
  std::optional<h5::CompressScope> compress;
  if (opt.compress_level > 0) compress.emplace(opt.compress_level);
  const bool compact_ok = m.compact && compact_fresh(m, m.compact->source_hash);
  // Dropping dense weights: the layers whose compact form holds their
  // values, and the hash of the graph a reader rebuilds from them.
  std::vector<std::string> drop;
  std::optional<uint64_t> rebuilt_hash;
  if (m.drop_dense && compact_ok) {
    std::map<std::string, Tensor> rebuilt;
    for (const auto& [name, l] : m.compact->layers)
      if (compact::holds_values(l)) {
        drop.push_back(name);
        rebuilt.emplace(name, compact::rebuild_weight(m, *m.compact, name));
      }
    if (!drop.empty()) rebuilt_hash = graph_hash(m, &rebuilt);
  }
  h5::Handle f = create_model_file(path, m);
  write_graph(m, f, drop);
  if (compact_ok) compact::save_compact(m, *m.compact, f.get(), rebuilt_hash);
  if (m.schedule && aie2_fresh(m, m.schedule->dtype, m.schedule->source_hash)) aie2::save_schedule(m, *m.schedule, f.get());
  if (m.program && aie2_fresh(m, m.program->program.dtype, m.program->source_hash)) aie2::save_program(*m.program, f.get());
  h5::flush(f);
}

void set_compact(Model& m, std::shared_ptr<const compact::CompactModel> c) {
  m.compact = std::move(c);
  m.compact_dropped.clear();
  // An int8 schedule and program were made from the int8 program this replaces.
  if (m.schedule && !aie2_fresh(m, m.schedule->dtype, m.schedule->source_hash)) m.schedule.reset();
  if (m.program && !aie2_fresh(m, m.program->program.dtype, m.program->source_hash)) m.program.reset();
}

void set_schedule(Model& m, std::shared_ptr<const aie2::Schedule> s) {
  m.schedule = std::move(s);
  m.program.reset();  // generated from the schedule this replaces
  m.aie2_dropped.clear();
}

void set_program(Model& m, std::shared_ptr<const aie2::ProgramFile> p) {
  m.program = std::move(p);
  m.aie2_dropped.clear();
}

}  // namespace bsp
