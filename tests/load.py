"""Load test: concurrent browser visitors on every page of a local latent-lab server.

`python -m tests.load [--visitors 10] [--seconds 60]` starts `streamlit run app.py` on a free
loopback port, opens one headless Chromium with one browser context (its own cookies and websocket,
so its own Streamlit session) per visitor, and has every visitor open the pages by URL in a loop.
A page counts as done when its title and the sidebar pickers are drawn, the script run is over
(the same condition as tests/test_browser.py, read from the app's own run-state attribute) and that
has held for a short quiet period; its time runs from `goto` to the moment it was first done.

`--client ws` drops the browser: each visit sends the websocket message a browser sends on a page
load and times the server's answer up to the end of the script run. Headless Chromium needs well
over a core-second per Streamlit page load, so on a small machine the browsers, not the server, set
the pace; this mode measures the server alone.

Server memory (VmRSS of its process tree) is read before the visitors (after a one-visitor pass that
fills the caches, unless --no-warmup), at its peak during the load, and --settle seconds after the
visitors left. It prints a table, then one JSON line. Exit status 0 when no page failed (no error
on the page, no timeout, no lost websocket, no traceback in the server's output), 1 otherwise.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

from vae_core import appserver

ROOT = Path(__file__).resolve().parent.parent
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-quic",
    "--no-first-run",
    "--disable-component-update",
    "--disable-sync",
]
PAGES = {  # name -> path; the model is added as ?model=
    "home": "/",
    "latent-raw": "/latent?projection=raw",
    "latent-pca": "/latent?projection=pca",
    "latent-tsne": "/latent?projection=tsne",
    "latent-umap": "/latent?projection=umap",
    "samples": "/samples",
    "interpolate": "/interpolate",
    "train": "/train",
    "compare": "/compare",
    "digit": "/digit",
    "dimensions": "/dimensions",
}
DEFAULT_MODELS = "mnist-vae-z2,mnist-vae-z20"
STARTUP_S = 90  # streamlit's first import of its dependencies on a cold disk
QUIET_MS = 300  # "done" must hold this long: a rerun right after the first run is not done
SAMPLE_S = 0.5  # memory and CPU sampling period
MAX_LOADS_PER_VISITOR = 10_000  # a bound on every loop, whatever the clock does
CLK_TCK = os.sysconf("SC_CLK_TCK")

# Done: the run is over and drawn (title, both sidebar pickers, no status widget), or it failed.
DONE_JS = """(quietMs) => {
  const q = (s) => document.querySelector(s);
  const app = q('[data-testid="stApp"]');
  const idle = app && app.getAttribute('data-test-script-state') === 'notRunning'
    && app.getAttribute('data-test-connection-state') === 'CONNECTED';
  const drawn = q('h1') && !q('[data-testid="stStatusWidget"]')
    && document.querySelectorAll('[data-testid="stSidebar"] [data-testid="stSelectbox"]').length >= 2;
  const failed = q('[data-testid="stException"]') || q('[data-testid="stAlertContentError"]');
  const lost = [...document.querySelectorAll('[role="dialog"]')]
    .some((d) => d.textContent.includes('Connection error'));
  if (!((idle && (drawn || failed)) || lost)) { window.__loadDoneSince = null; return false; }
  const now = performance.now();
  if (window.__loadDoneSince == null) window.__loadDoneSince = now;
  return now - window.__loadDoneSince >= quietMs ? performance.timeOrigin + window.__loadDoneSince : false;
}"""
PROBLEMS_JS = """() => ({
  exceptions: document.querySelectorAll('[data-testid="stException"]').length,
  errors: [...document.querySelectorAll('[data-testid="stAlertContentError"]')].map((e) => e.textContent.slice(0, 160)),
  connection: document.querySelector('[data-testid="stApp"]')?.getAttribute('data-test-connection-state') ?? null,
  lost: [...document.querySelectorAll('[role="dialog"]')].some((d) => d.textContent.includes('Connection error')),
})"""


@dataclass
class Load:
    page: str
    model: str
    visitor: int
    seconds: float | None  # None when the page never got done
    error: str = ""


@dataclass
class Usage:
    """Server memory and CPU of the server, Chromium and the Playwright driver, sampled from /proc."""

    server_pid: int
    rss_mb: list[tuple[float, float]] = field(default_factory=list)  # (monotonic time, MB)
    ticks: dict[int, tuple[str, int, int]] = field(default_factory=dict)  # pid -> (group, first, last)
    machine: list[tuple[int, int]] = field(default_factory=list)  # (busy, total) jiffies of /proc/stat

    def sample(self, cpu: bool = False) -> float:
        procs = _proc_table()
        server = _tree(procs, self.server_pid)
        rss = sum(_rss_kb(pid) for pid in server) / 1024
        self.rss_mb.append((time.monotonic(), rss))
        if cpu:
            self._sample_cpu(procs, server)
        return rss

    def _sample_cpu(self, procs: dict, server: set[int]) -> None:
        ours = _tree(procs, os.getpid()) - server  # this runner, Playwright's driver, Chromium
        for pid in server | ours:
            name, _, ticks = procs[pid]
            group = "server" if pid in server else "chromium" if name.startswith("chrom") else "driver"
            first = self.ticks.get(pid, (group, ticks, ticks))[1]
            self.ticks[pid] = (group, first, ticks)
        self.machine.append(_machine_jiffies())

    def cores(self, wall_s: float) -> dict[str, float]:
        """Mean cores used per group over wall_s (processes that ended lose at most one period)."""
        used: dict[str, float] = {"server": 0.0, "chromium": 0.0, "driver": 0.0}
        for group, first, last in self.ticks.values():
            used[group] += (last - first) / CLK_TCK / wall_s
        if len(self.machine) >= 2:
            (b0, t0), (b1, t1) = self.machine[0], self.machine[-1]
            used["machine_busy"] = (b1 - b0) / max(1, t1 - t0) * (os.cpu_count() or 1)
            used["other"] = max(0.0, used["machine_busy"] - used["server"] - used["chromium"] - used["driver"])
        used["cpus"] = float(os.cpu_count() or 1)
        return {k: round(v, 2) for k, v in used.items()}


def _proc_table() -> dict[int, tuple[str, int, int]]:
    """pid -> (command name, parent pid, utime + stime in clock ticks), for every process."""
    table = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            raw = Path(entry.path, "stat").read_text()
        except OSError:
            continue  # ended meanwhile
        name, rest = raw[raw.index("(") + 1 : raw.rindex(")")], raw[raw.rindex(")") + 2 :].split()
        table[int(entry.name)] = (name, int(rest[1]), int(rest[11]) + int(rest[12]))
    return table


def _tree(procs: dict[int, tuple[str, int, int]], root: int) -> set[int]:
    found, todo = set(), [root]
    while todo:
        pid = todo.pop()
        if pid in procs and pid not in found:
            found.add(pid)
            todo.extend(child for child, (_, ppid, _) in procs.items() if ppid == pid)
    return found


def _rss_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        pass
    return 0


def _machine_jiffies() -> tuple[int, int]:
    values = [int(v) for v in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    idle = values[3] + values[4]  # idle + iowait
    return sum(values) - idle, sum(values)


def page_url(base: str, page: str, model: str) -> str:
    path = PAGES[page]
    return f"{base}{path}{'&' if '?' in path else '?'}model={model}"


class Visitor:
    """Opens the pages in a loop, each visitor from its own starting page; subclasses open one page."""

    def __init__(self, number: int, base: str, models: list[str], timeout_s: float) -> None:
        self.number, self.base, self.models, self.timeout_s = number, base, models, timeout_s
        self.js_errors = 0

    async def open(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def run(self, stop_at: float, min_rounds: int, loads: list[Load]) -> None:
        """Until stop_at, and at least min_rounds times over every page."""
        names = list(PAGES)
        for k in range(MAX_LOADS_PER_VISITOR):
            rounds_done = k // len(names)
            if time.monotonic() >= stop_at and rounds_done >= min_rounds:
                return
            page = names[(k + self.number) % len(names)]
            loads.append(await self.load(page, self.models[(rounds_done + self.number) % len(self.models)]))

    async def load(self, page: str, model: str) -> Load:
        raise NotImplementedError


class BrowserVisitor(Visitor):
    """One browser context, so one cookie jar and one websocket: a separate Streamlit session."""

    def __init__(self, number: int, browser, base: str, models: list[str], timeout_s: float) -> None:
        super().__init__(number, base, models, timeout_s)
        self.browser, self.context, self.page = browser, None, None
        self.load_id, self.closed_ws = 0, set()

    async def open(self) -> None:
        self.context = await self.browser.new_context(viewport={"width": 1400, "height": 1000})
        self.page = await self.context.new_page()
        self.page.on("websocket", self._watch)
        self.page.on("pageerror", self._count_js_error)

    async def close(self) -> None:
        await self.context.close()

    def _watch(self, ws) -> None:
        load_id = self.load_id  # a socket belongs to the page load that opened it
        ws.on("close", lambda *_: self.closed_ws.add(load_id))

    def _count_js_error(self, *_) -> None:
        self.js_errors += 1

    async def load(self, page: str, model: str) -> Load:
        from playwright.async_api import Error as PlaywrightError

        self.load_id += 1
        start = time.time()
        try:
            await self.page.goto(page_url(self.base, page, model), wait_until="commit", timeout=self.timeout_s * 1e3)
            left_ms = max(1.0, self.timeout_s - (time.time() - start)) * 1e3
            done = await self.page.wait_for_function(DONE_JS, arg=QUIET_MS, polling=50, timeout=left_ms)
            seconds = await done.json_value() / 1e3 - start
            problems = await self.page.evaluate(PROBLEMS_JS)
        except PlaywrightError as exc:
            reason = f"timeout after {self.timeout_s:g} s" if "Timeout" in str(exc) else str(exc).splitlines()[0]
            return Load(page, model, self.number, None, reason)
        return Load(page, model, self.number, seconds, self._problem(problems))

    def _problem(self, found: dict) -> str:
        if found["exceptions"]:
            return f"{found['exceptions']} exception(s) on the page"
        if found["errors"]:
            return "error alert: " + " | ".join(found["errors"])
        if found["lost"] or found["connection"] != "CONNECTED" or self.load_id in self.closed_ws:
            return f"websocket disconnected (connection state {found['connection']})"
        return ""


class SocketVisitor(Visitor):
    """No browser: the websocket messages a browser exchanges on a page load, timed from connect to the
    end of the script run. What is left is the server's share of a page load (no rendering, no media)."""

    async def load(self, page: str, model: str) -> Load:
        import websockets
        from streamlit.proto.BackMsg_pb2 import BackMsg

        path, _, query = page_url("", page, model).partition("?")
        msg = BackMsg()
        msg.rerun_script.query_string = query
        msg.rerun_script.page_name = path.strip("/")  # what the frontend sends on a first load
        msg.rerun_script.widget_states.SetInParent()
        msg.rerun_script.context_info.url = self.base + path
        start = time.time()
        try:
            async with asyncio.timeout(self.timeout_s):
                ws_url = self.base.replace("http", "ws", 1) + "/_stcore/stream"
                async with websockets.connect(ws_url, subprotocols=["streamlit"], max_size=None) as ws:
                    await ws.send(msg.SerializeToString())
                    problem = await self._until_finished(ws)
        except TimeoutError:
            return Load(page, model, self.number, None, f"timeout after {self.timeout_s:g} s")
        except (OSError, websockets.WebSocketException) as exc:
            return Load(page, model, self.number, None, f"websocket disconnected: {exc}")
        return Load(page, model, self.number, time.time() - start, problem)

    @staticmethod
    async def _until_finished(ws) -> str:
        """Read the run's messages until it ends; the first problem seen, or "" ."""
        from streamlit.proto.Alert_pb2 import Alert
        from streamlit.proto.ForwardMsg_pb2 import ForwardMsg

        problems, titled = [], False
        async for frame in ws:
            msg = ForwardMsg.FromString(frame)
            kind = msg.WhichOneof("type")
            if kind == "delta" and msg.delta.WhichOneof("type") == "new_element":
                element = msg.delta.new_element
                titled |= element.WhichOneof("type") == "heading" and element.heading.tag == "h1"
                if element.WhichOneof("type") == "exception":
                    problems.append(f"exception: {element.exception.type} {element.exception.message[:160]}")
                if element.WhichOneof("type") == "alert" and element.alert.format == Alert.ERROR:
                    problems.append(f"error alert: {element.alert.body[:160]}")
            if kind == "script_finished" and msg.script_finished != ForwardMsg.FINISHED_EARLY_FOR_RERUN:
                if msg.script_finished == ForwardMsg.FINISHED_WITH_COMPILE_ERROR:
                    problems.append("script compile error")
                problems += [] if titled else ["no page title drawn"]
                return problems[0] if problems else ""
        return "websocket closed before the run finished"


