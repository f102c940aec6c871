"""Chaos on the reference service: crashes, config changes by every path, half-written files.

Starts ``marginrank serve --workers 2`` on a free 127.0.0.1 port and sends searches from a
light load client (raw asyncio sockets, HTTP/1.1 keep-alive: far less client CPU per request
than httpx, whose own cost hides any server scaling; the report gives the client's CPU).
Phases, in one run:

1. **scaling**: the same searches against 1 worker and against 2 (no changes);
2. **config changes only**: 2 workers while the config changes every second;
3. **chaos**: ``--requests`` searches (default 20,000) at concurrency 32 while a worker is
   SIGKILLed every ``--kill-every`` seconds (10), and every ``--change-every`` second (1)
   a config change arrives by the next path in turn: ``PUT /config`` (valid, invalid, a
   text cut short with the intended sha256), a non-atomic write of the weights file (in
   pieces, with ``POST /reload`` and SIGHUP sent while it is half written, then a reload of
   the complete file), a storm of 30 concurrent ``POST /reload``, SIGHUP with a complete file.

Every answer is checked against the config it names (``config_version``): that config must
have been accepted (a 200 from ``PUT /config``/``POST /reload``, or "config accepted" in the
log for SIGHUP and the start), and the ranked product ids must equal what that config gives
in process (precomputed for every valid variant). A failed search is one with no answer; the
requests in flight on a killed worker are the client connections it held (or that had not yet
been answered by anyone) when it was killed. Then SIGTERM, its exit time, and a scan of
/proc for any process of the run left behind. Also measured: one process with 1 vs 2 search
threads (does a thread add throughput? the Numba kernels do not release the GIL).

    python benchmarks/service_chaos.py [--bundle marginrank-demo/bundle] [--requests 20000]
        [--concurrency 32] [--workers 2] [--kill-every 10] [--change-every 1]
        [--out docs/service_chaos.json] [--markdown docs/service_chaos.md]

Loopback only, bounded (every loop has a request budget or a deadline), and it leaves no
process behind: the service runs in its own session and is killed by group on any exit.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import os
import random
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from urllib.parse import urlencode

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))
from http_client import Answer, Connection  # noqa: E402
from report_env import command as rerun_command  # noqa: E402
from report_env import environment, finish, header  # noqa: E402
from service_load import ServiceProcess, invalid_variant, stronger_variant  # noqa: E402

from ranking.ranker import Ranker  # noqa: E402

RUN_MARKER = "MARGINRANK_CHAOS_RUN"
STORM = 30


class Tally:
    def __init__(self) -> None:
        self.ok = 0
        self.failed = 0
        self.failures: list[str] = []
        self.non_200: Counter[int] = Counter()
        self.answers: list[tuple[str, int, tuple[str, ...]]] = []  # version, plan index, ids
        self.per_second: Counter[int] = Counter()
        self.latencies: list[float] = []


async def search_load(port: int, plan: list[dict[str, str]], concurrency: int, tally: Tally,
                      connections: list[Connection], keep: bool = True) -> float:
    """Send every search of ``plan`` at ``concurrency``; returns the seconds it took."""
    next_index = [0]
    start = time.perf_counter()

    async def searcher(conn: Connection) -> None:
        while next_index[0] < len(plan):
            i = next_index[0]
            next_index[0] += 1
            t0 = time.perf_counter()
            try:
                answer = await asyncio.wait_for(
                    conn.request("GET", "/search?" + urlencode(plan[i])), 30)
            except (OSError, asyncio.IncompleteReadError, asyncio.LimitOverrunError,
                    TimeoutError, ValueError, IndexError) as exc:
                tally.failed += 1
                if len(tally.failures) < 20:
                    tally.failures.append(f"{type(exc).__name__}: {exc}"[:200])
                conn.close()
                continue
            tally.latencies.append(time.perf_counter() - t0)
            if answer.status != 200:
                tally.non_200[answer.status] += 1
                continue
            tally.ok += 1
            tally.per_second[int(time.perf_counter() - start)] += 1
            if keep:
                doc = json.loads(answer.body)
                tally.answers.append((doc["config_version"], i,
                                      tuple(r["product_id"] for r in doc["results"])))

    conns = [Connection(port) for _ in range(concurrency)]
    connections[:] = conns
    await asyncio.gather(*(searcher(c) for c in conns))
    for conn in conns:
        conn.close()
    return time.perf_counter() - start


# -- config changes --------------------------------------------------------------------------
def sha256(text: str | bytes) -> str:
    return hashlib.sha256(text.encode() if isinstance(text, str) else text).hexdigest()


def version_of(text: str) -> str:
    return sha256(text)[:12]


class Changer:
    """Config changes by every path, one per ``every`` seconds, in turn."""

    def __init__(self, srv: ServiceProcess, config: Path, valid: list[str], invalid: str,
                 every: float) -> None:
        self.srv, self.config, self.valid, self.invalid = srv, config, valid, invalid
        self.every = every
        self.accepted: set[str] = set()  # versions a 200 named
        self.outcomes: Counter[str] = Counter()
        self.unexpected: list[str] = []
        self.turn = 0
        self.auth = {"Authorization": f"Bearer {srv.admin_token}"}

    def _valid(self) -> str:
        return self.valid[self.turn % len(self.valid)]

    async def _call(self, method: str, target: str, body: bytes = b"",
                    headers: dict[str, str] | None = None) -> Answer:
        conn = Connection(self.srv.port)
        try:
            return await asyncio.wait_for(conn.request(
                method, target, {**self.auth, **(headers or {})}, body), 60)
        finally:
            conn.close()

    def _expect(self, what: str, answer: Answer, ok: bool) -> None:
        if answer.status == 200:
            self.accepted.add(json.loads(answer.body)["config_version"])
        good = (answer.status == 200) if ok else (answer.status == 400)
        self.outcomes[("accepted" if ok else "refused") if good else "unexpected"] += 1
        if not good:
            self.unexpected.append(f"{what}: {answer.status} {answer.body[:200]!r}")

    def _write_sidecar(self, text: str) -> None:
        self.config.with_name(self.config.name + ".sha256").write_text(
            f"{sha256(text)}  {self.config.name}\n")

    async def step(self) -> None:
        kind = self.turn % 6
        text = self._valid()
        yaml = {"Content-Type": "application/yaml"}
        if kind == 0:
            self._expect("PUT valid", await self._call("PUT", "/config", text.encode(), yaml),
                         True)
        elif kind == 1:
            self._expect("PUT invalid", await self._call(
                "PUT", "/config", self.invalid.encode(), yaml), False)
            cut = text[: len(text) // 2]
            self._expect("PUT cut text", await self._call(
                "PUT", "/config", cut.encode(), {**yaml, "X-Content-SHA256": sha256(text)}),
                False)
        elif kind == 2:  # a non-atomic save, reloaded (and SIGHUP) while half written
            self._write_sidecar(text)
            data = text.encode()
            with self.config.open("wb") as fh:
                for piece in range(3):
                    fh.write(data[piece * len(data) // 3:(piece + 1) * len(data) // 3])
                    fh.flush()
                    if piece < 2:
                        body = json.dumps({"sha256": sha256(text)}).encode()
                        self._expect("reload half-written", await self._call(
                            "POST", "/reload", body, {"Content-Type": "application/json"}),
                            False)
                        self._sighup()
                        await asyncio.sleep(0.05)
            body = json.dumps({"sha256": sha256(text)}).encode()
            self._expect("reload complete", await self._call(
                "POST", "/reload", body, {"Content-Type": "application/json"}), True)
        elif kind == 3:  # a storm of reloads of the complete file (sidecar)
            answers = await asyncio.gather(*(self._call("POST", "/reload")
                                             for _ in range(STORM)))
            for answer in answers:
                self._expect("reload storm", answer, True)
        elif kind == 4:  # SIGHUP with a complete file
            self.config.write_text(text)
            self._write_sidecar(text)
            self._sighup()
        else:  # a valid-looking cut on disk with the sidecar of the whole: refused
            cut = text[: text.index("guardrails:")]
            self.config.write_text(cut)
            self._write_sidecar(text)
            self._sighup()
            self._expect("reload cut", await self._call("POST", "/reload"), False)
        self.turn += 1

    def _sighup(self) -> None:
        assert self.srv.process is not None
        self.srv.process.send_signal(signal.SIGHUP)  # our own child: the supervisor

    async def run(self, done: asyncio.Event) -> None:
        next_at = time.monotonic() + self.every
        while not done.is_set():
            try:
                await asyncio.wait_for(done.wait(), max(0.0, next_at - time.monotonic()))
                return
            except TimeoutError:
                next_at += self.every
            try:
                await self.step()
            except (OSError, asyncio.IncompleteReadError, TimeoutError) as exc:
                # the admin connection landed on a worker being killed: not a config verdict
                self.outcomes["admin call lost to a kill"] += 1
                self.unexpected.append(f"lost: {type(exc).__name__}")


# -- worker kills ----------------------------------------------------------------------------
def children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(p) for p in path.read_text().split()] if path.exists() else []


def worker_id(pid: int) -> str | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    for item in env:
        if item.startswith(b"MARGINRANK_WORKER_ID="):
            return item.split(b"=", 1)[1].decode()
    return None


class Killer:
    def __init__(self, srv: ServiceProcess, every: float, max_kills: int | None,
                 connections: list[Connection], workers: int) -> None:
        self.srv, self.every, self.max_kills = srv, every, max_kills
        self.workers = workers
        self.deferred = 0  # 0.1 s waits for a replacement to serve before a kill
        self.connections = connections
        self.kills: list[dict[str, object]] = []
        self.rng = random.Random(7)

    async def run(self, done: asyncio.Event) -> None:
        next_at = time.monotonic() + self.every
        while not done.is_set():
            if self.max_kills is not None and len(self.kills) >= self.max_kills:
                return
            try:
                await asyncio.wait_for(done.wait(), max(0.0, next_at - time.monotonic()))
                return
            except TimeoutError:
                next_at += self.every
            assert self.srv.process is not None
            # Kill a serving worker only while every worker serves: a replacement still
            # loading is not killed (on a loaded machine a load can take longer than the
            # kill interval, and killing it would measure the machine, not the service).
            while not done.is_set():
                pids = children(self.srv.process.pid)
                ids = {pid: worker_id(pid) for pid in pids}
                if len(pids) == self.workers and all(i in Connection.answered_by
                                                     for i in ids.values()):
                    break
                self.deferred += 1
                await asyncio.sleep(0.1)
            if done.is_set():
                return
            pid = self.rng.choice(pids)
            wid = ids[pid]
            held = sum(1 for c in self.connections
                       if c.writer is not None and c.worker in (wid, None))
            os.kill(pid, signal.SIGKILL)  # a worker of the service we started
            self.kills.append({"at": time.time(), "worker": wid, "connections_held": held})
            next_at = time.monotonic() + self.every  # the interval runs from this kill


# -- the run ---------------------------------------------------------------------------------
def expected_rankings(bundle: Path, texts: list[str], combos: list[dict[str, str]],
                      tmp: Path) -> dict[tuple[str, int], tuple[str, ...]]:
    """(config version, combo index) -> product ids, ranked in process."""
    base = Ranker.load(bundle)
    table = {}
    for n, text in enumerate(texts):
        path = tmp / f"variant-{n}.yaml"
        path.write_text(text)
        ranker = base.variant(path)
        for i, params in enumerate(combos):
            results = ranker.search(params["q"], customer_id=params.get("customer_id"),
                                    k=int(params["k"]))
            table[(ranker.serving.version, i)] = tuple(r.product_id for r in results)
    return table


def make_plan(queries: list[str], customers: list[str], n: int,
              seed: int = 0) -> tuple[list[dict[str, str]], list[dict[str, str]], list[int]]:
    """``n`` searches over a fixed set of combos (query, customer or none); returns the
    combos, the plan and each plan entry's combo index."""
    combos = [{"q": q, "k": "10", **({"customer_id": c} if c else {})}
              for q in queries for c in (None, *customers)]
    rng = random.Random(seed)
    index = [rng.randrange(len(combos)) for _ in range(n)]
    return combos, [combos[i] for i in index], index


