"""Heavy-zone buffers in named shared memory (spec/22-parallel.md, "Heavy zone").

``engine.heavy.alloc(shape, dtype)`` returns a numpy array and ``engine.heavy.alloc_bytes(n)`` a
writable buffer, both backed by a file in ``/dev/shm`` named ``theus-<pid>-<counter>-<random>``.
Stored under a ``heavy_`` key they are kept by reference like any heavy value (spec/03); what is
new is how they travel: they pickle *by name*, so a worker process (or a sub-interpreter) that
receives one maps the same segment instead of receiving a copy of the bytes.

* In the process that allocated it, a heavy value is writable. Anywhere else it is attached
  read-only: a numpy array with ``flags.writeable`` False, or, where numpy cannot be imported
  (isolated sub-interpreters), a read-only ``memoryview`` cast to the array's item format and
  shape (a flat byte view when the dtype has no ``struct`` format or the array is not
  C-contiguous). A buffer from :meth:`HeavyZone.alloc_bytes` is attached as a read-only
  :class:`HeavyBuffer`.
* The owning process unlinks the file when its last reference to the buffer goes (arrays and
  views hold the buffer), so the memory is released as soon as no live state version and no
  worker maps it. Files left by a process that died without unlinking them (``SIGKILL``) are
  removed by the next allocation in any process (only names whose pid is no longer running).
* ``multiprocessing.shared_memory`` is not used: on Python 3.11/3.12 its resource tracker
  unlinks segments a worker merely attached and warns at exit.

numpy is optional: :meth:`HeavyZone.alloc` raises :class:`HeavyZoneError` without it;
:meth:`HeavyZone.alloc_bytes` works everywhere.
"""

from __future__ import annotations

import contextlib
import itertools
import mmap
import operator
import os
import secrets
import sys
import weakref
from collections.abc import Iterable
from typing import Any

from .errors import TheusError

__all__ = [
    "SHM_DIR",
    "HeavyBuffer",
    "HeavyZone",
    "HeavyZoneError",
    "remove_stale_segments",
    "segment_path",
    "segments_of",
]

SHM_DIR = "/dev/shm"
PREFIX = "theus-"

_counter = itertools.count(1)
# The mapped segments of this process by name (weak: a segment lives while something holds it),
# so that a value unpickled in the process that holds its segment reuses that mapping.
_mapped: weakref.WeakValueDictionary[str, HeavyBuffer] = weakref.WeakValueDictionary()


class HeavyZoneError(TheusError, RuntimeError):
    """A heavy buffer could not be allocated or attached."""


def segment_path(name: str) -> str:
    """The file in ``/dev/shm`` of the segment ``name``."""
    return os.path.join(SHM_DIR, name)


def _check_name(name: Any) -> str:
    if not isinstance(name, str) or not name.startswith(PREFIX) or "/" in name:
        raise HeavyZoneError(f"not a heavy segment name: {name!r}")
    return name


def _unlink(path: str) -> None:
    with contextlib.suppress(FileNotFoundError):
        os.unlink(path)


def _release(path: str, owner_pid: int) -> None:
    """Unlink a segment's file when its owner's buffer goes — in the owning process only (a
    forked child inherits the buffer but must not unlink its parent's segment)."""
    if os.getpid() == owner_pid:
        _unlink(path)


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # exists, owned by someone else
        return True
    return True


def remove_stale_segments() -> list[str]:
    """Unlink the ``theus-<pid>-*`` files of ``/dev/shm`` whose pid is no longer running and
    return their names. A pid reused by an unrelated process keeps its files until that
    process ends too."""
    removed: list[str] = []
    try:
        entries = list(os.scandir(SHM_DIR))
    except OSError:
        return removed
    alive: dict[int, bool] = {}
    for entry in entries:
        if not entry.name.startswith(PREFIX):
            continue
        pid_text = entry.name[len(PREFIX) :].split("-", 1)[0]
        if not pid_text.isdigit():
            continue
        pid = int(pid_text)
        if pid not in alive:
            alive[pid] = _pid_alive(pid)
        if not alive[pid]:
            _unlink(entry.path)
            removed.append(entry.name)
    return removed