def percentile(values: list[float], q: float) -> float | None:
    """Linear interpolation between closest ranks, as numpy's default."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q
    lo = int(pos)
    hi = min(lo + 1, len(ordered) - 1)
    return ordered[lo] + (ordered[hi] - ordered[lo]) * (pos - lo)


def summarize(loads: list[Load]) -> dict:
    times = [x.seconds for x in loads if x.seconds is not None]
    return {
        "loads": len(loads),
        "errors": sum(bool(x.error) for x in loads),
        "p50_s": _round(percentile(times, 0.50)),
        "p95_s": _round(percentile(times, 0.95)),
        "max_s": _round(max(times, default=None)),
    }


def _round(x: float | None) -> float | None:
    return None if x is None else round(x, 3)


async def _sampler(usage: Usage, stop: asyncio.Event, cpu: bool) -> None:
    while not stop.is_set():
        usage.sample(cpu=cpu)
        try:
            await asyncio.wait_for(stop.wait(), SAMPLE_S)
        except TimeoutError:
            pass


async def settle(usage: Usage, seconds: float) -> float:
    """Sample memory for `seconds`; the last sample is the settled value."""
    end = time.monotonic() + seconds
    while time.monotonic() < end:
        usage.sample()
        await asyncio.sleep(min(SAMPLE_S, max(0.0, end - time.monotonic())))
    return usage.sample()


async def warm_up(make_visitor, models: list[str], usage: Usage) -> list[tuple[Load, float]]:
    """One visitor opens every page of every model once, filling the server's shared caches.

    Returns each load with the server's memory right after it: what each page adds."""
    visitor = make_visitor(0)
    await visitor.open()
    loads = []
    for model in models:
        for page in PAGES:
            loads.append((await visitor.load(page, model), usage.sample()))
    await visitor.close()
    return loads


