"""Parallel-process benchmarks (spec/22, REQUIREMENTS §8 and §12), with same-run baselines.

Timing method. Executors (process pools, sub-interpreter pools, a Dask cluster) take 0.1-3 s to
start, so every class builds what it needs in `setup` and keeps it in a module cache keyed by
the parameters (asv re-runs `setup` between timed calls, see bench_engine.py; the cache makes
the re-run a lookup). An executor that cannot run here raises NotImplementedError in `setup`,
which asv reports as skipped: `subinterpreters` needs Python >= 3.13, `dask` needs
dask[distributed], the heavy benchmarks need numpy. The module puts its parent directory on
`sys.path` and `PYTHONPATH` so that workers can import its processes by name. The engines use
the reference backend: what is measured is dispatch, not the backend's commit (both backends
share theus.parallel).

- `ParallelCPU.time_four_cpu_bound`: 4 calls of a CPU-bound pure-Python process (~0.25 s
  each here), `inline` = one after the other with `engine.execute`, the others =
  `engine.execute_many` on `processes` / `subinterpreters` (2 workers: the machine's 2 cores).
  Speed-up = inline / executor (target >= 1.8). `bare-processes` maps the same pure-Python
  function over a bare `ProcessPoolExecutor` (2 workers, no engine): the speed-up this
  machine allows at that moment (on a shared VM it swings between ~1.5 and 2.0).
- `ParallelHeavyHandoff.time_handoff_heavy`: `execute` of a process that receives a 100 MB
  heavy array on a `processes` worker (it reads its length and one element);
  `time_handoff_none` is the same process without the array (the dispatch alone), so
  handoff cost = heavy - none (target < 1 ms); `time_pickle_copy` pickles an ordinary 100 MB
  array, what shipping it by value would cost at least. `track_copied_mb`: on a one-worker
  pool, the worker's private memory (RssAnon) after it received and read every element of the
  100 MB array minus the same figure from a call without the array (target 0);
  `track_copied_mb_plain` and `time_handoff_plain` are the same with an ordinary numpy array
  at that path (shipped by value: what the measurement shows for a copy).
- `ParallelCallOverhead.time_call`: one trivial call, `execute` of a process that writes one key on
  `threads` / `processes` / `subinterpreters` / `dask`, against `inline` execute and bare
  `concurrent.futures` submits of a trivial function on a `ThreadPoolExecutor`,
  `ProcessPoolExecutor` (forkserver), the sub-interpreter pool and the Dask executor.
"""

from __future__ import annotations

import concurrent.futures
import importlib.util
import multiprocessing
import os
import pickle
import sys
from typing import Any

from theus import TheusEngine, process
from theus.parallel import subinterp

# Workers import the processes below by module name (`benchmarks.bench_parallel` under asv):
# make that name importable in every worker process, including Dask's, which start from a
# fresh interpreter that only inherits the environment.
_ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
if _ROOT not in sys.path:
    sys.path.insert(0, _ROOT)
_path = os.environ.get("PYTHONPATH", "")
if _ROOT not in _path.split(os.pathsep):
    os.environ["PYTHONPATH"] = os.pathsep.join(p for p in (_ROOT, _path) if p)

WORKERS = 2
CPU_LOOPS = 5_000_000
MB = 2**20
_CACHE: dict[tuple[Any, ...], Any] = {}


def _cached(key: tuple[Any, ...], build: Any) -> Any:
    value = _CACHE.get(key)
    if value is None:
        value = _CACHE[key] = build()
    return value


def _need(executor: str) -> None:
    if executor.endswith("subinterpreters") and not subinterp.available():
        raise NotImplementedError(subinterp.unavailable_reason())
    if executor.endswith("dask") and importlib.util.find_spec("distributed") is None:
        raise NotImplementedError("dask[distributed] is not installed")


def _executor(name: str) -> Any:
    """An executor object for `name`, started once per benchmark process."""

    def build() -> Any:
        if name == "processes":
            from theus.parallel.pool import ProcessPool

            return ProcessPool(WORKERS)
        if name == "subinterpreters":
            return subinterp.SubinterpreterExecutor(WORKERS)
        if name == "threads":
            return concurrent.futures.ThreadPoolExecutor(WORKERS)
        if name == "dask":
            from distributed import Client, LocalCluster

            cluster = LocalCluster(
                n_workers=WORKERS,
                processes=True,
                threads_per_worker=1,
                host="127.0.0.1",
                dashboard_address=None,
            )
            client = Client(cluster)
            _CACHE[("dask-parts",)] = (client, cluster)
            return client.get_executor(pure=False)
        if name == "bare-processes":
            context = multiprocessing.get_context("forkserver")
            return concurrent.futures.ProcessPoolExecutor(WORKERS, mp_context=context)
        raise ValueError(name)

    return _cached(("executor", name), build)