def log_accepted(log: Path) -> set[str]:
    """Versions the service logged as accepted (start, SIGHUP, any path) or swapped in."""
    versions = set()
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and ('"config accepted"' in line or '"config swapped in"' in line):
            versions.add(json.loads(line).get("config_version"))
    return versions


def swap_lags_ms(log: Path) -> list[float]:
    """How long after a config was accepted each worker served it (the workers' "config
    swapped in" lines; a restarted worker's first config is not a swap and is left out)."""
    lags = []
    for line in log.read_text(errors="replace").splitlines():
        if line.startswith("{") and '"config swapped in"' in line:
            doc = json.loads(line)
            if not doc.get("first") and doc.get("lag_ms") is not None:
                lags.append(float(doc["lag_ms"]))
    return sorted(lags)


def processes_of_run(marker: str) -> list[int]:
    """Pids of live processes whose environment carries this run's marker."""
    found = []
    needle = f"{RUN_MARKER}={marker}".encode()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and int(entry.name) != os.getpid():
            try:
                if needle in (entry / "environ").read_bytes():
                    state = (entry / "stat").read_text().rsplit(")", 1)[1].split()[0]
                    if state != "Z":
                        found.append(int(entry.name))
            except OSError:
                continue
    return found


def threads_vs_one(bundle: Path, combos: list[dict[str, str]], n: int = 3000) -> dict:
    """Searches per second of one process with 1 and with 2 threads searching."""
    ranker = Ranker.load(bundle)
    work = [combos[i % len(combos)] for i in range(n)]

    def run(chunk: list[dict[str, str]]) -> None:
        for p in chunk:
            ranker.search(p["q"], customer_id=p.get("customer_id"), k=int(p["k"]))

    run(work[:200])
    start = time.perf_counter()
    run(work)
    one = n / (time.perf_counter() - start)
    start = time.perf_counter()
    with ThreadPoolExecutor(2) as pool:
        list(pool.map(run, [work[0::2], work[1::2]]))
    two = n / (time.perf_counter() - start)
    return {"one_thread_per_s": one, "two_threads_per_s": two, "ratio": two / one}