async def load_phase(make_visitor, args: argparse.Namespace, usage: Usage) -> tuple[list[Load], dict, int]:
    """All visitors at once until --seconds (and --min-rounds); returns their loads, CPU use, JS errors."""
    visitors = [make_visitor(i) for i in range(args.visitors)]
    for v in visitors:
        await v.open()
    loads: list[Load] = []
    stop = asyncio.Event()
    sampler = asyncio.create_task(_sampler(usage, stop, cpu=True))
    t0 = time.monotonic()
    tasks = [asyncio.create_task(v.run(t0 + args.seconds, args.min_rounds, loads)) for v in visitors]
    deadline = args.seconds + args.page_timeout * (1 + len(PAGES) * args.min_rounds)
    _, pending = await asyncio.wait(tasks, timeout=deadline)
    for task in pending:  # the hard deadline: should not happen, since every load has a timeout
        task.cancel()
        loads.append(Load("(deadline)", "", -1, None, "visitor still busy at the hard deadline"))
    usage.sample(cpu=True)  # before the contexts close and their renderer processes end
    stop.set()
    await sampler
    cores = usage.cores(time.monotonic() - t0)
    for v in visitors:
        await v.close()
    return loads, cores, sum(v.js_errors for v in visitors)


async def run(args: argparse.Namespace, base: str, usage: Usage) -> dict:
    from contextlib import AsyncExitStack

    report: dict = {"memory_mb": {"start": round(usage.sample(), 1)}}
    async with AsyncExitStack() as stack:
        if args.client == "browser":
            from playwright.async_api import async_playwright

            pw = await stack.enter_async_context(async_playwright())
            browser = await pw.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            stack.push_async_callback(browser.close)

            def make_visitor(i: int) -> Visitor:
                return BrowserVisitor(i, browser, base, args.models, args.page_timeout)
        else:

            def make_visitor(i: int) -> Visitor:
                return SocketVisitor(i, base, args.models, args.page_timeout)

        warm = await warm_up(make_visitor, args.models, usage) if args.warmup else []
        baseline = await settle(usage, args.settle) if args.warmup else usage.sample()
        start_of_peak = len(usage.rss_mb)
        loads, cores, js_errors = await load_phase(make_visitor, args, usage)
        peak = max(mb for _, mb in usage.rss_mb[start_of_peak:])
        settle_from = len(usage.rss_mb)
        after = await settle(usage, args.settle)
        curve = usage.rss_mb[settle_from::10]  # every ~5 s: is memory still falling?
    report["memory_mb"].update(baseline=round(baseline, 1), peak=round(peak, 1), after=round(after, 1))
    report["settle_curve_mb"] = [round(mb) for _, mb in curve]
    report.update(warm=warm, loads=loads, cpu_cores=cores, js_errors=js_errors)
    return report