def _engine(key: tuple[Any, ...], executor: Any, context: dict[str, Any]) -> TheusEngine:
    def build() -> TheusEngine:
        if executor is None:
            return TheusEngine(context, backend="reference")
        return TheusEngine(context, backend="reference", executor=executor)

    return _cached(("engine", *key), build)


def _burn(n: int) -> int:
    total = 0
    for i in range(n):
        total += i * i % 7
    return total


@process(inputs=[], outputs=[], parallel=True)
def warm_up(ctx: Any) -> None:
    """Nothing: makes a worker start and import this module."""


def trivial() -> int:
    """The function of the bare `concurrent.futures` baselines."""
    return 1


# Four processes, each writing its own key: a parallel call ships (and so reads) its outputs,
# so processes sharing an output would conflict and re-run (spec/22).
@process(inputs=[], outputs=["domain.r0"])
def cpu_inline(ctx: Any) -> None:
    ctx.domain.r0 = _burn(CPU_LOOPS)


@process(inputs=[], outputs=["domain.r0"], parallel=True)
def cpu_0(ctx: Any) -> None:
    ctx.domain.r0 = _burn(CPU_LOOPS)


@process(inputs=[], outputs=["domain.r1"], parallel=True)
def cpu_1(ctx: Any) -> None:
    ctx.domain.r1 = _burn(CPU_LOOPS)


@process(inputs=[], outputs=["domain.r2"], parallel=True)
def cpu_2(ctx: Any) -> None:
    ctx.domain.r2 = _burn(CPU_LOOPS)


@process(inputs=[], outputs=["domain.r3"], parallel=True)
def cpu_3(ctx: Any) -> None:
    ctx.domain.r3 = _burn(CPU_LOOPS)


CPU_PARALLEL = (cpu_0, cpu_1, cpu_2, cpu_3)


@process(inputs=["domain.heavy_frame"], outputs=["domain.seen"], parallel=True)
def peek(ctx: Any) -> None:
    frame = ctx.domain.heavy_frame
    ctx.domain.seen = None if frame is None else [len(frame), float(frame[-1])]


def _rss_anon_kb() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("RssAnon:"))


@process(inputs=["domain.heavy_frame"], outputs=["domain.seen"], parallel=True)
def read_all(ctx: Any) -> None:
    """Reads every element of the array; reports the worker's RssAnon (kB) afterwards."""
    total = float(ctx.domain.heavy_frame.sum())
    ctx.domain.seen = [_rss_anon_kb(), total]


@process(inputs=[], outputs=["domain.seen"], parallel=True)
def rss_now(ctx: Any) -> None:
    """The worker's RssAnon (kB), without the array."""
    ctx.domain.seen = [_rss_anon_kb(), 0.0]


@process(inputs=[], outputs=["domain.n"])
def one_key_inline(ctx: Any) -> None:
    ctx.domain.n = 1


@process(inputs=[], outputs=["domain.n"], parallel=True)
def one_key_parallel(ctx: Any) -> None:
    ctx.domain.n = 1


class ParallelCPU:
    """4 CPU-bound pure-Python processes on 2 cores: sequential vs parallel executors."""

    params = (("inline", "processes", "subinterpreters", "bare-processes"),)
    param_names = ("executor",)
    number = 1
    repeat = 5
    warmup_time = 0
    timeout = 600

    def setup(self, executor: str) -> None:
        _need(executor)
        pool = None if executor == "inline" else _executor(executor)
        if executor == "bare-processes":  # the machine's own ceiling: no engine at all
            self.pool = pool
            list(pool.map(_burn, [1] * WORKERS))
            return
        self.engine = _engine(("cpu", executor), pool, {"domain": {"n": 0}})
        if pool is not None:  # start every worker (and import this module there)
            self.engine.execute_many([(warm_up, {})] * WORKERS)

    def time_four_cpu_bound(self, executor: str) -> None:
        if executor == "inline":
            for _ in range(4):
                self.engine.execute(cpu_inline)
        elif executor == "bare-processes":
            list(self.pool.map(_burn, [CPU_LOOPS] * 4))
        else:
            self.engine.execute_many([(proc, {}) for proc in CPU_PARALLEL])


