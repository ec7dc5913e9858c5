"""A table on a scheduler: each run of it one job, submitted through submitit (``run --submit slurm|local``),
requeued after a preemption or before its time limit, resumed exactly from its last checkpoint, and followed by
``python -m experiments status ID`` from the run folders alone.

- ``job_file``: a run's job file (which job trains it, its state and heartbeat), written atomically under the
  run's lock; the reports read it to note pending runs. Imports no torch, no submitit.
- ``resources``: what one run's job asks the scheduler for (nodes, a task per device, CPUs from the loader rule).
- ``scheduler``: what SLURM (``squeue``, ``sacct``) or this machine says of a job now.
- ``status``: each run's state, from its folder and, where there is one, the scheduler.
- ``submission``: which runs to submit (not queued, running or done; an identical run once), as which jobs, with
  which dependencies; ``--dry-run`` prints them.
- ``job``: the callable every task of a job runs: the run's lock, its heartbeat, the signals, ``execute``.
- ``local``: ``--submit local``, the same jobs through submitit's local executor, waited for on this machine.
- ``cli``: the ``--submit`` options of ``run`` and the ``status`` command.
"""