def server_tracebacks(log_text: str) -> list[str]:
    """Each traceback in the server's output, as its last frame and the exception line."""
    found, lines = [], log_text.splitlines()
    for i, line in enumerate(lines):
        if line.startswith("Traceback"):
            j = i + 1
            while j < len(lines) and lines[j][:1] in (" ", "\t", ""):
                j += 1
            frames = [x.strip() for x in lines[i + 1 : j] if x.strip().startswith("File ")]
            found.append(" | ".join([*frames[-1:], lines[j] if j < len(lines) else "?"]))
    return found


def build_result(args: argparse.Namespace, report: dict, tracebacks: list[str]) -> dict:
    loads: list[Load] = report["loads"]
    overall = summarize(loads)
    warm = [x for x, _ in report["warm"]]
    failures = [asdict(x) for x in warm + loads if x.error]  # a cold page failing counts too
    failures += [{"page": "(server log)", "error": t} for t in tracebacks]
    p95 = overall["p95_s"]
    return {
        "visitors": args.visitors,
        "seconds": args.seconds,
        "models": args.models,
        "pages": list(PAGES),
        "page_loads": overall["loads"],
        "errors": len(failures),
        "error_samples": failures[:10],
        "p50_s": overall["p50_s"],
        "p95_s": p95,
        "overall": overall,
        "per_page": {name: summarize([x for x in loads if x.page == name]) for name in PAGES},
        "client": args.client,
        "warmup": {f"{x.page}@{x.model}": {"s": _round(x.seconds), "rss_mb": round(mb)} for x, mb in report["warm"]},
        "memory_mb": report["memory_mb"],
        "settle_curve_mb": report["settle_curve_mb"],
        "cpu_cores": report["cpu_cores"],
        "js_errors": report["js_errors"],
        "target_p95_s": args.target_p95,
        "p95_pass": p95 is not None and p95 <= args.target_p95,
        "strict": args.strict,
    }


