"""A step of a long run, logged with its elapsed time when it ends."""

from __future__ import annotations

import contextlib
import logging
import time
from collections.abc import Iterator


@contextlib.contextmanager
def logged_step(logger: logging.Logger, text: str) -> Iterator[None]:
    """Run the block, then log `text (1.2s)` at INFO on `logger` (nothing when it raises)."""
    start = time.perf_counter()
    yield
    logger.info("%s (%.1fs)", text, time.perf_counter() - start)