def segments_of(pid: int | None = None) -> list[str]:
    """The names of the heavy segments in ``/dev/shm`` allocated by process ``pid`` (default:
    this one) that still exist — what a test suite checks is empty at its end."""
    prefix = f"{PREFIX}{os.getpid() if pid is None else pid}-"
    try:
        return sorted(e.name for e in os.scandir(SHM_DIR) if e.name.startswith(prefix))
    except OSError:
        return []


class HeavyBuffer(mmap.mmap):
    """A mapping of one named shared-memory segment: an :class:`mmap.mmap` (buffer protocol,
    ``len``, slicing, ``memoryview(buf)``) that pickles by :attr:`name`.

    Created writable by :meth:`HeavyZone.alloc_bytes` in the owning process; attached
    read-only wherever it is unpickled. The owner unlinks the segment's file when the buffer
    is garbage-collected.
    """

    name: str
    owner: bool
    _address: int | None

    def __reduce__(self) -> tuple[Any, ...]:
        return (_attach_buffer, (self.name, len(self)))

    def __repr__(self) -> str:
        mode = "owner" if self.owner else "attached read-only"
        return f"<HeavyBuffer {self.name} {len(self)} bytes, {mode}>"


def _map(name: str, size: int, *, create: bool) -> HeavyBuffer:
    path = segment_path(name)
    if create:
        fd = os.open(path, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            os.ftruncate(fd, size)
            buf = HeavyBuffer(fd, size, access=mmap.ACCESS_WRITE)
        except BaseException:
            os.close(fd)
            _unlink(path)
            raise
    else:
        try:
            fd = os.open(path, os.O_RDONLY)
        except FileNotFoundError:
            raise HeavyZoneError(
                f"heavy segment {name!r} is gone ({path} does not exist): the process that "
                "allocated it released it (no live reference left) or ended"
            ) from None
        try:
            actual = os.fstat(fd).st_size
            if actual < size:
                raise HeavyZoneError(
                    f"heavy segment {name!r} has {actual} bytes, {size} were expected"
                )
            buf = HeavyBuffer(fd, size, access=mmap.ACCESS_READ)
        finally:
            os.close(fd)
        buf.name, buf.owner = name, False
        return buf
    os.close(fd)
    buf.name, buf.owner = name, True
    weakref.finalize(buf, _release, path, os.getpid())
    return buf


def _lookup(name: str, size: int) -> HeavyBuffer:
    """The mapping of segment ``name`` in this process: the live one, else a new read-only
    attachment."""
    _check_name(name)
    buf = _mapped.get(name)
    if buf is None or len(buf) < size:
        buf = _map(name, size, create=False)
        _mapped[name] = buf
    return buf


def _attach_buffer(name: str, size: int) -> HeavyBuffer:
    return _lookup(name, size)


# --------------------------------------------------------------------------- numpy arrays

_numpy: Any = None
_array_class: Any = None


def _np() -> Any:
    """numpy, or ``None`` where it cannot be imported (not installed; a sub-interpreter)."""
    global _numpy
    if _numpy is None:
        try:
            import numpy
        except ImportError:
            _numpy = False
        else:
            _numpy = numpy
    return _numpy or None


def _heavy_array_class() -> Any:
    """The ndarray subclass of heavy arrays, made on first use (numpy stays optional)."""
    global _array_class
    if _array_class is not None:
        return _array_class
    np = _np()
    if np is None:
        raise HeavyZoneError(
            "engine.heavy.alloc() needs numpy, which cannot be imported here; "
            "install numpy, or use engine.heavy.alloc_bytes(n)"
        )

    class HeavyArray(np.ndarray):  # type: ignore[misc, name-defined]
        """A numpy array whose memory is a named shared-memory segment; pickles by name."""

        def __array_finalize__(self, obj: Any) -> None:
            # Views keep the segment (and so its file) alive; results of arithmetic live in
            # fresh memory and must not.
            buf = getattr(obj, "_theus_buffer", None)
            if buf is not None and not _inside(self, buf):
                buf = None
            self._theus_buffer = buf

        def __reduce__(self) -> tuple[Any, ...]:
            buf = self._theus_buffer
            reduced = _array_reduce(self, buf)
            if reduced is None:  # not (or no longer) inside the segment: an ordinary array
                return np.asarray(self).copy().__reduce__()  # type: ignore[no-any-return]
            return reduced

        def __reduce_ex__(self, protocol: Any) -> tuple[Any, ...]:
            return self.__reduce__()

    HeavyArray.__module__ = __name__
    HeavyArray.__qualname__ = "HeavyArray"
    _array_class = HeavyArray
    return HeavyArray


def _address(buf: HeavyBuffer) -> int:
    address: int | None = getattr(buf, "_address", None)
    if address is None:
        np = _np()
        address = int(np.frombuffer(buf, dtype=np.uint8, count=1).ctypes.data)
        buf._address = address
    return address


def _inside(array: Any, buf: HeavyBuffer) -> bool:
    if buf.closed:
        return False
    start = int(array.__array_interface__["data"][0]) - _address(buf)
    return 0 <= start <= len(buf)


def _array_reduce(array: Any, buf: HeavyBuffer | None) -> tuple[Any, ...] | None:
    if buf is None or buf.closed:
        return None
    start = int(array.__array_interface__["data"][0])
    offset = start - _address(buf)
    if offset < 0 or offset > len(buf):
        return None
    # The lowest and highest byte the array touches must lie inside the segment.
    low = high = offset
    for extent, stride in zip(array.shape, array.strides, strict=True):
        span = (extent - 1) * stride if extent else 0
        if span < 0:
            low += span
        else:
            high += span
    if array.size and (low < 0 or high + array.itemsize > len(buf)):
        return None
    return (
        _attach_array,
        (buf.name, len(buf), offset, tuple(array.shape), tuple(array.strides), array.dtype.str),
    )


def _attach_array(
    name: str,
    size: int,
    offset: int,
    shape: tuple[int, ...],
    strides: tuple[int, ...],
    dtype: str,
) -> Any:
    """Unpickle a heavy array: the same segment mapped here (read-only outside its owner)."""
    buf = _lookup(name, size)
    np = _np()
    if np is None:
        return _memoryview_of(buf, offset, shape, strides, dtype)
    return _ndarray_on(buf, offset, shape, strides, np.dtype(dtype))


def _ndarray_on(
    buf: HeavyBuffer, offset: int, shape: tuple[int, ...], strides: tuple[int, ...], dtype: Any
) -> Any:
    np = _np()
    cls = _heavy_array_class()
    array = np.ndarray(shape, dtype=dtype, buffer=buf, offset=offset, strides=strides)
    result = array.view(cls)
    result._theus_buffer = buf
    if not buf.owner:
        result.flags.writeable = False
    return result


_STRUCT_CHARS = frozenset("bBhHiIlLqQnNfd?e")


def _memoryview_of(
    buf: HeavyBuffer, offset: int, shape: tuple[int, ...], strides: tuple[int, ...], dtype: str
) -> memoryview:
    """A read-only memoryview of the array where numpy is not importable."""
    itemsize = int(dtype[2:]) if dtype[2:].isdigit() else 1
    count = 1
    for extent in shape:
        count *= extent
    nbytes = count * itemsize
    view = memoryview(buf).toreadonly()
    contiguous = _c_strides(shape, itemsize) == tuple(strides)
    char = _struct_char(dtype)
    native = dtype[0] in "|=" or (dtype[0] == "<") == (sys.byteorder == "little")
    if count and contiguous and char is not None and native:
        raw: Any = view[offset : offset + nbytes].cast("B")
        typed: memoryview = raw.cast(char, list(shape))
        return typed
    low = offset + sum(min(0, (n - 1) * s) for n, s in zip(shape, strides, strict=True))
    high = offset + sum(max(0, (n - 1) * s) for n, s in zip(shape, strides, strict=True))
    return view[low : high + itemsize if count else low]


def _c_strides(shape: tuple[int, ...], itemsize: int) -> tuple[int, ...]:
    strides: list[int] = []
    step = itemsize
    for extent in reversed(shape):
        strides.append(step)
        step *= max(extent, 1)
    return tuple(reversed(strides))


def _struct_char(dtype: str) -> str | None:
    """The native ``struct`` format of a little-endian/native numpy dtype string, if any."""
    kind, size = dtype[1:2], dtype[2:]
    table = {
        ("i", "1"): "b",
        ("u", "1"): "B",
        ("i", "2"): "h",
        ("u", "2"): "H",
        ("i", "4"): "i",
        ("u", "4"): "I",
        ("i", "8"): "q",
        ("u", "8"): "Q",
        ("f", "2"): "e",
        ("f", "4"): "f",
        ("f", "8"): "d",
        ("b", "1"): "?",
    }
    char = table.get((kind, size))
    return char if char in _STRUCT_CHARS else None


# --------------------------------------------------------------------------- the zone


class HeavyZone:
    """``engine.heavy``: allocate heavy-zone buffers in named shared memory (module doc).

    The zone holds its engine weakly and nothing else: buffers belong to the process and live
    as long as something references them, whatever happens to the engine.
    """

    __slots__ = ("_engine",)

    def __init__(self, engine: Any = None) -> None:
        self._engine = weakref.ref(engine) if engine is not None else None

    def __repr__(self) -> str:
        engine = self._engine() if self._engine is not None else None
        return f"<HeavyZone of {engine!r}>" if engine is not None else "<HeavyZone>"

    def alloc_bytes(self, n: int) -> HeavyBuffer:
        """A zero-filled writable buffer of ``n`` (≥ 1) bytes in a new named segment."""
        size = _size(n, "alloc_bytes(n)")
        if size < 1:
            raise ValueError(f"engine.heavy.alloc_bytes(n) needs n >= 1, got {n!r}")
        return _new_segment(size)

    def alloc(self, shape: int | Iterable[int], dtype: Any = "float64") -> Any:
        """A zero-filled writable numpy array of ``shape`` and ``dtype`` (default float64)
        whose memory is a new named segment. Raises :class:`HeavyZoneError` without numpy."""
        cls = _heavy_array_class()
        np = _np()
        dims = (
            (_size(shape, "alloc(shape)"),)
            if not isinstance(shape, Iterable)
            else tuple(_size(d, "alloc(shape)") for d in shape)
        )
        try:
            kind = np.dtype(dtype)
        except TypeError as exc:
            raise TypeError(f"engine.heavy.alloc(): not a numpy dtype: {dtype!r}") from exc
        if kind.hasobject:
            raise TypeError(
                f"engine.heavy.alloc(): dtype {kind} holds Python objects, which cannot live "
                "in shared memory"
            )
        count = 1
        for extent in dims:
            count *= extent
        buf = _new_segment(max(count * kind.itemsize, 1))
        array = np.ndarray(dims, dtype=kind, buffer=buf).view(cls)
        array._theus_buffer = buf
        return array


def _size(value: Any, where: str) -> int:
    try:
        size = operator.index(value)
    except TypeError:
        raise TypeError(f"engine.heavy.{where}: expected an int, got {value!r}") from None
    if size < 0:
        raise ValueError(f"engine.heavy.{where}: sizes must be >= 0, got {size}")
    return size


def _new_segment(size: int) -> HeavyBuffer:
    if not os.path.isdir(SHM_DIR):
        raise HeavyZoneError(f"heavy buffers need {SHM_DIR} (a tmpfs), which does not exist")
    remove_stale_segments()
    name = f"{PREFIX}{os.getpid()}-{next(_counter)}-{secrets.token_hex(4)}"
    try:
        buf = _map(name, size, create=True)
    except OSError as exc:
        raise HeavyZoneError(
            f"cannot create heavy segment {segment_path(name)} of {size} bytes: {exc}"
        ) from exc
    _mapped[name] = buf
    return buf
