"""What a CAVE token costs a request: benchmarks of cave-requests-auth.

Run from the repository root, with the package installed::

    python benchmarks/run.py            # the full run, under a minute
    python benchmarks/run.py --quick    # every benchmark, tiny counts: proves it runs (CI)
    python benchmarks/run.py --rst      # the table as an RST simple table, for docs/performance.rst
    python benchmarks/run.py --json     # everything, for machines

Progress goes to standard error, the report to standard output. A run fails on
a crash, never on a number.

Reading the table: ``ratio`` is the row's ``result`` divided by the result of
the row named under ``against``, both measured in this run. Results are medians
over rounds (imports: the fastest run); ratios are medians of the per-round
ratios, and ``quartiles`` holds the middle half of those: where it spans 1, the
difference is within the noise. Within a round the variants take turns, in an
order rotated every round, so that a noisy neighbour slows them all alike. For
a time, a ratio above 1 is slower; for ``req/s``, a ratio below 1 is slower.

- ``per call``: one ``auth(request)`` on a fresh ``PreparedRequest``, net of
  making that request (``p.copy()`` with its own hooks, as every request a
  ``Session`` prepares has; timed in the same rounds and subtracted). The
  reference is ``HTTPBasicAuth("user", "pass")``, the floor a function that
  assigns one header.
- ``file system``: the file-system audit events (``open``, ``os.*``, …) of
  steady-state calls, per 1000, seen by ``sys.addaudithook`` in a fresh
  interpreter. ``os.stat`` has no audit event: a ``stat`` goes unseen.
- ``import``: the fastest of several fresh ``python -c "import …"``,
  interpreter start-up included (hence the ``pass`` row).
- ``end to end``: µs per GET to a loopback HTTP/1.1 server (keep-alive, in a
  thread of this process), one client per variant.
- ``threads``: requests per second of several threads, one ``Session`` each,
  all sharing one auth object, against the same loopback server.
"""

from __future__ import annotations

import argparse
import gc
import importlib.util
import json
import multiprocessing
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import asdict, dataclass, field
from functools import partial
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib.metadata import version
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, TypeVar

import requests
import urllib3
from requests.auth import HTTPBasicAuth

import cave_requests_auth
from cave_requests_auth import CAVETokenAuth

if TYPE_CHECKING:
    from collections.abc import Iterator, Mapping, Sequence

    from requests import PreparedRequest

    Auth = Callable[[PreparedRequest], PreparedRequest]
    Get = Callable[[], bytes]  # one GET, returning the body

TOKEN = "0123456789abcdef0123456789abcdef"
SECRET_FILE = "cave-secret.json"  # the file every host falls back to
URL = "https://minnie.example.org/segmentation/api/v1/table"
LOOPBACK_PATH = "/segmentation/api/v1/table"
FILE_SYSTEM_PREFIXES = ("os.", "shutil.", "glob.", "tempfile.", "pathlib.")  # and "open"
BARRIER_TIMEOUT = 60.0  # seconds: a thread that never arrives is a crash, not a number
REFERENCE = "(reference)"
TIMED_STATEMENT = "import time; t = time.perf_counter_ns(); {}; print(time.perf_counter_ns() - t)"

T = TypeVar("T")


@dataclass(frozen=True)
class Sizes:
    """How much each benchmark does."""

    call_batch: int  # auth calls per timed batch
    call_rounds: int
    audit_calls: int  # steady-state calls watched by the audit hook
    import_runs: int  # fresh interpreters per statement
    gets: int  # GETs per variant, end to end
    get_rounds: int
    threads: int
    thread_gets: int  # GETs per thread per round
    thread_rounds: int


FULL = Sizes(
    call_batch=2000,
    call_rounds=500,
    audit_calls=1000,
    import_runs=15,
    gets=8000,  # 160 rounds of 50: the median ratio to within about half a per cent
    get_rounds=160,
    threads=8,
    thread_gets=100,
    thread_rounds=15,
)
QUICK = Sizes(
    call_batch=100,
    call_rounds=5,
    audit_calls=1000,
    import_runs=2,
    gets=50,
    get_rounds=5,
    threads=8,
    thread_gets=5,
    thread_rounds=2,
)

