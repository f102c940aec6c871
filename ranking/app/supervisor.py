"""``marginrank serve``'s process supervisor: one parent, N worker processes, one socket.

Why our own and not uvicorn's: uvicorn's supervisor stops the whole service when a
replacement worker fails to start (a bad file on disk was enough), restarts workers to apply
a config, and a worker asked to reload signalled its parent, whoever that was by then.

- The parent binds the socket once and passes it to every worker; connections wait in the
  kernel's accept queue, which outlives any worker, so a crash costs only the requests the
  dead worker held. It restarts a worker that exits (with a backoff if it keeps failing) and
  never stops serving because of a config file: workers read only the last good config
  (:mod:`ranking.app.config_store`), which the parent seeds at start from ``--config``.
- SIGHUP to the parent re-reads ``--config`` (only when its ``<file>.sha256`` sidecar matches)
  into the store; workers swap it in place. No process is restarted for a config change.
- The parent signals only the workers it started (by their ``Popen`` handles). Workers die
  with the parent (``PR_SET_PDEATHSIG`` on Linux, and a watch on their parent's pid
  everywhere), so nothing is orphaned.
- SIGTERM or SIGINT: each worker stops accepting, finishes its in-flight requests
  (uvicorn's graceful shutdown, at most :data:`DRAIN_SECONDS`), and the parent exits; a
  worker still running at :data:`STOP_SECONDS` is killed, so the service is gone in 10 s.

Processes, not threads: the Numba kernels are compiled without ``nogil`` and the per-request
HTTP work is Python under the GIL; processes also isolate crashes. docs/service.md gives the
measurements (threads in one process, 1 vs 2 worker processes).
"""

from __future__ import annotations

import asyncio
import ctypes
import logging
import logging.config
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from clv.errors import ConfigError, ConfigIssue, MarginRankError
from ranking import bundle, kernel_cache
from ranking.app import auth, limits
from ranking.app.config_store import ConfigStore, Validator, accept_file, read_stable
from ranking.app.service import (
    ENV_BUNDLE,
    ENV_CONFIG,
    ENV_LOAD_FIRST,
    ENV_STATE_DIR,
    ENV_WORKER_ID,
    KEEP_ALIVE_SECONDS,
    LOG_CONFIG,
)
from ranking.ranker import WEIGHTS_FILE

ENV_LISTEN_FD = "MARGINRANK_LISTEN_FD"
ENV_PARENT_PID = "MARGINRANK_PARENT_PID"
#: A worker's graceful shutdown: finish in-flight requests for at most this long.
DRAIN_SECONDS = 6.0
#: The parent kills a worker still running this long after SIGTERM (the exit bound is 10 s).
STOP_SECONDS = 8.5
#: Requests one worker handles at once before answering 503 (uvicorn's limit_concurrency).
LIMIT_CONCURRENCY = 256
BACKLOG = 2048
#: Connections a worker accepts per wake-up (asyncio accepts up to its ``backlog`` in a row).
#: Every idle worker is woken for a new connection on the shared socket; taking one at a time
#: spreads connections over the workers, where taking all that are queued would let one
#: worker grab a whole burst of keep-alive connections and leave the other idle.
ACCEPT_BATCH = 1
#: The supervisor's loop period: how soon a dead worker is noticed.
TICK_SECONDS = 0.05
#: A worker that ran this long before exiting is restarted at once; sooner, with a backoff
#: (0.5 s doubling to 10 s), so a worker that cannot start does not spin.
HEALTHY_SECONDS = 30.0
MAX_BACKOFF_SECONDS = 10.0
PR_SET_PDEATHSIG = 1

log = logging.getLogger("marginrank.supervisor")


class _Worker:
    """One worker slot: its process (if running), incarnation and restart backoff."""

    def __init__(self, slot: int) -> None:
        self.slot = slot
        self.incarnation = 0
        self.process: subprocess.Popen[bytes] | None = None
        self.started = 0.0
        self.failures = 0
        self.restart_at = 0.0


