"""`distnn train` with start-up signals the fault hooks cannot make (argv[1] says which), then the CLI's own argv.

twice:       every rank gets SIGTERM during start-up and a duplicate 0.2 s later (the scheduler and the
             launcher both signal), inside the CLI's grace before it ends the job;
before-comm: rank 1 gets SIGTERM during start-up before its MPI communicator exists.
dead-peer:   as before-comm, run alone as rank 1 of 2 (PMI_RANK=1, PMI_SIZE=2) with a fake mpi4py whose
             MPI_Init never returns, as under srun once the other rank has died (the caller puts the fake
             first on PYTHONPATH); the abort's bound is shortened to 1 s.
"""
import os
import signal
import sys
import threading
import time

import distnn.train.job as job
import distnn.train.preemption as preemption

mode = sys.argv.pop(1)
if mode == "twice":
    def inject(rank):
        def again():
            time.sleep(0.2)
            os.kill(os.getpid(), signal.SIGTERM)

        threading.Thread(target=again, daemon=True).start()
        os.kill(os.getpid(), signal.SIGTERM)

    preemption.inject_startup_fault = inject
elif mode in ("before-comm", "dead-peer"):
    if mode == "dead-peer":
        import distnn.distributed.mpi_comm as mpi_comm

        mpi_comm.ABORT_WAIT_S = 1.0
    make_comm = job.default_comm

    def default_comm(*args, **kwargs):
        if os.environ.get("PMI_RANK", os.environ.get("OMPI_COMM_WORLD_RANK")) == "1":
            os.kill(os.getpid(), signal.SIGTERM)
        return make_comm(*args, **kwargs)

    job.default_comm = default_comm
else:
    raise SystemExit(f"unknown mode {mode!r}")

import distnn.cli as cli  # noqa: E402

sys.exit(cli.main())
