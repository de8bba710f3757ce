"""The whole exchange on loopback: a gateway with workflows and every agency simulator."""

from __future__ import annotations

import pytest

from gateway.entrypoints.tools.simulate import ClinicBehaviour, SimulatedClock, running_system
from workflow_steps import FAST, POPULATION

@pytest.fixture
def start_system(tmp_path):
    """An async context manager factory: ``async with start_system(...) as system``."""

    def start(*, clinic: ClinicBehaviour | None = None, settings: dict | None = None, directory: str = "system",
              clock: SimulatedClock | None = None):
        return running_system(tmp_path / directory, population=POPULATION, settings={**FAST, **(settings or {})},
                              clinic=clinic, clock=clock)

    return start
