"""Serve skimviz to a class from one machine: several app processes behind nginx, one address.

    python deploy/serve.py --replicas 2 --port 8500      # then open http://127.0.0.1:8500

Starts ``--replicas`` Streamlit processes of ``app.py`` on free 127.0.0.1 ports (each with the
repo's ``.streamlit/config.toml``), writes ``deploy/nginx.conf.template`` filled in for them into
a temporary folder, and runs Debian's nginx in the foreground in front of them, with sticky
sessions (a cookie; see the template). Prints one line ``ready <url> replicas <urls>`` when all
answer, then waits; Ctrl-C or SIGTERM stops nginx and every replica.

Each replica is a whole app process: its sessions, their uploads and their live training runs stay
in it (a training run is a thread of the process that serves the student's session), so the
"worker pool" is per replica: a class of 30 on 2 replicas puts about 15 sessions on each. A
replica that dies loses only its own sessions: nginx sends their next request to a living
replica, where the page starts afresh. On several machines the same layout holds: run the
replicas on each (or as a Kubernetes Deployment) and point the load balancer's sticky upstream at
them; training across machines is ``torchrun --nnodes`` (docs/library.md).
"""
from __future__ import annotations

import argparse
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path
from string import Template
from typing import List

from skimviz.training.distributed import free_port

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = Path(__file__).resolve().parent / "nginx.conf.template"


def healthy(url: str) -> bool:
    try:
        with urllib.request.urlopen(url + "/_stcore/health", timeout=2) as r:
            return r.status == 200
    except OSError:
        return False


def start_replica(port: int, public_port: int, log: Path, trainings: int) -> subprocess.Popen:
    env = {k: v for k, v in os.environ.items() if not k.lower().endswith("_proxy")}
    env.update(PYTHONUNBUFFERED="1")
    env.setdefault("SKIMVIZ_MAX_TRAININGS", str(trainings))   # each replica's pool
    cmd = [sys.executable, "-m", "streamlit", "run", str(ROOT / "app.py"),
           "--server.address", "127.0.0.1", "--server.port", str(port),
           "--server.headless", "true", "--browser.gatherUsageStats", "false",
           # the address students use is nginx's, not the replica's
           "--browser.serverAddress", "127.0.0.1", "--browser.serverPort", str(public_port),
           "--server.fileWatcherType", "none", "--server.runOnSave", "false"]
    with open(log, "wb") as f:
        return subprocess.Popen(cmd, cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=f,
                                stderr=subprocess.STDOUT, start_new_session=True)


def nginx_conf(prefix: Path, port: int, replica_ports: List[int]) -> Path:
    upstreams = "\n".join(f"        server 127.0.0.1:{p} max_fails=1 fail_timeout=10s;"
                          for p in replica_ports)
    text = Template(TEMPLATE.read_text()).safe_substitute(
        PORT=port, PREFIX=str(prefix), UPSTREAMS=upstreams)
    conf = prefix / "nginx.conf"
    conf.write_text(text)
    return conf


def stop(procs: List[subprocess.Popen]) -> None:
    for p in procs:
        if p.poll() is None:
            try:
                os.killpg(p.pid, signal.SIGTERM)
            except ProcessLookupError:
                pass
    for p in procs:
        try:
            p.wait(timeout=10)
        except subprocess.TimeoutExpired:
            os.killpg(p.pid, signal.SIGKILL)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--replicas", type=int, default=2, help="app processes (default 2)")
    ap.add_argument("--port", type=int, default=8500, help="nginx's port on 127.0.0.1")
    ap.add_argument("--nginx", default=shutil.which("nginx") or "/usr/sbin/nginx")
    ap.add_argument("--start-timeout", type=float, default=120.0)
    args = ap.parse_args(argv)
    if not 1 <= args.replicas <= 16:
        ap.error("--replicas must be from 1 to 16")
    if not Path(args.nginx).is_file():
        print(f"error: nginx not found at {args.nginx} (Debian: apt-get install nginx-light)",
              file=sys.stderr)
        return 2
    prefix = Path(tempfile.mkdtemp(prefix="skimviz-deploy-"))
    ports = [free_port() for _ in range(args.replicas)]
    procs: List[subprocess.Popen] = []

    def on_signal(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        trainings = max(1, (os.cpu_count() or 1) // args.replicas)   # replicas × pools ≤ cores
        procs += [start_replica(p, args.port, prefix / f"replica-{p}.log", trainings)
                  for p in ports]
        deadline = time.monotonic() + args.start_timeout
        while not all(healthy(f"http://127.0.0.1:{p}") for p in ports):
            if any(p.poll() is not None for p in procs) or time.monotonic() > deadline:
                print(f"error: a replica did not start; logs in {prefix}", file=sys.stderr)
                return 1
            time.sleep(0.5)
        conf = nginx_conf(prefix, args.port, ports)
        procs.append(subprocess.Popen([args.nginx, "-p", str(prefix), "-c", str(conf),
                                       "-g", "daemon off;"], start_new_session=True))
        url = f"http://127.0.0.1:{args.port}"
        while not healthy(url):
            if procs[-1].poll() is not None or time.monotonic() > deadline:
                print(f"error: nginx did not start; see {prefix}/error.log", file=sys.stderr)
                return 1
            time.sleep(0.2)
        print(f"ready {url} replicas {' '.join(f'http://127.0.0.1:{p}' for p in ports)} "
              f"pids {' '.join(str(p.pid) for p in procs[:-1])} logs {prefix}", flush=True)
        while all(p.poll() is None for p in procs[-1:]):
            time.sleep(1)
        return 1   # nginx exited
    except KeyboardInterrupt:
        return 0
    finally:
        stop(procs)


if __name__ == "__main__":
    sys.exit(main())
