"""`python -m refpeer ...` is `ai-memory-ref ...` (the PID is the server itself for `serve`)."""

from refpeer.cli import main

raise SystemExit(main())
