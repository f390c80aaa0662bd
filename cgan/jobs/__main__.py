"""``python -m cgan.jobs``: the command line of cgan.jobs.cli."""

from cgan.jobs.cli import main

raise SystemExit(main())