UNIT_FORMATS = {
    "ns/call": "{:,.0f} ns",
    "events": "{:,.0f}",
    "ms": "{:.1f} ms",
    "µs/GET": "{:,.0f} µs",
    "req/s": "{:,.0f} req/s",
}


# -- the report ---------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of the table."""

    benchmark: str
    variant: str
    value: float | None  # None: not measured; ``shown`` says why
    unit: str
    shown: str  # the value as the table prints it
    ratio: float | None = None  # the median of the per-round ratios
    quartiles: tuple[float, float] | None = None  # of the per-round ratios
    against: str = ""


def row(
    benchmark: str,
    variant: str,
    value: float,
    unit: str,
    *,
    ratios: Sequence[float] = (),
    against: str = "",
    signed: bool = False,
) -> Row:
    """A measured row: its value formatted for its unit, its per-round ``ratios`` summed up.

    A reference row (``against=REFERENCE``) has the ratio 1 and no quartiles.
    """
    shown = UNIT_FORMATS[unit].format(value)
    if signed and not shown.startswith("-"):
        shown = "+" + shown
    if against == REFERENCE:
        ratios = [1.0]
    ratio = statistics.median(ratios) if ratios else None
    quartiles = None
    if len(ratios) > 1:
        low, _, high = statistics.quantiles(ratios, n=4)
        quartiles = (low, high)
    return Row(benchmark, variant, value, unit, shown, ratio, quartiles, against)


def missing(benchmark: str, variant: str, why: str) -> Row:
    """A row for what could not be measured."""
    return Row(benchmark, variant, None, "", why)


@dataclass
class Report:
    """The rows of the table and the notes printed under it."""

    rows: list[Row] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)

    def extend(self, other: Report) -> None:
        self.rows += other.rows
        self.notes += other.notes


# -- timing -------------------------------------------------------------------------


def interleaved(variants: Mapping[str, Callable[[], T]], rounds: int) -> dict[str, list[T]]:
    """Each variant's results, one per round; the variants take turns, rotated each round."""
    names = list(variants)
    results: dict[str, list[T]] = {name: [] for name in names}
    for number in range(rounds):
        turn = number % len(names)
        for name in names[turn:] + names[:turn]:
            results[name].append(variants[name]())
    return results


def round_ratios(values: Sequence[float], references: Sequence[float]) -> list[float]:
    """The ratios ``value / reference`` of each round."""
    return [value / reference for value, reference in zip(values, references) if reference]


