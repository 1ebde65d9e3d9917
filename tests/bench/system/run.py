#!/usr/bin/env python3
"""Cascade's system benchmarks: figures 4, 5, 6 and 7 of issue 7, each against
its baseline (or its goal) in the same run (see tests/bench/README.md).

  4a summary read in-process: ReleaseSummaryProjection::summary(id) vs a raw
     RocksDB Get of the same value from the same database (p50/p99).
  4b GET /api/v1/releases/{id} from `cascade serve` vs nginx serving the same
     JSON bytes as static files, under wrk (same threads, connections, time).
  5  trigger latency: a structured CDEvent published (one connected, idempotent
     producer; acks=all) to librdkafka's mock cluster (3 brokers) →
     StageTriggered(dev) durable (its recorded_at),
     p50/p99 over 100 builds, one at a time.
  6  scale: a data directory of 100,000 releases / 1,000,000 events: restart
     to /readyz 200, resident memory while serving, the releases-list page p99
     (first page and a page deep in the list), appends/s on it vs an empty store.
  7  PostgreSQL message-db-style append at 64 writers (pgbench) vs Cascade's
     synced EventLog::append at 64 writers.

Usage: tests/bench/system/run.py [--build DIR] [--quick] [--figures 4,5,6,7]
Prints one line per figure (figure, Cascade, baseline, ratio, goal, met, note)
and writes BUILD/bench-system.json. Needs nginx, wrk and PostgreSQL (tools/dev
bench installs them). Only the standard library. Never sleeps for correctness:
every wait polls for a condition with a deadline.
"""

import argparse
import datetime
import glob
import http.client
import json
import os
import pwd
import queue
import random
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.abspath(os.path.join(HERE, "..", "..", ".."))
sys.path.insert(0, os.path.join(ROOT, "tools"))
import bench_report  # noqa: E402  (tools/bench_report.py, figures 1–3's table)


class BenchError(Exception):
    pass


def log(message):
    print(f"[bench-system] {message}", file=sys.stderr, flush=True)


def wait_until(predicate, timeout_s, what, interval_s=0.01):
    """Polls predicate() until it returns a true value or timeout_s passes."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise BenchError(f"timed out after {timeout_s:g} s waiting for {what}")
        time.sleep(interval_s)


def run_json(command, timeout_s):
    """Runs a command that prints one JSON object on its last stdout line."""
    done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s)
    if done.returncode != 0:
        raise BenchError(f"{' '.join(command)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def free_port():
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def service_user(name):
    """(uid, gid) to run a server as when this script runs as root; None otherwise."""
    if os.geteuid() != 0:
        return None
    try:
        entry = pwd.getpwnam(name)
    except KeyError:
        raise BenchError(f"running as root and there is no '{name}' user to run the server as")
    return entry.pw_uid, entry.pw_gid


def step_user_args():
    """As root, serve refuses to run steps as root: they run as tools/dev's cascade-step."""
    return ["--step-user", "cascade-step"] if os.geteuid() == 0 else []


def chown_tree(path, owner):
    if owner is None:
        return
    for directory, dirs, files in os.walk(path):
        os.chown(directory, *owner)
        for name in files:
            os.chown(os.path.join(directory, name), *owner)


# ---- the table ---------------------------------------------------------------------


class Report:
    def __init__(self):
        self.rows = []

    def add(self, figure, cascade, baseline, ratio, goal, met, note="", values=None):
        self.rows.append({"figure": figure, "cascade": cascade, "baseline": baseline,
                          "ratio": ratio, "goal": goal, "met": met, "note": note, "values": values or {}})

    def print_table(self):
        header = ("figure", "Cascade", "baseline", "ratio", "goal", "met", "note")
        lines = [(r["figure"], r["cascade"], r["baseline"], "-" if r["ratio"] is None else f"{r['ratio']:.2f}",
                  r["goal"], "yes" if r["met"] else "NO", r["note"]) for r in self.rows]
        widths = [max(len(str(row[i])) for row in lines + [header]) for i in range(len(header))]
        fmt = lambda row: "  ".join(str(v).ljust(w) for v, w in zip(row, widths)).rstrip()
        print(fmt(header))
        print("  ".join("-" * w for w in widths))
        for row in lines:
            print(fmt(row))
        sys.stdout.flush()


# Rates print as in figures 1–3's table.
human_rate = bench_report.human


def human_ms(value):
    return "-" if value is None else (f"{value:.2f} ms" if value < 10 else f"{value:.1f} ms")


def human_us(value):
    return "-" if value is None else f"{value:.1f} µs"


# ---- wrk -----------------------------------------------------------------------------


def parse_duration_ms(number, unit):
    return float(number) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