class Supervisor:
    """``marginrank serve``: see the module docstring."""

    def __init__(self, bundle_dir: Path, config: Path | None, host: str, port: int,
                 workers: int, *, state_dir: Path | None = None,
                 admin_token_file: Path | None = None) -> None:
        if not (bundle_dir / bundle.MANIFEST).is_file():
            raise bundle.BundleError(f"{bundle_dir}: not a bundle ({bundle.MANIFEST} missing)")
        if config is not None and not config.exists():
            raise ConfigError([ConfigIssue(str(config), None, "", "no such file")])
        if workers < 1:
            raise MarginRankError(f"--workers must be at least 1, got {workers}")
        auth.load_token(admin_token_file)  # refuse a bad token file before starting
        self.bundle_dir = bundle_dir.resolve()
        self.config = config.resolve() if config else None
        self.host, self.port = host, port
        self.workers = [_Worker(i) for i in range(workers)]
        self.state_dir = state_dir
        self.admin_token_file = admin_token_file
        self.stopping = threading.Event()
        self.exit_code = 0
        self._hup = threading.Event()
        self._validator: Validator | None = None
        self._store: ConfigStore | None = None

    @property
    def weights_path(self) -> Path:
        return self.config or self.bundle_dir / WEIGHTS_FILE

    # -- the parent ----------------------------------------------------------------------
    def run(self) -> int:
        logging.config.dictConfig(LOG_CONFIG)
        own_state = self.state_dir is None
        state_dir = Path(tempfile.mkdtemp(prefix="marginrank-state-")) if own_state \
            else Path(self.state_dir)  # type: ignore[arg-type]
        self._store = ConfigStore(state_dir)
        sock = socket.create_server((self.host, self.port), backlog=BACKLOG)
        sock.set_inheritable(True)
        previous = {sig: signal.signal(sig, self._on_signal)
                    for sig in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)}
        log.info("serving", extra={"fields": {
            "address": f"{self.host}:{sock.getsockname()[1]}", "workers": len(self.workers),
            "pid": os.getpid()}})
        try:
            for worker in self.workers:
                self._spawn(worker, sock)
            threading.Thread(target=self._seed, name="marginrank-seed", daemon=True).start()
            while not self.stopping.is_set():
                self._tend(sock)
                if self._hup.is_set():
                    self._hup.clear()
                    threading.Thread(target=self._reload, name="marginrank-sighup",
                                     daemon=True).start()
                self.stopping.wait(TICK_SECONDS)
        finally:
            self._stop_workers()
            sock.close()
            for sig, handler in previous.items():
                signal.signal(sig, handler)
            if own_state:
                shutil.rmtree(state_dir, ignore_errors=True)
        log.info("stopped", extra={"fields": {"exit_code": self.exit_code}})
        return self.exit_code

    def _on_signal(self, signum: int, frame: object) -> None:
        if signum == signal.SIGHUP:
            self._hup.set()
        else:
            self.stopping.set()

    def _seed(self) -> None:
        """The config every worker starts from: the state dir's last good config if it has
        one, else ``--config`` (or the bundle's weights), validated. Invalid: stop (exit 2)."""
        assert self._store is not None
        try:
            self._validator = Validator.for_bundle(self.bundle_dir)
            current = self._store.current()
            if current is not None:
                log.info("serving the state directory's last good config", extra={"fields": {
                    "config_version": current.version, "config_generation": current.number}})
                return
            text = read_stable(self.weights_path)
            self._validator.validate(text, str(self.weights_path))
            generation = self._store.accept(text, "start")
            log.info("config accepted", extra={"fields": {
                "trigger": "start", "config_version": generation.version,
                "config_generation": generation.number}})
        except MarginRankError as exc:
            log.error("cannot start: the config is refused", extra={"fields": {
                "error": str(exc)}})
            self.exit_code = 2
            self.stopping.set()
        except Exception as exc:  # noqa: BLE001 - a failure here must stop, not hang
            log.error("cannot start", exc_info=True, extra={"fields": {"error": str(exc)}})
            self.exit_code = 2
            self.stopping.set()

    def _reload(self) -> None:
        """SIGHUP: the ``--config`` file into the store, if complete (sidecar sha256) and
        valid; otherwise logged and counted, and the last good config keeps serving."""
        assert self._store is not None
        if self._validator is None:
            log.warning("SIGHUP ignored: still starting")
            return
        try:
            generation = accept_file(self._store, self._validator, self.weights_path, None,
                                     "SIGHUP")
        except ConfigError as exc:
            log.warning("config change refused", extra={"fields": {
                "trigger": "SIGHUP",
                "errors": [f"line {i.line} {i.key_path}: {i.message}" for i in exc.issues]}})
            return
        log.info("config accepted", extra={"fields": {
            "trigger": "SIGHUP", "config_version": generation.version,
            "config_generation": generation.number}})

    def _tend(self, sock: socket.socket) -> None:
        """Restart every worker that has exited (after its backoff)."""
        now = time.monotonic()
        for worker in self.workers:
            process = worker.process
            if process is not None and process.poll() is not None:
                lived = now - worker.started
                worker.failures = 0 if lived >= HEALTHY_SECONDS else worker.failures + 1
                delay = 0.0 if worker.failures == 0 else min(
                    MAX_BACKOFF_SECONDS, 0.5 * 2 ** (worker.failures - 1))
                worker.restart_at = now + delay
                log.warning("worker exited; restarting it", extra={"fields": {
                    "worker": f"{worker.slot}.{worker.incarnation}",
                    "exit_code": process.returncode, "ran_s": round(lived, 1),
                    "restart_in_s": delay}})
                worker.process = None
            if worker.process is None and now >= worker.restart_at \
                    and not self.stopping.is_set():
                self._spawn(worker, sock)

    def _spawn(self, worker: _Worker, sock: socket.socket) -> None:
        worker.incarnation += 1
        # workers load Numba lean (kernel_cache.LEAN_ENV) unless the operator's environment
        # says otherwise
        env = {kernel_cache.LEAN_ENV: "1", **os.environ, ENV_BUNDLE: str(self.bundle_dir),
               ENV_CONFIG: str(self.config or ""), ENV_STATE_DIR: str(self._store.directory)
               if self._store else "", ENV_LOAD_FIRST: "1" if len(self.workers) > 1 else "",
               ENV_WORKER_ID: f"{worker.slot}.{worker.incarnation}",
               ENV_LISTEN_FD: str(sock.fileno()), ENV_PARENT_PID: str(os.getpid())}
        if self.admin_token_file is not None:
            env[auth.ENV_ADMIN_TOKEN_FILE] = str(Path(self.admin_token_file).resolve())
        worker.process = subprocess.Popen(
            [sys.executable, "-m", "ranking.app.supervisor"], env=env,
            pass_fds=(sock.fileno(),), stdin=subprocess.DEVNULL)
        worker.started = time.monotonic()
        log.info("worker started", extra={"fields": {
            "worker": f"{worker.slot}.{worker.incarnation}", "pid": worker.process.pid}})

    def _stop_workers(self) -> None:
        """SIGTERM every running worker (ours only), wait for their drain, kill stragglers."""
        running = [w.process for w in self.workers if w.process and w.process.poll() is None]
        for process in running:
            process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_SECONDS
        for process in running:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                log.warning("worker did not drain in time; killed", extra={"fields": {
                    "pid": process.pid}})
                process.kill()
                process.wait()