def print_table(result: dict) -> None:
    print(f"{'page':<14}{'loads':>7}{'errors':>8}{'p50 s':>8}{'p95 s':>8}{'max s':>8}")
    for name, s in [*result["per_page"].items(), ("all", result["overall"])]:
        cells = "".join(f"{'-' if s[k] is None else f'{s[k]:.2f}':>8}" for k in ("p50_s", "p95_s", "max_s"))
        print(f"{name:<14}{s['loads']:>7}{s['errors']:>8}{cells}")
    mem, cpu = result["memory_mb"], result["cpu_cores"]
    print("server RSS MB: " + ", ".join(f"{k} {v:.0f}" for k, v in mem.items()))
    print("server RSS MB every ~5 s after the visitors left: " + " ".join(map(str, result["settle_curve_mb"])))
    print("CPU cores used during the load: " + ", ".join(f"{k} {v:.2f}" for k, v in cpu.items()))
    verdict = "pass" if result["p95_pass"] else "FAIL"
    print(f"p95 {result['p95_s']} s against target {result['target_p95_s']} s: {verdict}")
    for failure in result["error_samples"]:
        print(
            f"error: {failure.get('page')} {failure.get('model', '')} visitor {failure.get('visitor', '')}: "
            f"{failure['error']}"
        )


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m tests.load", description=__doc__.split("\n")[0])
    p.add_argument("--visitors", type=int, default=10, help="concurrent visitors, each its own session (default 10)")
    p.add_argument("--seconds", type=float, default=60, help="how long visitors keep opening pages (default 60)")
    p.add_argument("--settle", type=float, default=20, help="seconds to wait before reading memory after (default 20)")
    p.add_argument(
        "--models",
        type=lambda s: s.split(","),
        default=DEFAULT_MODELS.split(","),
        help=f"bundled models, comma-separated, alternated per round (default {DEFAULT_MODELS})",
    )
    p.add_argument("--page-timeout", type=float, default=60, help="seconds before a page load counts as failed")
    p.add_argument("--min-rounds", type=int, default=0, help="every visitor opens every page at least this often")
    p.add_argument(
        "--no-warmup",
        dest="warmup",
        action="store_false",
        help="skip the single-visitor pass that fills the caches (baseline is then the bare server)",
    )
    p.add_argument("--target-p95", type=float, default=3.0, help="p95 page time target in seconds (default 3.0)")
    p.add_argument(
        "--client",
        choices=["browser", "ws"],
        default="browser",
        help="browser: headless Chromium (default); ws: the page's websocket messages only, no browser",
    )
    p.add_argument("--server-log", type=Path, help="also write the server's output to this file")
    p.add_argument("--strict", action="store_true", help="also exit 1 when the p95 target is missed")
    args = p.parse_args(argv)
    missing = [m for m in args.models if not (ROOT / "models" / f"{m}.safetensors").is_file()]
    if missing or args.visitors < 1:
        p.error(f"unknown bundled model(s): {', '.join(missing)}" if missing else "--visitors must be at least 1")
    return args


