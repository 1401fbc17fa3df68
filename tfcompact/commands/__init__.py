"""Sub-commands of the `tfcompact` command line; each module has `add_arguments` and `run`.

Where their output goes (tfcompact.cli's convention): progress and results on stdout,
warnings and errors on stderr."""
from __future__ import annotations

import re
import sys

# "warning: ..." or "<name>: warning: ...", as the library's log lines mark a warning
_WARNING = re.compile(r"([\w.-]+: )?warning: ")


def console_log(line: str) -> None:
    """A library log line on the console: a warning on stderr, anything else (progress,
    results) on stdout, each flushed at once so the two streams stay in order on a terminal."""
    sys.stdout.flush()
    print(line, file=sys.stderr if _WARNING.match(line) else sys.stdout, flush=True)