@contextmanager
def gc_paused() -> Iterator[None]:
    """Garbage collection off, as ``timeit`` has it."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def progress(message: str) -> None:
    print(message, file=sys.stderr, flush=True)


# -- what the benchmarks share ------------------------------------------------------


@contextmanager
def secrets_dir() -> Iterator[str]:
    """A temporary secrets folder holding ``cave-secret.json`` (mode 0600)."""
    with tempfile.TemporaryDirectory(prefix="cave-bench-") as folder:
        path = os.path.join(folder, SECRET_FILE)
        descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump({"token": TOKEN}, file)
        yield folder


def warmed_auth(folder: str, url: str, **kwargs: Any) -> CAVETokenAuth:
    """A ``CAVETokenAuth`` reading ``folder``, its decision for ``url`` already cached."""
    auth = CAVETokenAuth(secrets_dir=folder, **kwargs)
    source = auth.attachment_for(url).source
    if source is None or source.kind != "file":
        raise RuntimeError(f"The token came from {source}, not from the file: unset CAVE_TOKEN.")
    return auth


def template_request() -> PreparedRequest:
    return requests.Request("GET", URL).prepare()


def fresh_copy(template: PreparedRequest) -> PreparedRequest:
    """A new request from ``template``, with its own hooks as a ``Session`` gives each."""
    request = template.copy()
    request.hooks = {"response": []}
    return request


class _Handler(BaseHTTPRequestHandler):
    """Answers every GET with ``token`` or ``none``: whether an Authorization came."""

    protocol_version = "HTTP/1.1"  # keep-alive
    disable_nagle_algorithm = True  # headers and body are two writes

    def do_GET(self) -> None:
        body = b"token" if self.headers.get("Authorization") else b"none"
        self.send_response(200)
        self.send_header("Content-Type", "text/plain")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: Any) -> None:
        """Quiet."""


class LoopbackServer(ThreadingHTTPServer):
    """The server of the HTTP benchmarks, counting the connections it accepts."""

    block_on_close = False  # keep-alive handler threads end with their clients
    request_queue_size = 64

    def __init__(self, connections: Any) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.connections = connections  # a multiprocessing.Value shared with the client

    def process_request(self, request: Any, client_address: Any) -> None:
        with self.connections.get_lock():
            self.connections.value += 1
        super().process_request(request, client_address)


def _serve(connections: Any, ports: Any) -> None:
    """The server process: report the port, then serve until terminated."""
    server = LoopbackServer(connections)
    ports.send(server.server_address[1])
    server.serve_forever()


class RunningServer:
    """A ``LoopbackServer`` in a process of its own, seen from the client."""

    def __init__(self, port: int, connections: Any) -> None:
        self.url = f"http://127.0.0.1:{port}{LOOPBACK_PATH}"
        self._connections = connections

    @property
    def connections(self) -> int:
        return int(self._connections.value)


@contextmanager
def loopback_server() -> Iterator[RunningServer]:
    """A ``LoopbackServer`` in another process.

    Its header parsing and threads then neither hold this process's GIL nor
    share its core: the ratios measure the client, which is what the library
    changes (this machine has 2 cores: one each).
    """
    context = multiprocessing.get_context("fork" if sys.platform != "win32" else "spawn")
    connections = context.Value("i", 0)
    receiver, sender = context.Pipe(duplex=False)
    process = context.Process(target=_serve, args=(connections, sender), daemon=True)
    process.start()
    try:
        if not receiver.poll(BARRIER_TIMEOUT):
            raise RuntimeError("the loopback server did not start")
        yield RunningServer(receiver.recv(), connections)
    finally:
        process.terminate()
        process.join(BARRIER_TIMEOUT)


def session_get(session: requests.Session, url: str) -> Get:
    return lambda: session.get(url).content


def pool_get(pool: urllib3.PoolManager, url: str) -> Get:
    return lambda: pool.request("GET", url).data


def check_token_sent(name: str, get: Get, expected: bool) -> None:
    """One GET (a warm-up), checking that the token arrived, or did not, as expected."""
    answer = get()
    if answer != (b"token" if expected else b"none"):
        raise RuntimeError(f"{name}: the server answered {answer!r}; token expected: {expected}.")


# -- 1. per call --------------------------------------------------------------------


def floor_auth(request: PreparedRequest) -> PreparedRequest:
    """The least an auth can do: one header assignment."""
    request.headers["Authorization"] = "Bearer x"
    return request


def time_copies(template: PreparedRequest, calls: int) -> float:
    with gc_paused():
        start = time.perf_counter_ns()
        for _ in range(calls):
            fresh_copy(template)
        return time.perf_counter_ns() - start


def time_calls(auth: Auth, template: PreparedRequest, calls: int) -> float:
    with gc_paused():
        start = time.perf_counter_ns()
        for _ in range(calls):
            auth(fresh_copy(template))
        return time.perf_counter_ns() - start


def bench_per_call(folder: str, sizes: Sizes) -> Report:
    progress("per call: auth(request), net of p.copy()")
    template = template_request()
    # The same, prepared by a Session: its four default headers (no Cookie): what a
    # request really carries; a CAVE cookie must then be looked for among them.
    session_template = requests.Session().prepare_request(requests.Request("GET", URL))
    copy_only, session_copy = "p.copy() alone (subtracted)", "a session's p.copy() alone"
    basic, session_basic = "HTTPBasicAuth", "HTTPBasicAuth, a session's request"
    auths: dict[str, tuple[Auth, PreparedRequest, str]] = {
        "floor: one header assignment": (floor_auth, template, basic),
        basic: (HTTPBasicAuth("user", "pass"), template, REFERENCE),
        "CAVETokenAuth(cookie=False)": (warmed_auth(folder, URL, cookie=False), template, basic),
        "CAVETokenAuth(cookie=True)": (warmed_auth(folder, URL, cookie=True), template, basic),
        session_basic: (HTTPBasicAuth("user", "pass"), session_template, REFERENCE),
        "CAVETokenAuth(cookie=True), a session's request": (
            warmed_auth(folder, URL, cookie=True),
            session_template,
            session_basic,
        ),
    }
    batch = sizes.call_batch
    variants = {
        copy_only: partial(time_copies, template, batch),
        session_copy: partial(time_copies, session_template, batch),
    }
    for name, (auth, request, _) in auths.items():
        variants[name] = partial(time_calls, auth, request, batch)
    totals = interleaved(variants, sizes.call_rounds)
    net = {}
    for name, (_, request, _) in auths.items():
        copies = totals[copy_only if request is template else session_copy]
        net[name] = [(total - copy) / batch for total, copy in zip(totals[name], copies)]
    copy_ns = statistics.median(totals[copy_only]) / batch
    report = Report([row("per call", copy_only, copy_ns, "ns/call")])
    for name, (_, _, against) in auths.items():
        reference = name if against == REFERENCE else against
        report.rows.append(
            row(
                "per call",
                name,
                statistics.median(net[name]),
                "ns/call",
                ratios=round_ratios(net[name], net[reference]),
                against=against,
            )
        )
    report.notes.append(
        "per call: a request prepared by a Session carries its four default headers; with "
        "cookie=True one of them could be a Cookie to merge with, and requests' "
        "CaseInsensitiveDict has no cheaper public test of a name than the KeyError of a "
        "miss. A request prepared without a session (the first rows) has none to look for."
    )
    return report


# -- 2. file system -----------------------------------------------------------------


class AuditCounter:
    """An audit hook counting events by name while ``watching`` (a hook stays for good)."""

    def __init__(self) -> None:
        self.events: Counter[str] | None = None

    def __call__(self, event: str, args: tuple[Any, ...]) -> None:
        if self.events is not None:
            self.events[event] += 1

    @contextmanager
    def watching(self) -> Iterator[Counter[str]]:
        self.events = Counter()
        try:
            yield self.events
        finally:
            self.events = None


def is_file_system_event(event: str) -> bool:
    return event == "open" or event.startswith(FILE_SYSTEM_PREFIXES)


def audit_probe(folder: str, calls: int) -> dict[str, dict[str, dict[str, int]]]:
    """The audit events of a cold call, then of ``calls`` warm ones, per ``cookie`` setting.

    Run in a fresh interpreter (``--audit-probe``), since an audit hook cannot be removed.
    """
    counter = AuditCounter()
    sys.addaudithook(counter)
    template = template_request()
    result = {}
    for cookie in (False, True):
        auth = CAVETokenAuth(secrets_dir=folder, cookie=cookie)
        with counter.watching() as cold:
            auth(fresh_copy(template))
        with counter.watching() as warm:
            for _ in range(calls):
                auth(fresh_copy(template))
        result[f"cookie={cookie}"] = {"cold": dict(cold), "warm": dict(warm)}
    return result


def file_system_count(events: Mapping[str, int]) -> int:
    return sum(n for event, n in events.items() if is_file_system_event(event))


def bench_file_system(folder: str, sizes: Sizes) -> Report:
    progress("file system: audit events of steady-state calls, in a fresh interpreter")
    script = str(Path(__file__).resolve())
    command = [sys.executable, script, "--audit-probe", folder, str(sizes.audit_calls)]
    done = subprocess.run(command, check=True, capture_output=True, text=True)
    probe: dict[str, dict[str, dict[str, int]]] = json.loads(done.stdout)
    report = Report()
    for setting, seen in probe.items():
        per_1000 = file_system_count(seen["warm"]) * 1000 / sizes.audit_calls
        report.rows.append(row("file system", f"CAVETokenAuth({setting})", per_1000, "events"))
    cold = " and ".join(f"{file_system_count(s['cold'])} ({k})" for k, s in probe.items())
    others = {e for s in probe.values() for e in s["warm"] if not is_file_system_event(e)}
    report.notes.append(
        f"file system: events per 1000 of {sizes.audit_calls} steady-state calls. Counted "
        "are the audit events open, os.*, shutil.*, glob.*, tempfile.* and pathlib.*; "
        "os.stat and os.path.exists raise none, so they go uncounted. The first, cold "
        f"call made {cold} such events (looking for the token file, reading it): the "
        "hook does see file access. Other audit events in steady state: "
        f"{', '.join(sorted(others)) or 'none'}."
    )
    return report


# -- 3. import ----------------------------------------------------------------------


@contextmanager
def bytecode_cache() -> Iterator[dict[str, str]]:
    """An environment whose interpreters cache bytecode in a temporary folder.

    An installed package imports from cached bytecode; a checkout run with
    ``PYTHONDONTWRITEBYTECODE`` would compile its modules at every import. The
    cache goes to a ``PYTHONPYCACHEPREFIX`` folder, so the checkout stays as it is.
    """
    with tempfile.TemporaryDirectory(prefix="cave-bench-pycache-") as folder:
        env = {k: v for k, v in os.environ.items() if k != "PYTHONDONTWRITEBYTECODE"}
        yield {**env, "PYTHONPYCACHEPREFIX": folder}


@dataclass(frozen=True)
class Timing:
    """A fresh ``python -c statement``, timed from outside and from inside."""

    process_ns: int  # the whole process: start-up, the statement, exit
    statement_ns: int  # the statement alone


def python_timing(statement: str, env: Mapping[str, str]) -> Timing:
    code = TIMED_STATEMENT.format(statement)
    start = time.perf_counter_ns()
    done = subprocess.run(
        [sys.executable, "-c", code], check=True, env=env, capture_output=True, text=True
    )
    return Timing(time.perf_counter_ns() - start, int(done.stdout))


def modules_after(module: str) -> set[str]:
    """The names in ``sys.modules`` once a fresh interpreter has imported ``module``."""
    code = f"import sys, {module}; print('\\n'.join(sys.modules))"
    done = subprocess.run([sys.executable, "-c", code], check=True, capture_output=True, text=True)
    return set(done.stdout.split())


def extra_modules_note() -> str:
    extra = modules_after("cave_requests_auth") - modules_after("requests")
    own = {name for name in extra if name.partition(".")[0] == "cave_requests_auth"}
    return (
        f"import: beyond what requests imports, cave_requests_auth imports its own "
        f"{len(own)} modules and: {', '.join(sorted(extra - own)) or 'nothing else'}."
    )


def bench_import(_folder: str, sizes: Sizes) -> Report:
    progress(f"import: fastest of {sizes.import_runs} fresh interpreters each")
    base, ours = "import requests", "import cave_requests_auth"
    statements = ["pass", base, ours]
    caveclient = importlib.util.find_spec("caveclient") is not None
    if caveclient:
        statements.append("import caveclient")
    with bytecode_cache() as env:
        variants = {statement: partial(python_timing, statement, env) for statement in statements}
        interleaved(variants, rounds=1)  # untimed: fills the bytecode cache
        runs = interleaved(variants, sizes.import_runs)
    process = {s: min(t.process_ns for t in timings) / 1e6 for s, timings in runs.items()}
    alone = {s: min(t.statement_ns for t in timings) / 1e6 for s, timings in runs.items()}
    report = Report([row("import", "python -c pass", process["pass"], "ms")])
    report.rows.append(row("import", base, process[base], "ms", against=REFERENCE))
    for statement in statements[2:]:
        ms, ratio = process[statement], process[statement] / process[base]
        report.rows.append(row("import", statement, ms, "ms", ratios=[ratio], against=base))
    if not caveclient:
        report.rows.append(missing("import", "import caveclient", "not installed"))
    for label, fastest in (("process", process), ("import alone", alone)):
        variant = f"cave_requests_auth − requests ({label})"
        report.rows.append(row("import", variant, fastest[ours] - fastest[base], "ms", signed=True))
    report.notes.append(
        "import: bytecode cached (in a temporary PYTHONPYCACHEPREFIX) by one untimed run of "
        "each statement, as an installed package has it. The process rows time the whole "
        "python -c; the import-alone row times the import statement inside it, without the "
        "start-up and exit noise. Differences of a few ms are within this noise."
    )
    report.notes.append(extra_modules_note())
    return report


# -- 4. end to end ------------------------------------------------------------------


@dataclass(frozen=True)
class Client:
    """One way of sending a GET to the loopback server."""

    name: str
    get: Get
    sends_token: bool
    against: str = REFERENCE  # the name of the client it is compared with


def time_gets(get: Get, count: int) -> float:
    start = time.perf_counter_ns()
    for _ in range(count):
        get()
    return time.perf_counter_ns() - start


def session_clients(
    stack: ExitStack, url: str, auth: CAVETokenAuth
) -> tuple[list[Client], list[Row]]:
    """The ``requests.Session`` clients, and rows for those not available."""
    plain = "Session, no auth"
    session, authed, mounted = (stack.enter_context(requests.Session()) for _ in range(3))
    authed.auth = auth
    clients = [
        Client(plain, session_get(session, url), sends_token=False),
        Client("Session, session.auth = CAVETokenAuth", session_get(authed, url), True, plain),
    ]
    adapter_class = getattr(cave_requests_auth, "CAVEAuthAdapter", None)
    if adapter_class is None:
        return clients, [missing("end to end", "Session, CAVEAuthAdapter", "not available")]
    mounted.mount(url.removesuffix(LOOPBACK_PATH) + "/", adapter_class(auth))
    clients.append(
        Client("Session, CAVEAuthAdapter mounted", session_get(mounted, url), True, plain)
    )
    return clients, []


def pool_clients(stack: ExitStack, url: str, auth: CAVETokenAuth) -> tuple[list[Client], list[Row]]:
    """The urllib3 clients, and rows for those not available.

    Beside ``CAVEPoolManager``, a plain ``PoolManager`` given the same headers once, by
    ``auth_headers``: the cost of the headers themselves, apart from the manager's work.
    """
    plain = "urllib3.PoolManager"
    clients = [Client(plain, pool_get(stack.enter_context(urllib3.PoolManager()), url), False)]
    unavailable = []
    headers_for = getattr(cave_requests_auth, "auth_headers", None)
    if headers_for is not None:
        headers = headers_for(url, secrets_dir=auth.secrets_dir, cookie=auth.cookie)
        by_hand = stack.enter_context(urllib3.PoolManager(headers=headers))
        name = "PoolManager(headers=auth_headers(…))"
        clients.append(Client(name, pool_get(by_hand, url), True, plain))
    pool_class = getattr(cave_requests_auth, "CAVEPoolManager", None)
    if pool_class is None:
        unavailable.append(missing("end to end", "CAVEPoolManager", "not available"))
    else:
        cave_pool = stack.enter_context(pool_class(auth))
        clients.append(Client("CAVEPoolManager", pool_get(cave_pool, url), True, plain))
    return clients, unavailable


def bench_end_to_end(folder: str, sizes: Sizes) -> Report:
    progress(f"end to end: {sizes.gets} GETs per variant to a loopback server")
    per_round = max(1, sizes.gets // sizes.get_rounds)
    with loopback_server() as server, ExitStack() as stack:
        auth = warmed_auth(folder, server.url)
        sessions, no_session = session_clients(stack, server.url, auth)
        pools, no_pool = pool_clients(stack, server.url, auth)
        clients, unavailable = sessions + pools, no_session + no_pool
        for client in clients:
            check_token_sent(client.name, client.get, client.sends_token)
        variants = {client.name: partial(time_gets, client.get, per_round) for client in clients}
        times = interleaved(variants, sizes.get_rounds)
        connections = server.connections
    report = Report()
    for client in clients:
        reference = client.name if client.against == REFERENCE else client.against
        report.rows.append(
            row(
                "end to end",
                client.name,
                statistics.median(times[client.name]) / per_round / 1000,
                "µs/GET",
                ratios=round_ratios(times[client.name], times[reference]),
                against=client.against,
            )
        )
    report.rows += unavailable
    report.notes.append(
        f"end to end: {per_round * sizes.get_rounds} GETs per variant in {sizes.get_rounds} "
        f"rounds; the {len(clients)} clients opened {connections} connections (keep-alive). "
        "A Session without session.auth looks for ~/.netrc on every request, one with it "
        "does not: that lookup is in the no-auth and adapter rows only."
    )
    return report


# -- 4b. other clients: httpx and aiohttp --------------------------------------------


def _client_rows(name: str, module: str, url: str, sizes: Sizes) -> list[Row]:
    """Rows for ``benchmarks/<module>.py``: no auth (reference), basic auth, the binding.

    The ratio of each row is against no auth; the notes give the binding against
    the library's own basic auth.
    """
    try:
        rows_module = importlib.import_module(module)
    except ImportError as error:
        return [missing("end to end", f"{name} (not installed: {error.name})", "n/a")]
    per_round = max(1, sizes.gets // sizes.get_rounds)
    medians = rows_module.measure(url, rounds=sizes.get_rounds, per_round=per_round)
    names = list(medians)  # no auth, basic auth, the binding: in that order
    reference = medians[names[0]]
    return [
        row(
            "end to end",
            variant,
            value,
            "µs/GET",
            ratios=[] if index == 0 else [value / reference],
            against=REFERENCE if index == 0 else names[0],
        )
        for index, (variant, value) in enumerate(medians.items())
    ]


def bench_other_clients(folder: str, sizes: Sizes) -> Report:
    progress(f"end to end, httpx and aiohttp: {sizes.gets} GETs per variant")
    sys.path.insert(0, str(Path(__file__).parent))
    report = Report()
    with loopback_server() as server:
        for name, module in (("httpx", "httpx_rows"), ("aiohttp", "aiohttp_rows")):
            rows = _client_rows(name, module, server.url, sizes)
            report.rows += rows
            measured = [r for r in rows if r.value is not None]
            if len(measured) == 3:
                basic, binding = measured[1], measured[2]
                report.notes.append(
                    f"{name}: {binding.variant} against {basic.variant}: "
                    f"{binding.value / basic.value:.2f} (medians of {sizes.get_rounds} rounds)."
                )
    return report


# -- 5. threads ---------------------------------------------------------------------


def requests_per_second(gets: Sequence[Get], per_thread: int) -> float:
    """The rate of one thread per ``gets`` function, each calling it ``per_thread`` times."""
    barrier = threading.Barrier(len(gets) + 1, timeout=BARRIER_TIMEOUT)

    def work(get: Get) -> None:
        barrier.wait()
        for _ in range(per_thread):
            get()

    with ThreadPoolExecutor(max_workers=len(gets)) as pool:
        futures = [pool.submit(work, get) for get in gets]
        barrier.wait()
        start = time.perf_counter_ns()
        for future in futures:
            future.result()  # raises what the thread raised
        elapsed = time.perf_counter_ns() - start
    return len(gets) * per_thread * 1e9 / elapsed


def warmed_session_gets(
    stack: ExitStack, url: str, count: int, auth: CAVETokenAuth | None
) -> list[Get]:
    """``count`` new Sessions, with ``auth``, each warmed by a first GET."""
    gets = []
    for number in range(count):
        session = stack.enter_context(requests.Session())
        session.auth = auth
        get = session_get(session, url)
        check_token_sent(f"session {number}", get, auth is not None)
        gets.append(get)
    return gets


def bench_threads(folder: str, sizes: Sizes) -> Report:
    threads = sizes.threads
    progress(f"threads: {threads} threads, one Session each, sharing one auth")
    plain = f"{threads} threads, no auth"
    shared = f"{threads} threads, one shared CAVETokenAuth"
    with loopback_server() as server, ExitStack() as stack:
        auth = warmed_auth(folder, server.url)
        groups = {
            plain: warmed_session_gets(stack, server.url, threads, None),
            shared: warmed_session_gets(stack, server.url, threads, auth),
        }
        variants = {
            name: partial(requests_per_second, gets, sizes.thread_gets)
            for name, gets in groups.items()
        }
        rates = interleaved(variants, sizes.thread_rounds)
    plain_rate, shared_rate = statistics.median(rates[plain]), statistics.median(rates[shared])
    ratios = round_ratios(rates[shared], rates[plain])
    report = Report(
        [
            row("threads", plain, plain_rate, "req/s", against=REFERENCE),
            row("threads", shared, shared_rate, "req/s", ratios=ratios, against=plain),
        ]
    )
    report.notes.append(
        f"threads: {sizes.thread_gets} GETs per thread per round, {sizes.thread_rounds} rounds; "
        "one Session per thread (requests does not promise that a Session is thread-safe), "
        "all sharing one CAVETokenAuth; the server runs in a process of its own."
    )
    return report


# -- output -------------------------------------------------------------------------

COLUMNS = ("benchmark", "variant", "result", "ratio", "quartiles", "against")
RIGHT_ALIGNED = {"result", "ratio"}
NOTE_WIDTH = 100


def environment() -> dict[str, Any]:
    affinity = getattr(os, "sched_getaffinity", None)
    return {
        "python": platform.python_version(),
        "implementation": platform.python_implementation(),
        "requests": version("requests"),
        "urllib3": version("urllib3"),
        "cave_requests_auth": version("cave-requests-auth"),
        "cpus": os.cpu_count(),
        "usable_cpus": len(affinity(0)) if affinity else os.cpu_count(),
        "platform": platform.platform(),
    }


def environment_line(env: Mapping[str, Any]) -> str:
    return (
        f"{env['implementation']} {env['python']}, requests {env['requests']}, "
        f"urllib3 {env['urllib3']}, cave-requests-auth {env['cave_requests_auth']}; "
        f"{env['cpus']} CPUs ({env['usable_cpus']} usable); {env['platform']}"
    )


def cells(line: Row) -> tuple[str, ...]:
    ratio = "" if line.ratio is None else f"{line.ratio:.2f}"
    quartiles = "" if line.quartiles is None else "{:.2f}–{:.2f}".format(*line.quartiles)
    return (line.benchmark, line.variant, line.shown, ratio, quartiles, line.against)


def table(rows: Sequence[Row], rst: bool) -> list[str]:
    """The rows as aligned text, or as an RST simple table."""
    body = [cells(line) for line in rows]
    if not rst:  # name each benchmark once
        body = [("" if i and b[0] == body[i - 1][0] else b[0], *b[1:]) for i, b in enumerate(body)]
    widths = [max(len(r[i]) for r in [COLUMNS, *body]) for i in range(len(COLUMNS))]

    def format_line(values: Sequence[str]) -> str:
        padded = (
            value.rjust(width) if name in RIGHT_ALIGNED else value.ljust(width)
            for name, value, width in zip(COLUMNS, values, widths)
        )
        return "  ".join(padded).rstrip()

    rule = "  ".join(("=" if rst else "-") * width for width in widths)
    header = [rule, format_line(COLUMNS), rule] if rst else [format_line(COLUMNS), rule]
    return [*header, *map(format_line, body), *([rule] if rst else [])]


def render_text(report: Report, env: Mapping[str, Any], rst: bool) -> str:
    bullet = "- " if rst else "* "
    lines = [environment_line(env), "", *table(report.rows, rst), ""]
    for note in report.notes:
        lines += textwrap.wrap(note, NOTE_WIDTH, initial_indent=bullet, subsequent_indent="  ")
    return "\n".join(lines)


def render_json(report: Report, env: Mapping[str, Any], mode: str, seconds: float) -> str:
    document = {
        "mode": mode,
        "seconds": round(seconds, 1),
        "environment": env,
        "rows": [asdict(line) for line in report.rows],
        "notes": report.notes,
    }
    return json.dumps(document, indent=2, ensure_ascii=False)


# -- main ---------------------------------------------------------------------------

BENCHMARKS = (
    bench_per_call,
    bench_file_system,
    bench_import,
    bench_end_to_end,
    bench_other_clients,
    bench_threads,
)


def run_all(sizes: Sizes) -> Report:
    report = Report()
    with secrets_dir() as folder:
        for benchmark in BENCHMARKS:
            start = time.perf_counter()
            report.extend(benchmark(folder, sizes))
            progress(f"  {time.perf_counter() - start:.1f} s")
    return report


def parse_args(argv: Sequence[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        description="Benchmarks of cave-requests-auth: one table of ratios, measured in one run.",
    )
    parser.add_argument("--quick", action="store_true", help="tiny counts, a few seconds (CI)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--rst", action="store_true", help="print an RST simple table")
    output.add_argument("--json", action="store_true", help="print JSON")
    parser.add_argument("--audit-probe", nargs=2, metavar=("DIR", "CALLS"), help=argparse.SUPPRESS)
    return parser.parse_args(argv)


def main(argv: Sequence[str] | None = None) -> int:
    args = parse_args(argv)
    if args.audit_probe:  # the child process of the file-system benchmark
        folder, calls = args.audit_probe
        print(json.dumps(audit_probe(folder, int(calls))))
        return 0
    mode = "quick" if args.quick else "full"
    start = time.perf_counter()
    report = run_all(QUICK if args.quick else FULL)
    seconds = time.perf_counter() - start
    env = environment()
    if args.json:
        print(render_json(report, env, mode, seconds))
    else:
        report.notes.append(f"run: {mode} mode, {seconds:.0f} s.")
        print(render_text(report, env, rst=args.rst))
    return 0


if __name__ == "__main__":
    sys.exit(main())