def run_wrk(url, options, ids_file=None, token=None, duration_s=None):
    """wrk --latency against url; returns requests/s and latency percentiles (ms)."""
    env = dict(os.environ)
    env["CASCADE_TOKEN"] = token or ""
    env["WRK_IDS_FILE"] = ids_file or ""
    command = ["wrk", "-t", str(options.threads), "-c", str(options.connections),
               "-d", f"{duration_s or options.duration}s", "--latency",
               "-s", os.path.join(HERE, "wrk_requests.lua"), url]
    done = subprocess.run(command, capture_output=True, text=True, env=env,
                          timeout=(duration_s or options.duration) + 60)
    if done.returncode != 0:
        raise BenchError(f"wrk failed: {done.stderr.strip()}")
    out = done.stdout
    rps = re.search(r"Requests/sec:\s+([\d.]+)", out)
    total = re.search(r"(\d+) requests in", out)
    if not rps or not total:
        raise BenchError(f"cannot read wrk's output:\n{out}")
    result = {"requests_per_second": float(rps.group(1)), "requests": int(total.group(1))}
    for percent in ("50", "75", "90", "99"):
        match = re.search(rf"^\s+{percent}%\s+([\d.]+)(us|ms|s|m)\s*$", out, re.M)
        result[f"p{percent}_ms"] = parse_duration_ms(*match.groups()) if match else None
    bad = re.search(r"Non-2xx or 3xx responses:\s+(\d+)", out)
    errors = re.search(r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", out)
    result["non_2xx"] = int(bad.group(1)) if bad else 0
    result["socket_errors"] = sum(int(g) for g in errors.groups()) if errors else 0
    if result["non_2xx"]:
        # An error answer is cheap: a figure made of them would flatter.
        raise BenchError(f"{url}: {result['non_2xx']} of {result['requests']} answers were not 2xx")
    return result


# ---- cascade serve -------------------------------------------------------------------


class Serve:
    """One `cascade serve` process on a free loopback port."""

    def __init__(self, cascade, data_dir, users_file, log_path, extra_args=()):
        self.cascade, self.data_dir, self.users_file, self.log_path = cascade, data_dir, users_file, log_path
        self.extra_args = list(extra_args)
        self.process = None
        self.port = None

    def start(self, timeout_s=300):
        """Starts the server; returns the seconds from spawn to /readyz 200."""
        started = time.monotonic()
        with open(self.log_path, "a") as server_log:  # the child keeps its own descriptor
            self.process = subprocess.Popen(
                [self.cascade, "serve", "--data", self.data_dir, "--listen", "127.0.0.1:0", "--users", self.users_file]
                + step_user_args() + self.extra_args,
                stdout=subprocess.PIPE, stderr=server_log, text=True)
        lines = queue.Queue()

        def pump():
            for line in self.process.stdout:
                lines.put(line)
            lines.put(None)

        threading.Thread(target=pump, daemon=True).start()
        deadline = started + timeout_s
        while self.port is None:
            try:
                line = lines.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise BenchError(f"cascade serve did not report its port within {timeout_s} s")
            if line is None:
                raise BenchError(f"cascade serve exited ({self.process.wait()}); see {self.log_path}")
            match = re.search(r"listening on http://127\.0\.0\.1:(\d+)", line)
            if match:
                self.port = int(match.group(1))
        wait_until(lambda: self.get("/api/v1/readyz")[0] == 200, max(1.0, deadline - time.monotonic()),
                   "cascade serve's /readyz to answer 200", interval_s=0.005)
        return time.monotonic() - started

    def get(self, path, token=None):
        """(status, body bytes); status 0 when the connection fails."""
        try:
            connection = http.client.HTTPConnection("127.0.0.1", self.port, timeout=10)
            headers = {"Authorization": f"Bearer {token}"} if token else {}
            connection.request("GET", path, headers=headers)
            response = connection.getresponse()
            body = response.read()
            connection.close()
            return response.status, body
        except OSError:
            return 0, b""

    def memory_kib(self):
        """VmRSS and VmHWM of the server, in KiB."""
        values = {}
        with open(f"/proc/{self.process.pid}/status") as status:
            for line in status:
                name, _, rest = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    values[name] = int(rest.split()[0])
        return values

    def stop(self):
        if self.process is None or self.process.poll() is not None:
            return
        self.process.send_signal(signal.SIGTERM)
        try:
            self.process.wait(timeout=60)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise BenchError("cascade serve did not stop within 60 s of SIGTERM")
        finally:
            self.port = None


def viewer_token(cascade, users_file):
    done = subprocess.run([cascade, "users", "add", "bench", "--role", "viewer", "--users", users_file, "--json"],
                          capture_output=True, text=True, timeout=60)
    if done.returncode != 0:
        raise BenchError(f"cascade users add failed: {done.stderr.strip()}")
    return json.loads(done.stdout)["token"]


# ---- the data set ----------------------------------------------------------------------


def scale_data(options, tool):
    """The cached data directory of options.releases releases (generated on first use)."""
    version = subprocess.run([tool, "version"], capture_output=True, text=True, check=True).stdout.strip()
    cache_root = os.path.join(options.build, "bench-data")
    name = f"scale-v{version}-r{options.releases}"
    cache = os.path.join(cache_root, name)
    marker = os.path.join(cache, "generated.json")
    if os.path.exists(marker):
        with open(marker) as f:
            report = json.load(f)
        log(f"data set: {cache} (cached: {report['releases']} releases, {report['events']} events)")
        return os.path.join(cache, "data"), report
    # Data sets of older generator versions are never read again.
    for stale in glob.glob(os.path.join(cache_root, "scale-v*")):
        if not os.path.basename(stale).startswith(f"scale-v{version}-"):
            shutil.rmtree(stale, ignore_errors=True)
    shutil.rmtree(cache, ignore_errors=True)
    os.makedirs(cache)
    log(f"data set: generating {options.releases} releases into {cache} (once; cached for later runs)")
    report = run_json([tool, "generate", "--data", os.path.join(cache, "data"), "--releases", str(options.releases)],
                      timeout_s=4 * 3600)
    log(f"data set: {report['events']} events; appended in {report['append_seconds']:.1f} s, "
        f"projections and reactors caught up in {report['catch_up_seconds']:.1f} s, "
        f"{report['store_bytes'] / 2**20:.0f} MiB")
    with open(marker, "w") as f:  # written last: a half-made cache is regenerated
        json.dump(report, f)
    return os.path.join(cache, "data"), report


def release_id(index, pipelines=20):
    """The id of the generator's release `index` (see tests/bench/system/scale_data.hpp)."""
    return f"Scale-{index % pipelines:02d}-{index // pipelines + 1}"


# ---- figure 4 ----------------------------------------------------------------------------


def figure_4a(options, report, tool, data_dir):
    log("figure 4a: summary query vs raw Get")
    result = run_json([tool, "summary-read", "--data", data_dir, "--samples", str(options.samples)], timeout_s=1800)
    summary, raw = result["summary"], result["raw_get"]
    ratio = summary["p99_us"] / raw["p99_us"] if raw["p99_us"] else None
    report.add("4a summary read p99 (in-process)", human_us(summary["p99_us"]), human_us(raw["p99_us"]) + " raw Get",
               ratio, "<= 2.0x raw p99", ratio is not None and ratio <= 2.0,
               f"p50 {summary['p50_us']:.1f} vs {raw['p50_us']:.1f} µs; {result['releases']} releases, "
               f"{summary['samples']} samples each", values=result)


def start_nginx(root, work, port):
    """nginx serving `root` on 127.0.0.1:port, in the foreground, from a generated config."""
    for temp in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi"):
        os.makedirs(os.path.join(work, temp), exist_ok=True)
    config = os.path.join(work, "nginx.conf")
    with open(config, "w") as f:
        f.write(f"""# generated by tests/bench/system/run.py
worker_processes 2;
daemon off;
pid {work}/nginx.pid;
error_log {work}/error.log warn;
events {{ worker_connections 1024; }}
http {{
  access_log off;
  client_body_temp_path {work}/client_body;
  proxy_temp_path {work}/proxy;
  fastcgi_temp_path {work}/fastcgi;
  uwsgi_temp_path {work}/uwsgi;
  scgi_temp_path {work}/scgi;
  default_type application/json;
  sendfile on;
  tcp_nodelay on;
  keepalive_requests 100000000;
  keepalive_timeout 300s;
  server {{
    listen 127.0.0.1:{port};
    root {root};
    location / {{ try_files $uri =404; }}
  }}
}}
""")
    owner = service_user("nobody")
    chown_tree(work, owner)
    chown_tree(root, owner)
    kwargs = {"user": owner[0], "group": owner[1], "extra_groups": []} if owner else {}
    process = subprocess.Popen(["nginx", "-p", work, "-c", config, "-e", os.path.join(work, "error.log")],
                               stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "stderr.log"), "w"),
                               cwd=work, **kwargs)
    return process


