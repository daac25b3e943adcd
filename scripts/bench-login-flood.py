#!/usr/bin/env python3
"""The measuring half of scripts/bench-login-flood (which starts the distribution).

The flood runs in its own process (asyncio, raw HTTP/1.1 from 127.0.0.2, one connection per
request), so its Python work never delays the probes, which run in this process as two
threads on keep-alive connections from 127.0.0.1. Memory is read from /proc/PID/status.
"""

import argparse
import asyncio
import collections
import http.client
import json
import multiprocessing
import os
import signal
import threading
import time
import urllib.parse

LOGIN = 'mutation($p: String!) { login(account: "admin", password: $p) { token } }'
STATUS = "{ status { stateRepo { commit } } }"
NEW_PASSWORD = "bench password that is long enough"


def status_field(pid, field):
    """A number of /proc/PID/status (`Vm*` in KiB, `Threads`), or None once the process is gone."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(field + ":"):
                    return int(line.split()[1])
    except OSError:
        return None
    return None


def graphql(host, port, query, variables, token=None):
    """One GraphQL call on a fresh connection; the decoded answer."""
    connection = http.client.HTTPConnection(host, port, timeout=30)
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    connection.request("POST", "/graphql", json.dumps({"query": query, "variables": variables}), headers)
    answer = json.loads(connection.getresponse().read())
    connection.close()
    return answer


def code_of(head, body):
    """The stable code of an answer: GraphQL `extensions.code`, REST `error.code`, or the status."""
    status = head.split(b" ", 2)[1].decode() if head.startswith(b"HTTP/") else "?"
    try:
        answer = json.loads(body)
        if answer.get("errors"):
            return answer["errors"][0].get("extensions", {}).get("code", f"HTTP {status} (no code)")
        if answer.get("error"):
            return answer["error"].get("code", f"HTTP {status} (no code)")
        if answer.get("data"):
            return "LOGGED_IN"
    except (ValueError, AttributeError):
        pass
    return f"HTTP {status}"


def flood(host, port, concurrency, seconds, results):
    """The flooding process: `concurrency` workers, each sending logins one after another."""
    tally = collections.Counter()
    deadline = time.monotonic() + seconds

    async def one(worker, n):
        body = json.dumps({"query": LOGIN, "variables": {"p": f"wrong password {worker}-{n}"}}).encode()
        request = (
            f"POST /graphql HTTP/1.1\r\nhost: {host}:{port}\r\ncontent-type: application/json\r\n"
            f"content-length: {len(body)}\r\nconnection: close\r\n\r\n"
        ).encode() + body
        try:
            reader, writer = await asyncio.open_connection(host, port, local_addr=("127.0.0.2", 0))
        except OSError as error:
            tally[f"connect failed ({error.__class__.__name__})"] += 1
            await asyncio.sleep(0.01)
            return
        try:
            writer.write(request)
            await writer.drain()
            answer = await asyncio.wait_for(reader.read(), timeout=max(deadline - time.monotonic(), 0) + 30)
            head, _, rest = answer.partition(b"\r\n\r\n")
            tally[code_of(head, rest) if answer else "dropped (closed without an answer)"] += 1
        except asyncio.TimeoutError:
            tally["no answer within 30 s"] += 1
        except OSError as error:
            tally[f"dropped ({error.__class__.__name__})"] += 1
        finally:
            writer.close()

    async def worker(index):
        n = 0
        while time.monotonic() < deadline:
            await one(index, n)
            n += 1

    async def main():
        await asyncio.gather(*(worker(i) for i in range(concurrency)))

    asyncio.run(main())
    results.put(dict(tally))


class Prober(threading.Thread):
    """Calls one request again and again on a keep-alive connection, timing each answer."""

    def __init__(self, host, port, method, path, body, headers):
        super().__init__(daemon=True)
        self.target = (host, port)
        self.request = (method, path, body, headers)
        self.latencies = []
        self.failures = collections.Counter()
        self.stop = threading.Event()

    def run(self):
        connection = None
        while not self.stop.is_set():
            if connection is None:
                connection = http.client.HTTPConnection(*self.target, timeout=30)
            method, path, body, headers = self.request
            start = time.monotonic()
            try:
                connection.request(method, path, body, headers)
                response = connection.getresponse()
                payload = response.read()
                elapsed = time.monotonic() - start
                if response.status != 200 or b'"errors"' in payload:
                    self.failures[f"HTTP {response.status}: {payload[:120]!r}"] += 1
                else:
                    self.latencies.append(elapsed)
            except (OSError, http.client.HTTPException) as error:
                self.failures[f"{error.__class__.__name__}: {error}"] += 1
                connection.close()
                connection = None
            self.stop.wait(0.01)

    def summary(self):
        if not self.latencies:
            return f"no successful answer; failures: {dict(self.failures)}"
        values = sorted(self.latencies)

        def at(q):
            return values[min(len(values) - 1, int(q * len(values)))] * 1000

        text = f"p50 {at(0.5):.1f} ms, p99 {at(0.99):.1f} ms, max {values[-1] * 1000:.1f} ms ({len(values)} answers"
        failed = sum(self.failures.values())
        return text + (f", {failed} failed: {dict(self.failures)})" if failed else ")")


class Sampler(threading.Thread):
    """Reads the server's RSS every 20 ms; kills it past the safety valve."""

    def __init__(self, pid, max_rss_kib):
        super().__init__(daemon=True)
        self.pid = pid
        self.max_rss_kib = max_rss_kib
        self.peak = 0
        self.peak_threads = 0
        self.killed = False
        self.stop = threading.Event()

    def run(self):
        while not self.stop.is_set():
            rss = status_field(self.pid, "VmRSS")
            if rss is None:
                return
            self.peak = max(self.peak, rss)
            self.peak_threads = max(self.peak_threads, status_field(self.pid, "Threads") or 0)
            if rss > self.max_rss_kib:
                os.kill(self.pid, signal.SIGKILL)
                self.killed = True
                return
            self.stop.wait(0.02)


