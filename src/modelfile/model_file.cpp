// Whole model files and what makes their groups stale (model_file.hpp).
#include "modelfile/model_file.hpp"

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

// Reads the groups of an open file into m (the graph already read), in the
// order they depend on each other.
void read_groups(Model& m, hid_t f) {
  if (auto h = compact::stored_source_hash(f)) {
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
    Model m = read_graph(f);
    read_groups(m, f);
    return m;
  } catch (const Error& e) {
    throw Error(fmt::format("cannot read '{}': {}", display, e.what()), e.exit_code());
  }
}

void save_model(const Model& m, const std::string& path) {
  m.validate();
  h5::Handle f = create_model_file(path, m);
  write_graph(m, f);
  if (m.compact && compact_fresh(m, m.compact->source_hash)) compact::save_compact(m, *m.compact, f.get());
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
