"""``python -m avloc`` (and ``torchrun -m avloc``) run the command line."""

from avloc.tools.cli import main

raise SystemExit(main())