def mb(kib):
    return f"{kib / 1024:.0f} MB" if kib is not None else "gone"


def main():
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base", required=True)
    parser.add_argument("--pid", type=int, required=True)
    parser.add_argument("--password", required=True)
    parser.add_argument("--concurrency", type=int, default=500)
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--max-rss-mb", type=int, default=3000)
    args = parser.parse_args()
    url = urllib.parse.urlsplit(args.base)
    host, port = url.hostname, url.port

    changed = graphql(
        host, port,
        "mutation($o: String!, $n: String!) { changePassword(account: \"admin\", oldPassword: $o, newPassword: $n) }",
        {"o": args.password, "n": NEW_PASSWORD},
        graphql(host, port, "mutation($p: String!) { login(account: \"admin\", password: $p) { token } }",
                {"p": args.password})["data"]["login"]["token"],
    )
    assert "errors" not in changed, changed
    token = graphql(host, port, 'mutation($p: String!) { login(account: "admin", password: $p) { token } }',
                    {"p": NEW_PASSWORD})["data"]["login"]["token"]
    time.sleep(2)
    before = status_field(args.pid, "VmRSS")
    threads_before = status_field(args.pid, "Threads")

    sampler = Sampler(args.pid, args.max_rss_mb * 1024)
    health = Prober(host, port, "GET", "/health", None, {})
    status = Prober(host, port, "POST", "/graphql", json.dumps({"query": STATUS}),
                    {"content-type": "application/json", "authorization": f"Bearer {token}"})
    results = multiprocessing.Queue()
    flooder = multiprocessing.Process(target=flood, args=(host, port, args.concurrency, args.seconds, results))
    sampler.start()
    health.start()
    status.start()
    started = time.monotonic()
    flooder.start()
    tally = results.get()
    flooder.join()
    flood_time = time.monotonic() - started
    health.stop.set()
    status.stop.set()
    health.join()
    status.join()
    time.sleep(10)
    sampler.stop.set()
    sampler.join()
    after = status_field(args.pid, "VmRSS")
    threads_after = status_field(args.pid, "Threads")
    peak = max(sampler.peak, status_field(args.pid, "VmHWM") or 0)

    answered = sum(tally.values())
    print(f"login flood: {args.concurrency} concurrent wrong passwords for `admin` from 127.0.0.2, "
          f"{flood_time:.1f} s: {answered} requests ({answered / flood_time:.0f}/s)")
    for code, count in sorted(tally.items(), key=lambda item: -item[1]):
        print(f"  {count:>8}  {code}")
    valve = f" (killed by the safety valve at {args.max_rss_mb} MB)" if sampler.killed else ""
    print(f"RSS before {mb(before)}; peak {mb(peak)}{valve} (target < 300 MB); "
          f"10 s after {mb(after)} (target within 50 MB of before)")
    print(f"threads before {threads_before}; peak {sampler.peak_threads}; 10 s after {threads_after}")
    print(f"GET /health during the flood: {health.summary()} (target p99 < 100 ms)")
    print(f"status query during the flood: {status.summary()} (target p99 < 100 ms)")


if __name__ == "__main__":
    main()
