"""``kpi-red``, paused after each batch's writes and before its commit, so a test can
kill the matcher or drop its connection mid-batch.

    python tests/python/reliability/paused_matcher.py SECONDS match --limit 0 ...

The pause is patched in here, around ``matcher.write.write_decisions``: the write path
the package ships has no test hook.
"""

from __future__ import annotations

import sys
import time
from typing import Any

from matcher import write
from matcher.cli import main


def paused(seconds: float) -> None:
    """Make every batch sleep ``seconds`` between its writes and its commit."""
    original = write.write_decisions

    def write_then_pause(*args: Any, **kwargs: Any) -> Any:
        result = original(*args, **kwargs)
        time.sleep(seconds)
        return result

    write.write_decisions = write_then_pause  # type: ignore[assignment]


if __name__ == "__main__":
    paused(float(sys.argv[1]))
    main(args=sys.argv[2:], prog_name="kpi-red")
