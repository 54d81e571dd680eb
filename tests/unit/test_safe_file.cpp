#include <catch2/catch.hpp>

#include <dirent.h>

#include <fstream>

#include "core/safe_file.hpp"
#include "test_helpers.hpp"

using namespace bsp;
using bsp::test::TempDir;

namespace {
int count_entries(const std::string& dir) {
  int n = 0;
  DIR* d = opendir(dir.c_str());
  while (dirent* e = readdir(d))
    if (std::string(e->d_name) != "." && std::string(e->d_name) != "..") ++n;
  closedir(d);
  return n;
}
std::string slurp(const std::string& p) {
  std::ifstream in(p);
  return std::string((std::istreambuf_iterator<char>(in)), {});
}
}  // namespace

TEST_CASE("an output appears only when committed") {
  TempDir d;
  std::ofstream(d.file("out.txt")) << "old";
  {
    OutputFile f(d.file("out.txt"));
    std::ofstream(f.temp_path()) << "new";
    CHECK(slurp(d.file("out.txt")) == "old");  // untouched while writing
    CHECK(count_entries(d.path()) == 2);
    f.commit();
  }
  CHECK(slurp(d.file("out.txt")) == "new");
  CHECK(count_entries(d.path()) == 1);
}

TEST_CASE("an abandoned output leaves nothing behind and keeps the old file") {
  TempDir d;
  std::ofstream(d.file("keep.txt")) << "old";
  try {
    OutputFile f(d.file("keep.txt"));
    std::ofstream(f.temp_path()) << "half";
    throw std::runtime_error("failure while writing");
  } catch (const std::runtime_error&) {
  }
  CHECK(slurp(d.file("keep.txt")) == "old");
  CHECK(count_entries(d.path()) == 1);
  { OutputFile f(d.file("new.txt")); }
  CHECK(count_entries(d.path()) == 1);
}

TEST_CASE("outputs into missing directories or onto directories are refused") {
  TempDir d;
  CHECK_THROWS_WITH(OutputFile(d.file("nodir/x.h5")), Catch::Contains("does not exist"));
  CHECK_THROWS_WITH(OutputFile(d.path()), Catch::Contains("is a directory"));
  CHECK_THROWS_AS(OutputFile(""), UsageError);
}

TEST_CASE("same_file sees through different spellings") {
  TempDir d;
  std::ofstream(d.file("a")) << "x";
  CHECK(same_file(d.file("a"), d.path() + "/./a"));
  CHECK_FALSE(same_file(d.file("a"), d.file("b")));
  CHECK_FALSE(same_file("-", "-"));
}
