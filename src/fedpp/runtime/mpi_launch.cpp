// The MPI-free part of runtime/mpi.hpp: launcher detection and client placement (in libfedpp, so
// that a build without MPI can still tell a user who starts it under mpirun what is missing).
#include <cstdlib>
#include <string>

#include "fedpp/core/error.hpp"
#include "fedpp/runtime/mpi.hpp"

namespace fedpp {

int mpi_launch_size() {
  for (const char* var : {"OMPI_COMM_WORLD_SIZE", "PMI_SIZE"}) {
    const char* v = std::getenv(var);
    if (v && *v) {
      try {
        const int n = std::stoi(v);
        if (n >= 1) return n;
      } catch (const std::exception&) {
      }
    }
  }
  return 1;
}

int mpi_owner_rank(int64_t client, int world_size) {
  FEDPP_CHECK(world_size >= 2 && client >= 0, "mpi_owner_rank needs 2+ ranks and a client id");
  return 1 + static_cast<int>(client % (world_size - 1));
}

}  // namespace fedpp
