// Safe file handling for every stage (shared/DESIGN.md section 4):
// outputs go to a temporary file beside the target and are renamed into place
// only when complete; "-" means stdin / stdout. A failure, an exception or a
// SIGINT/SIGTERM/SIGHUP never leaves a half-written file behind.
#pragma once

#include <string>

namespace bsp {

class OutputFile {
 public:
  // target: a path, or "-" for stdout (refused when stdout is a terminal).
  explicit OutputFile(std::string target);
  ~OutputFile();  // removes the temporary file unless committed
  OutputFile(const OutputFile&) = delete;
  OutputFile& operator=(const OutputFile&) = delete;

  const std::string& temp_path() const { return temp_; }
  const std::string& target() const { return target_; }
  // Makes the finished temporary file the target (rename, or copy to stdout).
  void commit();

 private:
  std::string target_, temp_;
  bool committed_ = false;
  int slot_ = -1;  // in the signal-cleanup registry
};

// An input path; "-" spools stdin into a temporary file first (HDF5 needs a
// seekable file), removed again on destruction.
class InputFile {
 public:
  explicit InputFile(std::string path);
  ~InputFile();
  InputFile(const InputFile&) = delete;
  InputFile& operator=(const InputFile&) = delete;

  const std::string& path() const { return path_; }     // what to open
  const std::string& display() const { return display_; }  // for messages

 private:
  std::string path_, display_;
  bool temporary_ = false;
  int slot_ = -1;
};

// True when both paths name the same existing file.
bool same_file(const std::string& a, const std::string& b);

// Installs the SIGINT/SIGTERM/SIGHUP handlers that remove registered
// temporary files before the process ends (exit 130 / 143 / 129).
void install_cleanup_handlers();

// For long work that can stop cleanly (bsp finetune saves a checkpoint):
// while a SignalLatch lives, the first SIGINT or SIGTERM only records the
// signal; a second one ends the process as install_cleanup_handlers() does.
class SignalLatch {
 public:
  SignalLatch();
  ~SignalLatch();  // back to the cleanup handlers
  SignalLatch(const SignalLatch&) = delete;
  SignalLatch& operator=(const SignalLatch&) = delete;
  int signal() const;  // the signal received, 0 if none
};

}  // namespace bsp
