// The one error type of bsp. It carries the process exit code so that the
// command line can report any failure the same way:
//   bsp SUBCOMMAND: what failed: why        (stderr, one line)
// Exit codes (documented in man/bsp.1): 0 success, 1 runtime error,
// 2 usage error, 130/143 interrupted by SIGINT/SIGTERM.
#pragma once

#include <stdexcept>
#include <string>

#include <fmt/format.h>

namespace bsp {

enum ExitCode : int {
  kExitOk = 0,
  kExitRuntime = 1,
  kExitUsage = 2,
  kExitSigint = 130,
  kExitSigterm = 143,
};

class Error : public std::runtime_error {
 public:
  explicit Error(std::string message, int exit_code = kExitRuntime)
      : std::runtime_error(std::move(message)), exit_code_(exit_code) {}
  int exit_code() const { return exit_code_; }

 private:
  int exit_code_;
};

// A bad argument or option value: exit code 2.
class UsageError : public Error {
 public:
  explicit UsageError(std::string message) : Error(std::move(message), kExitUsage) {}
};

// strerror(err) starting in lowercase, as bsp's messages do: "no such file or directory".
std::string errno_message(int err);

template <typename... Args>
[[noreturn]] void fail(fmt::format_string<Args...> f, Args&&... args) {
  throw Error(fmt::format(f, std::forward<Args>(args)...));
}

template <typename... Args>
[[noreturn]] void fail_usage(fmt::format_string<Args...> f, Args&&... args) {
  throw UsageError(fmt::format(f, std::forward<Args>(args)...));
}

}  // namespace bsp
