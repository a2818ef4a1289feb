"""Fixtures of the adversarial tests (test_security*.py, test_leaks.py), built on helpers.py.

Imported explicitly by the test modules that use them.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Callable

import pytest

from helpers import AuditLog, Recorder, Recorders


@pytest.fixture(scope="session")
def _recorders() -> Iterator[Recorders]:
    made = Recorders()
    yield made
    made.close()


@pytest.fixture
def recorder(_recorders: Recorders) -> Recorder:
    """A :class:`Recorder` on 127.0.0.1 (another port than ``service``), cleared."""
    return _recorders.on("127.0.0.1")


@pytest.fixture
def recorder_on(_recorders: Recorders) -> Callable[[str], Recorder]:
    """A :class:`Recorder` on a loopback address of the test's choice, cleared."""
    return _recorders.on


@pytest.fixture
def audit() -> Iterator[AuditLog]:
    with AuditLog() as log:
        yield log