def phase(srv: ServiceProcess, plan: list[dict[str, str]], concurrency: int,
          changer: Changer | None = None, killer_every: float | None = None,
          max_kills: int | None = None) -> dict:
    tally, connections = Tally(), []  # type: ignore[var-annotated]

    async def drive() -> tuple[float, Killer | None]:
        done = asyncio.Event()
        workers = int(srv.args[srv.args.index("--workers") + 1])
        killer = Killer(srv, killer_every, max_kills, connections, workers) \
            if killer_every else None
        side = [asyncio.create_task(x.run(done)) for x in (changer, killer) if x is not None]
        seconds = await search_load(srv.port, plan, concurrency, tally, connections)
        done.set()
        await asyncio.gather(*side)
        return seconds, killer

    cpu = time.process_time()
    seconds, killer = asyncio.run(drive())
    cpu = time.process_time() - cpu
    full_seconds = int(seconds)
    idle = [s for s in range(full_seconds) if tally.per_second[s] == 0]
    lat = sorted(tally.latencies)
    return {"tally": tally, "seconds": seconds, "throughput_per_s": tally.ok / seconds,
            "client_cpu_ms_per_request": cpu / max(1, len(plan)) * 1000,
            "seconds_with_no_answer": idle, "killer": killer,
            "p50_ms": lat[len(lat) // 2] * 1000 if lat else None,
            "p99_ms": lat[int(len(lat) * 0.99)] * 1000 if lat else None}


def main(argv: list[str] | None = None) -> None:  # noqa: PLR0915 - one linear script
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--bundle", type=Path, default=Path("marginrank-demo/bundle"))
    parser.add_argument("--judgments", default="", help="unused (queries come from the "
                        "bundle's queries.json); kept for symmetry with service_load.py")
    parser.add_argument("--requests", type=int, default=20_000)
    parser.add_argument("--phase-requests", type=int, default=8_000,
                        help="searches in each comparison phase (scaling, changes only)")
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--kill-every", type=float, default=10.0)
    parser.add_argument("--max-kills", type=int, default=None)
    parser.add_argument("--change-every", type=float, default=1.0)
    parser.add_argument("--queries", type=int, default=40)
    parser.add_argument("--skip-scaling", action="store_true",
                        help="only the chaos phase (the test's small run)")
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "service_chaos.json")
    parser.add_argument("--markdown", type=Path, default=ROOT / "docs" / "service_chaos.md")
    args = parser.parse_args(argv)

    marker = uuid.uuid4().hex
    os.environ[RUN_MARKER] = marker  # inherited by the service and its workers
    queries = json.loads((args.bundle / "queries.json").read_text())["queries"][:args.queries]
    from clv.segments import load_customers

    customers = load_customers(args.bundle / "customers.npz").customer_ids.tolist()[:1]
    combos, plan, plan_index = make_plan(queries, [*customers, "unknown-7"], args.requests)
    start_text = (args.bundle / "weights.yaml").read_text(encoding="utf-8")
    valid = [start_text]
    for _ in range(3):
        valid.append(stronger_variant(valid[-1]))
    invalid = invalid_variant(valid[1])
    report: dict[str, object] = {
        "command": rerun_command(__file__, argv), "environment": environment("fastapi"),
        "workers": args.workers, "concurrency": args.concurrency}
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        expected = expected_rankings(args.bundle, valid, combos, tmp)
        if not args.skip_scaling:
            report["threads"] = threads_vs_one(args.bundle, combos)
            print("threads:", report["threads"], flush=True)
        config = tmp / "weights.yaml"
        config.write_text(start_text)
        scaling: dict[str, float] = {}
        if not args.skip_scaling:
            one_plan = make_plan(queries, customers, args.phase_requests, seed=1)[1]
            with ServiceProcess(args.bundle, config, tmp / "one.log", workers=1) as srv:
                srv.wait_for("/readyz")
                phase(srv, one_plan[:500], args.concurrency)  # warm-up
                scaling["1"] = phase(srv, one_plan, args.concurrency)["throughput_per_s"]
        with ServiceProcess(args.bundle, config, tmp / "server.log", args.workers) as srv:
            srv.wait_for("/readyz")
            if not args.skip_scaling:
                phase(srv, plan[:500], args.concurrency)  # warm-up
                base = phase(srv, plan[:args.phase_requests], args.concurrency)
                scaling[str(args.workers)] = base["throughput_per_s"]
                changes = phase(srv, plan[:args.phase_requests], args.concurrency,
                                Changer(srv, config, valid, invalid, args.change_every))
                report["scaling"] = {**scaling, "ratio": scaling[str(args.workers)]
                                     / scaling["1"]}
                report["changes_only"] = {
                    "throughput_per_s": changes["throughput_per_s"],
                    "without_changes_per_s": base["throughput_per_s"],
                    "ratio": changes["throughput_per_s"] / base["throughput_per_s"],
                    "failed": changes["tally"].failed,
                    "client_cpu_ms_per_request": base["client_cpu_ms_per_request"],
                    "p50_ms": base["p50_ms"], "p99_ms": base["p99_ms"]}
                print("scaling:", report["scaling"], "changes:", report["changes_only"],
                      flush=True)
            changer = Changer(srv, config, valid, invalid, args.change_every)
            chaos = phase(srv, plan, args.concurrency, changer, args.kill_every, args.max_kills)
            time.sleep(0.5)
            accepted = changer.accepted | log_accepted(srv.log_path)
            lags = swap_lags_ms(srv.log_path)
            tally: Tally = chaos["tally"]
            unaccepted = sum(1 for version, _, _ in tally.answers if version not in accepted)
            wrong = sum(1 for version, i, ids in tally.answers
                        if expected.get((version, plan_index[i])) != ids)
            never_meant = sorted(accepted - {version_of(t) for t in valid})
            killer: Killer = chaos["killer"]
            assert srv.process is not None
            stop = time.monotonic()
            srv.process.send_signal(signal.SIGTERM)
            srv.process.wait(timeout=30)
            sigterm_s = time.monotonic() - stop
        report["chaos"] = {
            "requests": len(plan), "answered": tally.ok, "failed": tally.failed,
            "non_200": dict(tally.non_200), "failure_samples": tally.failures[:5],
            "seconds": chaos["seconds"], "throughput_per_s": chaos["throughput_per_s"],
            "kills": len(killer.kills),
            "kill_waits_for_a_replacement_s": killer.deferred / 10,
            "in_flight_on_killed_workers": sum(int(str(k["connections_held"]))
                                               for k in killer.kills),
            "seconds_with_no_worker_serving": len(chaos["seconds_with_no_answer"]),
            "answers_checked": len(tally.answers),
            "answers_by_unaccepted_config": unaccepted,
            "answers_with_wrong_ranking": wrong,
            "accepted_versions_not_intended": never_meant,
            "config_changes": dict(changer.outcomes), "unexpected_change_answers":
                changer.unexpected[:10],
            "versions_served": dict(Counter(v for v, _, _ in tally.answers)),
            "answers_per_second": [tally.per_second[s] for s in range(int(chaos["seconds"]))],
            "kill_log": killer.kills,
            "swap_lag_ms": {"swaps": len(lags),
                            "p50": lags[len(lags) // 2] if lags else None,
                            "p99": lags[int(len(lags) * 0.99)] if lags else None,
                            "max": lags[-1] if lags else None},
        }
    time.sleep(0.5)
    report["processes_left"] = len(processes_of_run(marker))
    report["sigterm_exit_s"] = sigterm_s
    report["environment"] = finish(report["environment"])
    args.out.write_text(json.dumps(report, indent=2, default=str))
    args.markdown.write_text(markdown(report))
    print(markdown(report))
    print(f"written: {args.out}, {args.markdown}")


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def markdown(r: dict) -> str:
    c = r["chaos"]
    lines = [
        *header("Service chaos benchmark", r["command"], r["environment"]),
        "The cores are shared by the service, the load client and other jobs: on a loaded "
        "machine throughputs are indicative; the ratios are measured side by side in one run.",
        "",
        "## Chaos", "",
        f"{c['requests']:,} searches at concurrency {r['concurrency']}, {r['workers']} workers, "
        f"{c['seconds']:.0f} s; {c['kills']} worker SIGKILLs (a kill waits until every "
        f"worker serves: {c['kill_waits_for_a_replacement_s']:.0f} s of waiting for "
        f"replacements to load); config changes {c['config_changes']}.", "",
        "| must show | measured |", "| --- | --- |",
        f"| answers ranked by a config never accepted (must be 0) | "
        f"{c['answers_by_unaccepted_config']} of {c['answers_checked']:,} checked |",
        f"| answers whose ranking differs from their config's | "
        f"{c['answers_with_wrong_ranking']} |",
        f"| accepted configs that were not an intended file (cuts) | "
        f"{len(c['accepted_versions_not_intended'])} |",
        f"| seconds with no worker serving (must be 0) | "
        f"{c['seconds_with_no_worker_serving']} |",
        f"| failed searches vs requests in flight on killed workers | {c['failed']} vs "
        f"{c['in_flight_on_killed_workers']} |",
        f"| processes left after exit (must be 0) | {r['processes_left']} |",
        f"| SIGTERM exit (≤ 10 s) | {r['sigterm_exit_s']:.2f} s |",
        f"| throughput during chaos | {c['throughput_per_s']:,.0f} searches/s |",
        f"| a worker serves a new config (after it was accepted), p50 / p99 / max | "
        f"{_ms(c['swap_lag_ms']['p50'])} / {_ms(c['swap_lag_ms']['p99'])} / "
        f"{_ms(c['swap_lag_ms']['max'])} over {c['swap_lag_ms']['swaps']} swaps |",
    ]
    if "changes_only" in r:
        ch, sc, th = r["changes_only"], r["scaling"], r["threads"]
        lines += [
            f"| throughput with config changes every second vs without (≥ 90%) | "
            f"{ch['throughput_per_s']:,.0f} vs {ch['without_changes_per_s']:,.0f} /s = "
            f"{ch['ratio']:.0%} ({ch['failed']} failed) |", "",
            "## Scaling (light load client)", "",
            f"Raw-socket HTTP/1.1 keep-alive client: {ch['client_cpu_ms_per_request']:.3f} ms "
            "of client CPU per request.", "",
            "| workers | searches/s |", "| --- | --- |",
            *[f"| {k} | {v:,.0f} |" for k, v in sc.items() if k != "ratio"],
            f"| 2 / 1 | {sc['ratio']:.2f}× |", "",
            "## One process, threads", "",
            "The same searches through `Ranker.search` in one process, 1 thread vs 2 threads "
            f"(no HTTP): {th['one_thread_per_s']:,.0f} vs {th['two_threads_per_s']:,.0f} "
            f"searches/s ({th['ratio']:.2f}×): on this loaded machine a second thread also wins "
            "a second share of the scheduler, and part of a search runs in NumPy outside the "
            "GIL (the Numba kernels hold it: no `nogil`). Threads in one HTTP process were not "
            "measured; the service keeps processes for crash isolation (a crash costs one "
            "worker's requests) and because the per-request HTTP work is Python under the GIL.",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