# -- a worker --------------------------------------------------------------------------------
def _die_with_parent(parent: int) -> None:
    """Exit when the parent does: the kernel's parent-death signal on Linux, and a watch on
    our parent pid (every platform; also covers a parent that died before the prctl)."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        libc.prctl(PR_SET_PDEATHSIG, signal.SIGTERM, 0, 0, 0)
    except (OSError, AttributeError):
        pass  # not Linux: the watch below does it

    def watch() -> None:
        while True:
            if os.getppid() != parent:
                os.kill(os.getpid(), signal.SIGTERM)  # ourselves: a graceful stop
                return
            time.sleep(0.5)

    if os.getppid() != parent:
        sys.exit(0)
    threading.Thread(target=watch, name="marginrank-parent-watch", daemon=True).start()


def run_worker() -> int:
    """One worker: serve the inherited socket until SIGTERM (uvicorn, our protocol limits)."""
    import uvicorn

    _die_with_parent(int(os.environ[ENV_PARENT_PID]))
    signal.signal(signal.SIGHUP, signal.SIG_IGN)  # the supervisor handles reloads
    sock = socket.socket(fileno=int(os.environ[ENV_LISTEN_FD]))
    from ranking.app.service import app_from_env

    config = uvicorn.Config(
        app_from_env(), http=limits.GuardedProtocol, lifespan="on", log_config=LOG_CONFIG,
        access_log=False, timeout_keep_alive=KEEP_ALIVE_SECONDS,
        timeout_graceful_shutdown=DRAIN_SECONDS, limit_concurrency=LIMIT_CONCURRENCY,
        h11_max_incomplete_event_size=limits.H11_MAX_INCOMPLETE, server_header=False,
        backlog=ACCEPT_BATCH, loop="asyncio")
    server = uvicorn.Server(config)

    async def serve() -> None:
        task = asyncio.ensure_future(server.serve(sockets=[sock]))
        while not server.started and not task.done():
            await asyncio.sleep(0.005)
        if server.started:
            sock.listen(BACKLOG)  # asyncio set the shared queue to ACCEPT_BATCH: restore it
        await task

    asyncio.run(serve())
    return 0 if server.started else 3


if __name__ == "__main__":
    sys.exit(run_worker())
