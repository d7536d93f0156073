"""Module-level callables for test_subinterp.py: sub-interpreters import them by name, so they
live in a module that imports nothing but the standard library."""

from __future__ import annotations

import sys
import time


def burn(n: int) -> int:
    """A CPU-bound pure-Python loop."""
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


def timed_burn(n: int) -> tuple[float, float, int]:
    """``burn(n)`` with the wall-clock interval (time.time) it ran in."""
    start = time.time()
    result = burn(n)
    return start, time.time(), result


class Boom(Exception):
    """A picklable user exception."""


class Unpicklable(Exception):
    """An exception whose instances cannot be pickled (a lambda attribute)."""

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.fn = lambda: None

    def __reduce__(self) -> tuple[object, ...]:
        raise TypeError("Unpicklable cannot be pickled")


def fail(message: str) -> None:
    raise Boom(message)


def fail_unpicklable() -> None:
    raise Unpicklable("no way back")


def unpicklable_result() -> object:
    return lambda: None


def modules() -> list[str]:
    """The modules loaded in the interpreter that runs this."""
    return sorted(sys.modules)


def import_and_report(*names: str) -> dict[str, str]:
    """Import each module; report 'ok' or the error's type and message."""
    import importlib

    report = {}
    for name in names:
        try:
            importlib.import_module(name)
        except Exception as exc:
            report[name] = f"{type(exc).__name__}: {exc}"
        else:
            report[name] = "ok"
    return report


def interpreter_id() -> int:
    import _interpreters  # type: ignore[import-not-found]

    return int(_interpreters.get_current()[0])


def kwargs_echo(*args: object, **kwargs: object) -> tuple[object, ...]:
    return args, kwargs


def uses_numpy() -> object:
    import numpy  # noqa: F401

    return None


def import_then_modules(*names: str) -> tuple[dict[str, str], list[str]]:
    """``import_and_report(*names)`` and then the modules loaded in this interpreter."""
    return import_and_report(*names), modules()


def hold_gil(n: int) -> tuple[float, float]:
    """``sum(range(n))``: one C call that never releases its interpreter's GIL; its interval
    (time.monotonic)."""
    start = time.monotonic()
    sum(range(n))
    return start, time.monotonic()


def ticker(seconds: float) -> list[float]:
    """time.monotonic() about every 0.1 ms for ``seconds``."""
    ticks = [time.monotonic()]
    end = ticks[0] + seconds
    while ticks[-1] < end:
        for _ in range(200):
            pass
        ticks.append(time.monotonic())
    return ticks