def http_status(port, path):
    try:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=5)
        connection.request("GET", path)
        status = connection.getresponse().status
        connection.close()
        return status
    except OSError:
        return 0


def figure_4b(options, report, cascade, data_dir, data_report, work):
    log("figure 4b: GET /api/v1/releases/{id}, cascade serve vs nginx")
    users = os.path.join(work, "users.json")
    token = viewer_token(cascade, users)
    serve = Serve(cascade, data_dir, users, os.path.join(work, "serve-4b.log"))
    nginx = None
    try:
        serve.start()
        # The same ids and the same bytes on both servers.
        count = min(options.ids, data_report["releases"])
        rng = random.Random(4)
        ids = [release_id(i) for i in rng.sample(range(data_report["releases"]), count)]
        static_root = os.path.join(work, "static")
        target = os.path.join(static_root, "api", "v1", "releases")
        os.makedirs(target)
        connection = http.client.HTTPConnection("127.0.0.1", serve.port, timeout=10)
        sizes = []
        for release in ids:
            connection.request("GET", f"/api/v1/releases/{release}", headers={"Authorization": f"Bearer {token}"})
            response = connection.getresponse()
            body = response.read()
            if response.status != 200:
                raise BenchError(f"GET /api/v1/releases/{release}: {response.status} {body[:200]!r}")
            sizes.append(len(body))
            with open(os.path.join(target, release), "wb") as f:
                f.write(body)
        connection.close()
        ids_file = os.path.join(work, "ids.txt")
        with open(ids_file, "w") as f:
            f.write("\n".join(ids) + "\n")
        os.chmod(work, 0o755)
        port = free_port()
        nginx = start_nginx(static_root, os.path.join(work, "nginx"), port)
        wait_until(lambda: nginx.poll() is not None or http_status(port, f"/api/v1/releases/{ids[0]}") == 200, 30,
                   "nginx to serve the summaries")
        if nginx.poll() is not None:
            raise BenchError(f"nginx exited ({nginx.returncode}); see {work}/nginx/stderr.log")

        cascade_url = f"http://127.0.0.1:{serve.port}/api/v1/releases/"
        nginx_url = f"http://127.0.0.1:{port}/api/v1/releases/"
        # A short warm-up of each, then the measured runs.
        run_wrk(cascade_url, options, ids_file, token, duration_s=2)
        run_wrk(nginx_url, options, ids_file, token, duration_s=2)
        ours = run_wrk(cascade_url, options, ids_file, token)
        theirs = run_wrk(nginx_url, options, ids_file, token)
    finally:
        if nginx is not None and nginx.poll() is None:
            nginx.send_signal(signal.SIGQUIT)  # graceful
            try:
                nginx.wait(timeout=30)
            except subprocess.TimeoutExpired:
                nginx.kill()
        serve.stop()
    ratio = ours["requests_per_second"] / theirs["requests_per_second"]
    setting = f"wrk -t{options.threads} -c{options.connections} -d{options.duration}s, {len(ids)} ids, " \
              f"~{sum(sizes) // len(sizes)} B"
    report.add("4b GET /releases/{id} req/s", human_rate(ours["requests_per_second"]),
               human_rate(theirs["requests_per_second"]) + " nginx", ratio, ">= 0.5", ratio >= 0.5, setting,
               values={"cascade": ours, "nginx": theirs})
    report.add("4b GET /releases/{id} p99", human_ms(ours["p99_ms"]), human_ms(theirs["p99_ms"]) + " nginx", None,
               "<= 2 ms", ours["p99_ms"] is not None and ours["p99_ms"] <= 2.0,
               f"p50 {human_ms(ours['p50_ms'])} vs {human_ms(theirs['p50_ms'])}")


