"""The trainer: the CLI `python -m cgan.train` and the library behind it.

    trainer.py   Trainer: the iteration (CUDA graph, hand-written CPU step, eager) and its state
    mlp_step.py  the MLP CGAN's iteration written out for CPUs (same numerics as autograd)
    threads.py   the thread count, measured and re-measured while training
    loop.py      train(): the epochs into a run folder, the writer thread, stop and resume
    cli.py       the command line: arguments to a TrainConfig and a Run, exit statuses

The options themselves are declared in cgan.config; the run folder's format in cgan.runs.
"""
