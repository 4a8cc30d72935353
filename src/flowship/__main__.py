"""`python -m flowship ...`: see `flowship.cli`."""

from flowship.cli import main

raise SystemExit(main())
