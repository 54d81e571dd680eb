// The MPI communicator (OpenMPI from Debian's libopenmpi-dev; any MPI-3
// library): built only when Meson finds MPI (option 'mpi').
#include <mpi.h>

#include <cstdlib>
#include <limits>
#include <vector>

#include "core/error.hpp"
#include "train/comm.hpp"

namespace bsp::train {

namespace {

// Started by a launcher: OpenMPI's mpirun / mpiexec, a PMIx launcher (srun
// --mpi=pmix, prterun) or a PMI-1/2 one (srun --mpi=pmi2, MPICH's hydra).
bool launched() {
  for (const char* v : {"OMPI_COMM_WORLD_SIZE", "PMIX_RANK", "PMI_RANK", "PMI_SIZE"})
    if (std::getenv(v)) return true;
  return false;
}

void check(int rc, const char* what) {
  if (rc != MPI_SUCCESS) {
    char msg[MPI_MAX_ERROR_STRING];
    int len = 0;
    MPI_Error_string(rc, msg, &len);
    fail("MPI: {} failed: {}", what, std::string(msg, static_cast<size_t>(len)));
  }
}

class MpiComm final : public Comm {
 public:
  MpiComm() {
    int provided = 0;
    // The collectives are called from the main thread only (OpenMP threads
    // never call MPI).
    check(MPI_Init_thread(nullptr, nullptr, MPI_THREAD_FUNNELED, &provided), "MPI_Init_thread");
    MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
    MPI_Comm_size(MPI_COMM_WORLD, &size_);
    std::atexit([] {
      int done = 0;
      MPI_Finalized(&done);
      if (!done) MPI_Finalize();
    });
  }
  int rank() const override { return rank_; }
  int size() const override { return size_; }
  void sum(float* v, int64_t n) override {
    constexpr int64_t kMax = std::numeric_limits<int>::max();
    for (int64_t i = 0; i < n; i += kMax)
      check(MPI_Allreduce(MPI_IN_PLACE, v + i, static_cast<int>(std::min(kMax, n - i)), MPI_FLOAT, MPI_SUM,
                          MPI_COMM_WORLD),
            "MPI_Allreduce");
  }
  void sum_ordered(double* v, int64_t n) override {
    std::vector<double> all(static_cast<size_t>(n * size_));
    gather(v, n, all.data());
    for (int64_t i = 0; i < n; ++i) {
      double s = 0;
      for (int r = 0; r < size_; ++r) s += all[static_cast<size_t>(r * n + i)];
      v[i] = s;
    }
  }
  void gather(const double* v, int64_t n, double* all) override {
    check(MPI_Allgather(v, static_cast<int>(n), MPI_DOUBLE, all, static_cast<int>(n), MPI_DOUBLE, MPI_COMM_WORLD),
          "MPI_Allgather");
  }
  [[noreturn]] void abort(int code) override {
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

 private:
  int rank_ = 0, size_ = 1;
};

}  // namespace

Comm* launched_comm() {
  if (!launched()) return nullptr;
  static MpiComm c;
  return &c;
}

bool built_with_mpi() { return true; }

}  // namespace bsp::train
