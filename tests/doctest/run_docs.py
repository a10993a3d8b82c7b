#!/usr/bin/env python3
"""Runs the command blocks of the docs that are marked runnable, on real DPDK, in a throw-away
topology, and fails on a non-zero exit or unexpected output.

A block is runnable when the line before its fence is an HTML comment (invisible on GitHub):

    <!-- doctest -->                 run it with bash -e; it must exit 0
    <!-- doctest: daemon -->         start it in the background and wait until lcpd answers
                                     (stopped with SIGTERM at the end of the file; must exit 0)
    <!-- doctest: file=router.yaml --> write the block to that file (for the blocks after it)
    <!-- doctest: expect=REGEX -->   also require REGEX (Python syntax) in the block's stdout

Each file runs in its own mount and network namespace (unshare): /run and /var/lib/lcpd are
private tmpfs, so the names the docs use (eth1, eth2, netns router, /run/lcpd.sock) exist only
there and everything vanishes with the namespaces, even on failure. The topology: veths eth1 and
eth2 (IPv6 left on, like a fresh NIC) whose peers are hosts hostA (10.0.1.2/24, 2001:db8:1::2/64)
and hostB (10.0.2.2/24, 2001:db8:2::2/64), routed via .1 / ::1. The repository's bin/ is on PATH
and linked into the working directory, so `bin/lcpd` and `lcpctl` both work.

usage: run_docs.py FILE.md...    (as root; exit 0 when every block passed)
"""
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
MARK = re.compile(r"^\s*<!--\s*doctest(?::\s*(.*?))?\s*-->\s*$")
FENCE = re.compile(r"^\s*```")

TOPOLOGY = """
set -e
mount -t tmpfs tmpfs /run
mkdir -p /var/lib/lcpd && mount -t tmpfs tmpfs /var/lib/lcpd
ip link set lo up
ip link add eth1 type veth peer name h1
ip link add eth2 type veth peer name h2
ip netns add hostA
ip netns add hostB
ip link set h1 netns hostA
ip link set h2 netns hostB
ip link set eth1 up
ip link set eth2 up
for n in A:1 B:2; do
  ns=host${n%%:*}; i=${n##*:}
  ip -n $ns link set lo up
  ip -n $ns link set h$i up
  ip -n $ns addr add 10.0.$i.2/24 dev h$i
  ip -n $ns -6 addr add 2001:db8:$i::2/64 dev h$i nodad
  ip -n $ns route add default via 10.0.$i.1
  ip -n $ns -6 route add default via 2001:db8:$i::1
done
"""


def blocks(path):
    """(line, options, text) of every marked block, in order."""
    lines = open(path, encoding="utf-8").read().split("\n")
    out = []
    i = 0
    while i < len(lines):
        m = MARK.match(lines[i])
        if m and i + 1 < len(lines) and FENCE.match(lines[i + 1]):
            start = i + 2
            j = start
            while j < len(lines) and not FENCE.match(lines[j]):
                j += 1
            out.append((i + 1, (m.group(1) or "").strip(), "\n".join(lines[start:j]) + "\n"))
            i = j + 1
            continue
        i += 1
    return out


def options(text):
    opts = {}
    for part in re.findall(r'(\w+)(?:=("[^"]*"|\S+))?', text):
        k, v = part
        opts[k] = v.strip('"') if v else True
    return opts


def lcpd_ready(env, proc, timeout=60):
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            return False
        if subprocess.run(["lcpctl", "show", "version"], env=env, stdout=subprocess.DEVNULL,
                          stderr=subprocess.DEVNULL).returncode == 0:
            return True
        time.sleep(0.2)
    return False


def run_file(path):
    """Runs inside the private namespaces. Returns the number of failed blocks."""
    work = tempfile.mkdtemp(prefix="lcp-doctest-")
    os.symlink(os.path.join(ROOT, "bin"), os.path.join(work, "bin"))
    env = dict(os.environ, PATH=os.path.join(ROOT, "bin") + ":" + os.environ.get("PATH", ""))
    daemons = []
    failed = 0
    name = os.path.relpath(path, ROOT)
    try:
        for line, opt_text, text in blocks(path):
            o = options(opt_text)
            where = f"{name}:{line}"
            if "file" in o:
                with open(os.path.join(work, o["file"]), "w", encoding="utf-8") as f:
                    f.write(text)
                print(f"ok    {where}  (file {o['file']})")
                continue
            if "daemon" in o:
                log = open(os.path.join(work, f"daemon-{line}.log"), "w+", encoding="utf-8")
                p = subprocess.Popen(["bash", "-c", "exec " + text.strip().replace("\\\n", " ")], cwd=work, env=env,
                                     stdout=log, stderr=subprocess.STDOUT)
                daemons.append((where, p, log))
                if lcpd_ready(env, p):
                    print(f"ok    {where}  (daemon, pid {p.pid})")
                else:
                    failed += 1
                    log.seek(0)
                    print(f"FAIL  {where}: the daemon did not become ready (exit {p.poll()})\n{log.read()}")
                continue
            r = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", text], cwd=work, env=env,
                               stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=300)
            bad = None
            if r.returncode != 0:
                bad = f"exit {r.returncode}"
            elif "expect" in o and not re.search(o["expect"], r.stdout):
                bad = f"output does not match {o['expect']!r}"
            if bad:
                failed += 1
                print(f"FAIL  {where}: {bad}\n--- block\n{text}--- output\n{r.stdout}---")
            else:
                print(f"ok    {where}")
    finally:
        for where, p, log in reversed(daemons):
            if p.poll() is None:
                p.send_signal(signal.SIGTERM)
                try:
                    code = p.wait(20)
                except subprocess.TimeoutExpired:
                    p.kill()
                    code = "timeout"
            else:
                code = p.returncode
            if code != 0:
                failed += 1
                log.seek(0)
                print(f"FAIL  {where}: the daemon exited {code} on SIGTERM\n{log.read()}")
            log.close()
        shutil.rmtree(work, ignore_errors=True)
    return failed


def main(argv):
    if len(argv) >= 2 and argv[0] == "--inside":
        subprocess.run(["bash", "-c", TOPOLOGY], check=True)
        return 1 if run_file(argv[1]) else 0
    if not argv:
        print(__doc__)
        return 2
    if os.geteuid() != 0:
        print("run_docs.py: needs root (namespaces, veths, DPDK)")
        return 2
    total = 0
    for path in argv:
        path = os.path.abspath(path)
        if not blocks(path):
            print(f"{os.path.relpath(path, ROOT)}: no runnable blocks")
            continue
        r = subprocess.run(["unshare", "--mount", "--net", "--propagation", "private", "--",
                            sys.executable, os.path.abspath(__file__), "--inside", path])
        total += r.returncode != 0
    return 1 if total else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