# ---- figure 6 ----------------------------------------------------------------------------


def figure_6(options, report, cascade, tool, data_dir, data_report, work):
    log("figure 6: scale")
    note = f"{data_report['releases']} releases, {data_report['events']} events"
    # A sample of the generated releases must pass the auditor's checks.
    rng = random.Random(6)
    sample = sorted({0, data_report["releases"] - 1, *rng.sample(range(data_report["releases"]), 3)})
    for index in sample:
        done = subprocess.run([cascade, "replay", release_id(index), "--verify", "--data", data_dir],
                              capture_output=True, text=True, timeout=300)
        if done.returncode != 0:
            raise BenchError(f"cascade replay {release_id(index)} --verify: exit {done.returncode}: "
                             f"{(done.stdout + done.stderr).strip()[-1000:]}")
    log(f"figure 6: replay --verify passed for {', '.join(release_id(i) for i in sample)}")

    users = os.path.join(work, "users.json")
    token = viewer_token(cascade, users)
    serve = Serve(cascade, data_dir, users, os.path.join(work, "serve-6.log"))
    restarts = []
    samples = []
    try:
        first = serve.start()
        for _ in range(options.restarts):
            serve.stop()
            restarts.append(serve.start())
        log(f"figure 6: first start {first:.2f} s, restarts {', '.join(f'{r:.2f}' for r in restarts)} s")

        stop_sampling = threading.Event()

        def sample_memory():
            while True:
                try:
                    samples.append(serve.memory_kib())
                except OSError:
                    return
                if stop_sampling.wait(0.1):
                    return

        sampler = threading.Thread(target=sample_memory, daemon=True)
        sampler.start()
        base = f"http://127.0.0.1:{serve.port}"
        status, body = serve.get("/api/v1/releases?limit=50", token)
        if status != 200 or len(json.loads(body)["releases"]) != 50:
            raise BenchError(f"GET /api/v1/releases?limit=50: {status} {body[:200]!r}")
        # A cursor is the log position of the last item returned; one near the
        # log's start pages from deep in the list (about 95 % of it skipped).
        deep_cursor = "c%016x" % (data_report["events"] * 5 // 100)
        status, body = serve.get(f"/api/v1/releases?limit=50&cursor={deep_cursor}", token)
        if status != 200 or len(json.loads(body)["releases"]) != 50:
            raise BenchError(f"GET the deep page: {status} {body[:200]!r}")
        run_wrk(base + "/api/v1/releases?limit=50", options, None, token, duration_s=2)
        first_page = run_wrk(base + "/api/v1/releases?limit=50", options, None, token)
        deep_page = run_wrk(base + f"/api/v1/releases?limit=50&cursor={deep_cursor}", options, None, token)
        # Under load a request's latency is mostly its wait behind the others
        # (connections ÷ requests/s); one connection shows the time of one.
        alone = argparse.Namespace(threads=1, connections=1, duration=options.duration)
        first_page_alone = run_wrk(base + "/api/v1/releases?limit=50", alone, None, token)
        deep_page_alone = run_wrk(base + f"/api/v1/releases?limit=50&cursor={deep_cursor}", alone, None, token)
        stop_sampling.set()
        sampler.join()
        memory = serve.memory_kib()
    finally:
        serve.stop()

    worst_restart = max(restarts)
    report.add("6 restart to /readyz 200", f"{worst_restart:.2f} s", "-", None, "<= 2 s", worst_restart <= 2.0,
               f"worst of {len(restarts)} ({', '.join(f'{r:.2f}' for r in restarts)}); first start {first:.2f} s; "
               + note, values={"restarts": restarts, "first_start": first})
    peak_rss = max(s.get("VmRSS", 0) for s in samples) if samples else memory.get("VmRSS", 0)
    report.add("6 resident memory while serving", f"{peak_rss / 1024:.0f} MiB", "-", None, "<= 256 MiB",
               peak_rss <= 256 * 1024, f"max VmRSS under the list load; VmHWM {memory.get('VmHWM', 0) / 1024:.0f} MiB",
               values={"vmrss_max_kib": peak_rss, "vmhwm_kib": memory.get("VmHWM")})
    for label, result, single in (("first page", first_page, first_page_alone),
                                  ("deep cursor", deep_page, deep_page_alone)):
        report.add(f"6 releases list p99, {label}", human_ms(result["p99_ms"]), "-", None, "<= 5 ms",
                   result["p99_ms"] is not None and result["p99_ms"] <= 5.0,
                   f"limit=50, -c{options.connections}: {human_rate(result['requests_per_second'])}, "
                   f"p50 {human_ms(result['p50_ms'])}; one connection: p50 {human_ms(single['p50_ms'])}, "
                   f"p99 {human_ms(single['p99_ms'])}", values={"loaded": result, "one_connection": single})

    # Appends on (a hard-linked copy of) the big store vs an empty one,
    # alternating, the best of each.
    empty, big = [], []
    for round_number in range(options.append_rounds):
        for kind, into in (("empty", empty), ("big", big)):
            store = os.path.join(work, f"append-{kind}-{round_number}")
            command = [tool, "append", "--store", store, "--writers", str(options.writers),
                       "--seconds", str(options.append_seconds)]
            if kind == "big":
                command += ["--copy-of", os.path.join(data_dir, "log")]
            into.append(run_json(command, timeout_s=600))
            shutil.rmtree(store, ignore_errors=True)
    best_empty = max(r["appends_per_second"] for r in empty)
    best_big = max(r["appends_per_second"] for r in big)
    ratio = best_big / best_empty
    report.add(f"6 appends/s, big store vs empty, {options.writers} writers", human_rate(best_big),
               human_rate(best_empty) + " empty", ratio, ">= 0.9", ratio >= 0.9,
               f"best of {options.append_rounds} alternating runs of {options.append_seconds:g} s; "
               f"big store opened in {max(r['open_seconds'] for r in big):.2f} s", values={"empty": empty, "big": big})


# ---- figure 7 ----------------------------------------------------------------------------


# ---- figure 5: Kafka trigger latency ------------------------------------------------------


def figure_5(options, report, cascade, tool, work):
    """A CDEvent published to the mock Kafka cluster → StageTriggered(dev) durable."""
    broker_log = open(os.path.join(work, "dev-kafka.log"), "w")
    broker = subprocess.Popen([cascade, "dev-kafka", "--brokers", "3"], stdout=subprocess.PIPE, stderr=broker_log,
                              text=True)
    server = producer = None
    try:
        bootstrap = None
        for line in broker.stdout:
            match = re.search(r"bootstrap\.servers=(\S+)", line)
            if match:
                bootstrap = match.group(1)
                break
        if bootstrap is None:
            raise BenchError(f"cascade dev-kafka exited ({broker.wait()}) without printing its bootstrap servers")
        users_file = os.path.join(work, "users.json")
        done = subprocess.run([cascade, "users", "add", "bench-admin", "--role", "admin", "--users", users_file,
                               "--json"], capture_output=True, text=True, timeout=60)
        if done.returncode != 0:
            raise BenchError(f"cascade users add failed: {done.stderr.strip()}")
        token = json.loads(done.stdout)["token"]
        server = Serve(cascade, os.path.join(work, "data"), users_file, os.path.join(work, "serve.log"),
                       ["--kafka", bootstrap])
        server.start()
        pipeline = {"name": "Trigger", "artifact": {"source": "/ci/bench"},
                    "stages": [{"name": "dev", "trigger": {"after_release": True},
                                "steps": [{"name": "deploy", "run": "true"}]}]}
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=10)
        connection.request("PUT", "/api/v1/pipelines/Trigger", body=json.dumps(pipeline),
                           headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"})
        answer = connection.getresponse()
        if answer.status != 200:
            raise BenchError(f"PUT /api/v1/pipelines/Trigger: {answer.status} {answer.read()[:300]!r}")
        answer.read()
        # One connected producer for every record (cascade_bench_system
        # publish-lines): it prints each record's send time, then its ack.
        producer = subprocess.Popen([tool, "publish-lines", "--brokers", bootstrap, "--topic", "cascade.builds"],
                                    stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=broker_log, text=True)

        def publish(number):
            now = datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            event_id = f"bench-{os.getpid()}-{number}"
            purl = f"pkg:generic/bench@1.0.{number}"
            cdevent = {"context": {"specversion": "0.5.1", "id": event_id, "source": "/ci/bench",
                                   "type": "dev.cdevents.artifact.published.0.3.0", "timestamp": now},
                       "subject": {"id": purl, "source": "/ci/bench", "content": {}}}
            cloudevent = {"specversion": "1.0", "id": event_id, "source": "/ci/bench",
                          "type": "dev.cdevents.artifact.published.0.3.0", "subject": purl, "time": now,
                          "datacontenttype": "application/json", "data": cdevent}
            producer.stdin.write(json.dumps(cloudevent) + "\n")
            producer.stdin.flush()
            answer = producer.stdout.readline()
            if not answer:
                raise BenchError(f"the producer stopped ({producer.wait()}); see dev-kafka.log")
            return json.loads(answer)["sent_ms"]

        def triggered_at(release):
            status, body = server.get(f"/api/v1/releases/{release}/events", token)
            if status != 200:
                return None
            for event in json.loads(body)["events"]:
                if event.get("type") == "StageTriggered" and event["data"].get("stage") == "dev":
                    return event["recorded_at"]
            return None

        # The first record waits for the consumer to join its group: not measured.
        publish(0)
        wait_until(lambda: triggered_at("Trigger-1"), 60, "the first CDEvent's release", interval_s=0.01)
        samples = 20 if options.quick else 100
        latencies = []
        for number in range(1, samples + 1):
            sent_ms = publish(number)
            at = wait_until(lambda: triggered_at(f"Trigger-{number + 1}"), 30, f"release Trigger-{number + 1}",
                            interval_s=0.001)
            latencies.append(max(0.0, at - sent_ms))
        latencies.sort()
        p50 = latencies[len(latencies) // 2]
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        report.add("5 CDEvent → StageTriggered(dev)", f"p50 {p50:.1f} ms, p99 {p99:.1f} ms", "-", None,
                   "p50 ≤ 10 ms, p99 ≤ 50 ms", p50 <= 10 and p99 <= 50, f"{samples} builds, 3 mock brokers",
                   {"p50_ms": p50, "p99_ms": p99, "max_ms": latencies[-1], "samples": samples})
    finally:
        if producer is not None:
            producer.stdin.close()
            producer.wait(timeout=30)
        if server is not None:
            server.stop()
        broker.send_signal(signal.SIGTERM)
        try:
            broker.wait(timeout=30)
        except subprocess.TimeoutExpired:
            broker.kill()
        broker_log.close()


def postgres_bin():
    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/postgres"), key=lambda p: int(p.split("/")[4]))
    if not found:
        raise BenchError("PostgreSQL's server is not installed (/usr/lib/postgresql/*/bin/postgres)")
    return os.path.dirname(found[-1])


def figure_7(options, report, tool, work):
    log(f"figure 7: PostgreSQL message-db-style append vs Cascade, {options.pg_writers} writers")
    bin_dir = postgres_bin()
    owner = service_user("postgres")
    kwargs = {"user": owner[0], "group": owner[1], "extra_groups": []} if owner else {}
    pg_root = os.path.join(work, "postgres")
    pgdata, sockets = os.path.join(pg_root, "data"), os.path.join(pg_root, "sockets")
    os.makedirs(sockets)
    os.chmod(work, 0o755)
    chown_tree(pg_root, owner)
    done = subprocess.run([os.path.join(bin_dir, "initdb"), "-D", pgdata, "-U", "bench", "-A", "trust", "-E", "UTF8",
                           "--no-instructions"], capture_output=True, text=True, cwd=pg_root, timeout=300, **kwargs)
    if done.returncode != 0:
        raise BenchError(f"initdb failed: {done.stderr.strip()}")
    port = free_port()
    server = subprocess.Popen(
        [os.path.join(bin_dir, "postgres"), "-D", pgdata, "-k", sockets, "-p", str(port),
         "-c", "listen_addresses=", "-c", "fsync=on", "-c", "synchronous_commit=on", "-c", "full_page_writes=on",
         "-c", "max_connections=200", "-c", "unix_socket_permissions=0777"],
        stdout=subprocess.DEVNULL, stderr=open(os.path.join(work, "postgres.log"), "w"), cwd=pg_root, **kwargs)
    connect = ["-h", sockets, "-p", str(port), "-U", "bench"]
    try:
        wait_until(lambda: server.poll() is not None or subprocess.run(
            [os.path.join(bin_dir, "pg_isready"), "-q", *connect], cwd=work).returncode == 0, 60,
                   "PostgreSQL to accept connections", interval_s=0.05)
        if server.poll() is not None:
            raise BenchError(f"postgres exited ({server.returncode}); see {work}/postgres.log")
        psql = ["psql", "-X", "-q", "-v", "ON_ERROR_STOP=1", *connect, "-d", "postgres"]
        subprocess.run(psql + ["-f", os.path.join(HERE, "message_store.sql")], check=True, capture_output=True,
                       timeout=60)
        settings = subprocess.run(psql + ["-At", "-c", "SHOW fsync; SHOW synchronous_commit; SHOW wal_sync_method"],
                                  check=True, capture_output=True, text=True, timeout=60).stdout.split()
        # Cascade's side first, its store beside PostgreSQL's data on the same disk.
        ours = run_json([tool, "append", "--store", os.path.join(work, "cascade-store"), "--writers",
                         str(options.pg_writers), "--seconds", str(options.pg_seconds)], timeout_s=600)
        bench = subprocess.run(
            ["pgbench", "-n", *connect, "-c", str(options.pg_writers), "-j", str(min(options.pg_writers, 4)),
             "-T", str(int(options.pg_seconds)), "-M", "prepared", "-D", "expected=-1",
             "-f", os.path.join(HERE, "append.pgbench"), "postgres"],
            capture_output=True, text=True, timeout=options.pg_seconds + 300)
        if bench.returncode != 0:
            raise BenchError(f"pgbench failed ({bench.returncode}): {(bench.stdout + bench.stderr).strip()[-2000:]}")
        tps = re.search(r"tps = ([\d.]+) \(without initial connection time\)", bench.stdout)
        processed = re.search(r"number of transactions actually processed: (\d+)", bench.stdout)
        failed = re.search(r"number of failed transactions: (\d+)", bench.stdout)
        if not tps or not processed:
            raise BenchError(f"cannot read pgbench's output:\n{bench.stdout}")
        counted = subprocess.run(psql + ["-At", "-c", "SELECT count(*), count(DISTINCT stream_name) FROM messages"],
                                 check=True, capture_output=True, text=True, timeout=60).stdout.strip().split("|")
        if int(counted[0]) != int(processed.group(1)) or int(counted[1]) != options.pg_writers:
            raise BenchError(f"pgbench processed {processed.group(1)} appends but the table holds {counted[0]} "
                             f"messages in {counted[1]} streams")
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGINT)  # fast shutdown
            try:
                server.wait(timeout=60)
            except subprocess.TimeoutExpired:
                server.kill()
                server.wait()
    theirs = float(tps.group(1))
    ratio = ours["appends_per_second"] / theirs
    report.add(f"7 appends/s vs PostgreSQL, {options.pg_writers} writers", human_rate(ours["appends_per_second"]),
               human_rate(theirs) + " pg", ratio, ">= 3.0", ratio >= 3.0,
               f"{options.pg_seconds:g} s each; pg fsync={settings[0]} synchronous_commit={settings[1]} "
               f"{settings[2]}; Cascade events/fsync {ours['events_per_fsync']:.1f}",
               values={"cascade": ours, "postgres": {"tps": theirs, "transactions": int(processed.group(1)),
                                                     "failed": int(failed.group(1)) if failed else 0}})


# ---- main ----------------------------------------------------------------------------------


def main():
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--build", default=os.environ.get("CASCADE_BUILD_DIR", os.path.join(ROOT, "build")),
                        help="the build directory (binaries, the data set cache, bench-system.json)")
    parser.add_argument("--figures", default="4,5,6,7", help="which figures: any of 4,5,6,7 (default all)")
    parser.add_argument("--quick", action="store_true",
                        help="a smaller data set (10,000 releases) and shorter runs, for a busy machine")
    parser.add_argument("--releases", type=int, help="releases in the data set (default 100,000; quick 10,000)")
    parser.add_argument("--duration", type=int, help="seconds of each wrk run (default 10; quick 5)")
    parser.add_argument("--threads", type=int, default=2, help="wrk threads (default 2)")
    parser.add_argument("--connections", type=int, default=16, help="wrk connections (default 16)")
    parser.add_argument("--ids", type=int, default=2000, help="release ids figure 4b spreads its requests over")
    parser.add_argument("--samples", type=int, help="timed calls of each path in figure 4a (default 200,000)")
    parser.add_argument("--restarts", type=int, default=3, help="timed restarts in figure 6")
    parser.add_argument("--writers", type=int, default=64, help="writers of figure 6's appends")
    parser.add_argument("--append-seconds", type=float, help="seconds of each figure-6 append run (default 5)")
    parser.add_argument("--append-rounds", type=int, default=2, help="alternating append runs of each store")
    parser.add_argument("--pg-writers", type=int, default=64, help="writers of figure 7 (default 64)")
    parser.add_argument("--pg-seconds", type=float, help="seconds of each figure-7 run (default 10; quick 5)")
    parser.add_argument("--out", help="the JSON report (default BUILD/bench-system.json)")
    parser.add_argument("--keep-work", action="store_true", help="keep the temporary directories (logs, configs)")
    options = parser.parse_args()
    quick = options.quick
    options.releases = options.releases or (10_000 if quick else 100_000)
    options.duration = options.duration or (5 if quick else 10)
    options.samples = options.samples or (50_000 if quick else 200_000)
    options.append_seconds = options.append_seconds or (3.0 if quick else 5.0)
    options.pg_seconds = options.pg_seconds or (5.0 if quick else 10.0)
    options.build = os.path.abspath(options.build)
    figures = {f.strip() for f in options.figures.split(",") if f.strip()}
    if not figures <= {"4", "5", "6", "7"}:
        parser.error(f"--figures: expected some of 4,5,6,7, got {options.figures}")

    cascade = os.path.join(options.build, "tools", "cascade")
    tool = os.path.join(options.build, "tests", "bench", "system", "cascade_bench_system")
    for binary in (cascade, tool):
        if not os.access(binary, os.X_OK):
            sys.exit(f"run.py: {binary} is missing: build the cascade and cascade_bench_system targets first")
    needed = {"4": ["wrk", "nginx"], "5": [], "6": ["wrk"], "7": ["pgbench", "psql"]}
    for figure in sorted(figures):
        for program in needed[figure]:
            if shutil.which(program) is None:
                sys.exit(f"run.py: figure {figure} needs {program} (tools/dev bench installs it)")

    report = Report()
    started = datetime.datetime.now(datetime.timezone.utc)
    load_before = os.getloadavg()
    temp_root = os.path.join(options.build, "bench-tmp")
    os.makedirs(temp_root, exist_ok=True)
    work = tempfile.mkdtemp(prefix="system-", dir=temp_root)
    os.chmod(work, 0o755)
    failures = []
    try:
        data_dir = data_report = None
        if figures & {"4", "6"}:
            data_dir, data_report = scale_data(options, tool)
        steps = []
        if "4" in figures:
            steps += [("4a", lambda: figure_4a(options, report, tool, data_dir)),
                      ("4b", lambda: figure_4b(options, report, cascade, data_dir, data_report,
                                               tempfile.mkdtemp(prefix="fig4b-", dir=work)))]
        if "5" in figures:
            steps.append(("5", lambda: figure_5(options, report, cascade, tool,
                                                tempfile.mkdtemp(prefix="fig5-", dir=work))))
        if "6" in figures:
            steps.append(("6", lambda: figure_6(options, report, cascade, tool, data_dir, data_report,
                                                tempfile.mkdtemp(prefix="fig6-", dir=work))))
        if "7" in figures:
            steps.append(("7", lambda: figure_7(options, report, tool, tempfile.mkdtemp(prefix="fig7-", dir=work))))
        for name, step in steps:
            try:
                step()
            except (BenchError, subprocess.SubprocessError, OSError) as error:
                failures.append(f"figure {name}: {error}")
                log(f"figure {name} FAILED: {error}")
                report.add(f"{name} (failed)", "-", "-", None, "-", False, str(error).splitlines()[0][:120])
    finally:
        if options.keep_work:
            log(f"kept {work}")
        else:
            shutil.rmtree(work, ignore_errors=True)

    out = options.out or os.path.join(options.build, "bench-system.json")
    with open(out, "w") as f:
        json.dump({"started": started.isoformat(timespec="seconds"),
                   "machine": {"cpus": os.cpu_count(), "load_before": load_before, "load_after": os.getloadavg()},
                   "options": {k: v for k, v in vars(options).items()},
                   "figures": report.rows, "failures": failures}, f, indent=2)
    report.print_table()
    print(f"(JSON: {out}; load average before {load_before[0]:.1f}, after {os.getloadavg()[0]:.1f})")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