def _heavy_engine() -> TheusEngine:
    def build() -> TheusEngine:
        engine = TheusEngine(
            {"domain": {"seen": None}}, backend="reference", executor=_executor("processes")
        )
        frame = engine.heavy.alloc(100 * MB // 8)
        frame[:] = 1.0
        with engine.transaction() as tx:
            tx.update(data={"domain": {"heavy_frame": frame}})
        return engine

    return _cached(("heavy-engine",), build)


def _plain_array() -> Any:
    import numpy

    return _cached(("plain-array",), lambda: numpy.ones(100 * MB // 8))


def _copied_engine(plain: bool) -> TheusEngine:
    """A one-worker engine holding the 100 MB heavy array, or (`plain`) an ordinary numpy
    array of the same size at the same heavy_ path, which can only travel by value."""
    from theus.parallel.pool import ProcessPool

    engine = TheusEngine({"domain": {"seen": None}}, backend="reference", executor=ProcessPool(1))
    frame = _plain_array() if plain else _heavy_engine().state.get("domain.heavy_frame")
    with engine.transaction() as tx:
        tx.update(data={"domain": {"heavy_frame": frame}})
    return engine


class ParallelHeavyHandoff:
    """A 100 MB heavy array handed to a `processes` worker, against the dispatch alone."""

    number = 20
    repeat = 5
    warmup_time = 0
    timeout = 300

    def setup(self) -> None:
        if importlib.util.find_spec("numpy") is None:
            raise NotImplementedError("numpy is not installed")
        self.engine = _heavy_engine()
        self.bare = _cached(
            ("bare-engine",),
            lambda: TheusEngine(
                {"domain": {"seen": None, "heavy_frame": None}},
                backend="reference",
                executor=_executor("processes"),
            ),
        )
        self.plain = _plain_array()
        for engine in (self.engine, self.bare):
            engine.execute_many([(peek, {})] * WORKERS)  # warm every worker

    def time_handoff_heavy(self) -> None:
        self.engine.execute(peek)

    def time_handoff_none(self) -> None:
        self.bare.execute(peek)

    def time_pickle_copy(self) -> None:
        pickle.dumps(self.plain, protocol=pickle.HIGHEST_PROTOCOL)

    time_pickle_copy.number = 1  # type: ignore[attr-defined]

    def time_handoff_plain(self) -> None:
        _cached(("copied-engine", True), lambda: _copied_engine(True)).execute(peek)

    time_handoff_plain.number = 1  # type: ignore[attr-defined]

    def track_copied_mb(self) -> float:
        return _copied_mb(plain=False)

    track_copied_mb.unit = "MB"  # type: ignore[attr-defined]

    def track_copied_mb_plain(self) -> float:
        return _copied_mb(plain=True)

    track_copied_mb_plain.unit = "MB"  # type: ignore[attr-defined]


def _copied_mb(plain: bool) -> float:
    # One worker, so every call runs in the same process: its private memory after a call
    # without the array, and after one that received the array and read all of it.
    engine = _cached(("copied-engine", plain), lambda: _copied_engine(plain))
    engine.execute(read_all)  # imports numpy there; not what is measured
    engine.execute(rss_now)
    before = engine.state.domain.seen[0]
    engine.execute(read_all)
    after = engine.state.domain.seen[0]
    return max(0.0, (after - before) / 1024)


class ParallelCallOverhead:
    """One trivial call per executor, against bare concurrent.futures submits (same run)."""

    params = (
        (
            "inline",
            "threads",
            "processes",
            "subinterpreters",
            "dask",
            "bare-threads",
            "bare-processes",
            "bare-subinterpreters",
            "bare-dask",
        ),
    )
    param_names = ("executor",)
    number = 50
    repeat = 5
    warmup_time = 0
    timeout = 300

    def setup(self, executor: str) -> None:
        _need(executor)
        self.engine: TheusEngine | None = None
        self.pool: Any = None
        if executor.startswith("bare-"):
            name = executor[len("bare-") :]
            self.pool = _executor(name)
            for future in [self.pool.submit(trivial) for _ in range(WORKERS * 2)]:
                future.result()
            return
        pool = None if executor == "inline" else _executor(executor)
        self.engine = _engine(("call", executor), pool, {"domain": {"n": 0}})
        warm = one_key_inline if pool is None else one_key_parallel
        self.engine.execute_many([(warm, {})] * (WORKERS * 2))
        self.process = warm

    def time_call(self, executor: str) -> None:
        if self.engine is None:
            self.pool.submit(trivial).result()
        else:
            self.engine.execute(self.process)
