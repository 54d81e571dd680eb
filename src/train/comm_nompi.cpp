// bsp built without MPI: one process, always.
#include "train/comm.hpp"

namespace bsp::train {

Comm* launched_comm() { return nullptr; }
bool built_with_mpi() { return false; }

}  // namespace bsp::train
