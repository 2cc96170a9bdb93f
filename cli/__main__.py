"""Run the `dispatch` command line as `python -m cli`."""

from cli.main import main

raise SystemExit(main())
