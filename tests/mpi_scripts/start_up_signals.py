"""`distnn train` with start-up signals the fault hooks cannot make (argv[1] says which), then the CLI's own argv.

twice:       every rank gets SIGTERM during start-up and a duplicate 0.2 s later (the scheduler and the
             launcher both signal), inside the CLI's grace before it ends the job;
before-comm: rank 1 gets SIGTERM during start-up before its MPI communicator exists.
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
elif mode == "before-comm":
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