def hard_deadline_s(args: argparse.Namespace) -> float:
    warm = len(PAGES) * len(args.models) * args.page_timeout if args.warmup else 0
    return 60 + warm + 2 * args.settle + args.seconds + args.page_timeout * (2 + len(PAGES) * args.min_rounds)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.client == "browser" and not os.path.exists(CHROMIUM):
        print(f"{CHROMIUM} is missing (apt-get install chromium)", file=sys.stderr)
        return 1
    with tempfile.TemporaryDirectory(prefix="latent-lab-load-") as tmp:
        log_path = Path(tmp) / "streamlit.log"
        proc, base = appserver.start(log_path)
        try:
            appserver.wait_healthy(base, proc, STARTUP_S)
            report = asyncio.run(asyncio.wait_for(run(args, base, Usage(proc.pid)), hard_deadline_s(args)))
        except (RuntimeError, TimeoutError) as exc:
            print(f"load test aborted: {exc}\n--- server log tail ---\n{log_path.read_text()[-3000:]}", file=sys.stderr)
            return 1
        finally:
            appserver.stop(proc)
        log_text = log_path.read_text(errors="replace")
        if args.server_log:
            args.server_log.write_text(log_text)
        result = build_result(args, report, server_tracebacks(log_text))
    print_table(result)
    failed = result["errors"] > 0 or result["page_loads"] == 0
    if failed:
        print(f"FAILED: {result['errors']} error(s) in {result['page_loads']} page loads", file=sys.stderr)
    elif args.strict and not result["p95_pass"]:
        print(f"FAILED (--strict): p95 {result['p95_s']} s > target {args.target_p95} s", file=sys.stderr)
        failed = True
    print(json.dumps(result))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
