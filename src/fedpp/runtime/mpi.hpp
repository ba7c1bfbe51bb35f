// A simulation spread over MPI processes: `mpirun -np K fedpp run CONFIG` (Open MPI from Debian).
//
// Rank 0 runs the server half: the Simulation with its ServerLoop (sampling, aggregation, global
// evaluation, fleet clock, results files). Ranks 1..K-1 host the clients: client c lives on rank
// 1 + c mod (K-1), in a ClientPool of that rank (runtime.workers threads of runtime.threads
// intra-op threads each, the private state of its clients in its own StateStore). Every rank
// reads the config and loads the data itself, as a deployed client does. Tasks and replies cross
// as the same encoded bytes as in one process, sent in chunks of at most 1 GiB (MPI counts are
// int); since a reply depends only on the client's task, data and state, the metrics equal the
// single-process run's for the same config and seed (tests/test_mpi.py checks it).
//
// Failures: a fedpp::Error on a client rank (bad config there, a diverging client) travels to
// rank 0, which ends the run with one error naming the rank and tells every rank to stop; a rank
// that dies outright ends the job the MPI way (mpirun names the rank and kills the others).
// Checkpoints (output.checkpoint_every): rank 0 writes the server's, each client rank writes its
// clients' private states into the same checkpoint folder, so `mpirun ... fedpp run CONFIG
// --resume` continues a run that died, with the same metrics as a run that did not. On several
// hosts, output.dir must name a folder that every rank can read and write at the same path (a
// shared file system); with the same rank count, each rank reads back only the files it wrote.
//
// Built only when CMake finds MPI (option FEDPP_MPI, default ON): target fedpp_mpi, used by the
// fedpp binary. The launcher is detected from its environment (OMPI_COMM_WORLD_SIZE, PMI_SIZE),
// so a plain `fedpp run` never initialises MPI.
#pragma once
#include <string>
#include <vector>

#include "fedpp/core/config.hpp"
#include "fedpp/report/run_writer.hpp"

namespace fedpp {

// The world size an MPI launcher gave this process (1 when not launched by one). Reads the
// environment only; does not initialise MPI.
int mpi_launch_size();

// Rank of the client host of `client` in a world of `world_size` ranks (>= 2).
int mpi_owner_rank(int64_t client, int world_size);

// Runs `cfg` over the MPI world (MPI_Init_thread .. MPI_Finalize inside), from its checkpoint
// when `resume` (Simulation::resume). Rank 0 returns the result rows (of every round, the
// restored ones included); the other ranks return an empty vector once rank 0 is done. Throws
// fedpp::Error on rank 0 when any rank failed (message names the rank); needs a world of at
// least 2 ranks. Defined in the fedpp_mpi library (only when MPI was found at build time).
std::vector<Row> run_mpi(Config cfg, bool resume = false, bool quiet_clients = true);

}  // namespace fedpp
