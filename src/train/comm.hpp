// The processes of a data-parallel training run: one (the default), or the
// ranks of an MPI job (`mpirun -np K bsp finetune ...`, `srun bsp finetune
// ...`). Each rank trains on its share of every global batch; the ranks
// agree on everything else through these collectives, so that they hold the
// same model after every step (man/bsp-finetune.1, DATA-PARALLEL TRAINING).
#pragma once

#include <cstdint>
#include <memory>

namespace bsp::train {

class Comm {
 public:
  virtual ~Comm() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  // v[i] = the sum over the ranks of v[i], in place, on every rank.
  virtual void sum(float* v, int64_t n) = 0;
  // The same for doubles, added in rank order on every rank, so that every
  // rank gets the same bits (for the few statistics that decide what
  // every rank does next: batchnorm statistics, the loss, a stop).
  virtual void sum_ordered(double* v, int64_t n) = 0;
  // all[r * n + i] = rank r's v[i], on every rank.
  virtual void gather(const double* v, int64_t n, double* all) = 0;
  // Ends every rank's process at once, with this exit code (MPI_Abort).
  [[noreturn]] virtual void abort(int code) = 0;
};

// The one process: every collective is the identity.
Comm& solo_comm();

// The MPI job this process was started in, when it was started by mpirun,
// mpiexec or srun (their environment variables say so) and bsp was built
// with MPI; else null. Initialises MPI on the first call; MPI is finalised
// at exit.
Comm* launched_comm();
// Whether this bsp was built with MPI (meson option 'mpi').
bool built_with_mpi();

// The share of rank r among k ranks of n items: [first, first + count).
struct Share {
  int64_t first, count;
};
inline Share share_of(int64_t n, int r, int k) {
  const int64_t a = n * r / k, b = n * (r + 1) / k;
  return {a, b - a};
}

}  // namespace bsp::train
