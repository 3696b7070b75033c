"""Every driver test runs against both drivers (tests/client/driver/drivers.py)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from drivers import DRIVERS, Driver, GeventOnThread, MakeDriver, make_driver

from client.timeline import CoreLike


@pytest.fixture(params=DRIVERS)
def new_driver(request: pytest.FixtureRequest) -> Iterator[MakeDriver]:
    """`new_driver(core, **options)`: a driver of this test's kind, not started."""
    made: list[Driver] = []

    def make(core: CoreLike, **options: Any) -> Driver:
        driver = make_driver(request.param, core, **options)
        made.append(driver)
        return driver

    yield make
    for driver in made:
        if isinstance(driver, GeventOnThread):
            driver.close_thread()
