#!/usr/bin/python3
"""Helpers of perf/scripts/soak.sh.

  soakpoll.py churn <rate> <count-file> <netns>    route changes through `ip -force -batch -`
  soakpoll.py poll <socket> <lcpd-pid> <gen-log> <count-file> <csv>
                                                   the API every 100 ms; one CSV row a second
  soakpoll.py ingest <socket> <netns> <csv> <stop-file> <fib-base>
                                                   kernel and FIB route counts every 0.2 s
  soakpoll.py isolate <cpu> <state-file>           kernel threads and unbound workqueues off <cpu>
  soakpoll.py restore <state-file>                 put them back
  soakpoll.py report <socket> <out> <minutes> <flushes> <verify-rc> <verify-text> <idle-mbufs>
                                                   <out>.md, <out>.png; exit 1 on a failed check
"""
import csv
import json
import os
import re
import signal
import socket
import statistics
import subprocess
import sys
import time


def churn(rate, count_file, netns):
    """rate changes a second into `ip -force -batch -` in netns: every 4th replaces a route that
    carries the traffic (same next hop), the others add then delete 5000 /24s under 100.64/10 via
    16 gateways. A fresh ip process takes over every 100,000 commands: iproute2's batch mode
    keeps memory per command (about 4 KB), and one process fed for an hour grows until the
    OOM killer takes it."""
    tick, i, j, t0, last = 0.01, 0, 0, time.time(), 0.0
    per_tick = max(1, int(rate * tick))
    ip, fed = None, 0
    try:
        while True:
            if ip is None or fed >= 100_000:
                if ip is not None:
                    ip.stdin.close()
                    ip.wait()
                ip = subprocess.Popen(["ip", "netns", "exec", netns, "ip", "-force", "-batch", "-"],
                                      stdin=subprocess.PIPE, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, text=True)
                fed = 0
            lines = []
            for _ in range(per_tick):
                if i % 4 == 0:
                    lines.append("route replace 10.253.0.0/23 via 172.16.1.2" if (i // 4) % 2 == 0
                                 else "route replace 10.253.2.0/23 via 172.16.0.2")
                else:
                    n = j % 5000
                    verb = "add" if (j // 5000) % 2 == 0 else "del"
                    lines.append(f"route {verb} 100.{64 + n // 256}.{n % 256}.0/24 via 172.16.{n % 2}.{10 + (n // 2) % 8}")
                    j += 1
                i += 1
            ip.stdin.write("\n".join(lines) + "\n")
            ip.stdin.flush()
            fed += len(lines)
            now = time.time()
            if now - last >= 1:
                with open(count_file + ".tmp", "w") as f:
                    f.write(str(i))
                os.replace(count_file + ".tmp", count_file)
                last = now
            t0 += tick
            time.sleep(max(0.0, t0 - time.time()))
    except (BrokenPipeError, KeyboardInterrupt):
        pass
    finally:
        if ip is not None:
            ip.kill()


class Api:
    """lcpd's API socket: one JSON object per line each way."""

    def __init__(self, path):
        self.s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self.s.connect(path)
        self.f = self.s.makefile("rb")

    def call(self, *argv):
        self.s.sendall((json.dumps({"v": 1, "argv": list(argv)}) + "\n").encode())
        reply = json.loads(self.f.readline())
        if not reply.get("ok"):
            raise RuntimeError(f"{' '.join(argv)}: {reply.get('error')}")
        return reply["result"]


def gen_counters(path):
    """The generator's last progress line: cumulative tx, txfail, rx, skipped."""
    last = None
    try:
        with open(path) as f:
            for line in f:
                if line.startswith("t="):
                    last = line
    except OSError:
        pass
    if not last:
        return {"tx": 0, "txfail": 0, "rx": 0, "skipped": 0}
    kv = dict(x.split("=") for x in last.split())
    return {k: int(kv[k]) for k in ("tx", "txfail", "rx", "skipped")}


def read_int(path):
    try:
        with open(path) as f:
            return int(f.read().strip() or 0)
    except (OSError, ValueError):
        return 0


def steal_ms():
    """Time the hypervisor ran something else on each vCPU (the 8th field of /proc/stat's cpuN
    lines, in USER_HZ ticks of 10 ms), as milliseconds since boot: {cpu: ms}."""
    out = {}
    with open("/proc/stat") as f:
        for line in f:
            if line.startswith("cpu") and line[3].isdigit():
                v = line.split()
                out[int(v[0][3:])] = int(v[8]) * 10
    return out


def rss_split(pid):
    """RssAnon, RssFile, RssShmem of a process, MiB."""
    v = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            k, _, rest = line.partition(":")
            if k in ("RssAnon", "RssFile", "RssShmem"):
                v[k] = int(rest.split()[0]) / 1024
    return v.get("RssAnon", 0), v.get("RssFile", 0), v.get("RssShmem", 0)


FIELDS = ["t", "rss_mb", "rss_anon_mb", "rss_file_mb", "rss_shmem_mb", "heap_mb", "gen0", "gen1", "gen2", "gc_pause_ms", "mbufs_in_use", "max_gap_us", "dpdk_heap_mb", "committed_mb", "allocated_mb", "suspensions", "max_suspend_ms",
          "tx", "rx", "txfail", "skipped", "churn_ops", "fib_routes", "steal_cpu0_ms", "steal_cpu1_ms"]


def poll(sock, pid, gen_log, count_file, out_csv):
    api = Api(sock)
    api.call("clear", "runtime")
    polls = [("show", "interfaces"), ("show", "runtime"), ("show", "ip", "fib", "summary"), ("show", "errors")]
    t0 = time.time()
    next_sample, k = t0 + 1, 0
    with open(out_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(FIELDS)
        while True:
            api.call(*polls[k % len(polls)])
            k += 1
            now = time.time()
            if now >= next_sample:
                mem = api.call("show", "memory")
                bufs = api.call("show", "buffers")
                rt = api.call("show", "runtime")
                api.call("clear", "runtime")
                fib = api.call("show", "ip", "fib", "summary")
                g = gen_counters(gen_log)
                st = steal_ms()
                w.writerow([f"{now - t0:.1f}", f"{mem['rss_bytes'] / 2**20:.1f}", *(f"{x:.1f}" for x in rss_split(pid)), f"{mem['managed_heap_bytes'] / 2**20:.2f}",
                            mem["gen0_collections"], mem["gen1_collections"], mem["gen2_collections"],
                            f"{mem['gc_pause_total_ms']:.1f}", sum(b["in_use"] for b in bufs),
                            f"{max(x['max_loop_gap_us'] for x in rt):.0f}", f"{mem['dpdk_heap_allocated_bytes'] / 2**20:.2f}",
                            f"{mem['managed_committed_bytes'] / 2**20:.1f}", f"{mem['total_allocated_bytes'] / 2**20:.1f}",
                            mem["gc_suspensions"], f"{mem['gc_max_suspend_ms']:.2f}",
                            g["tx"], g["rx"], g["txfail"], g["skipped"], read_int(count_file), fib["ipv4"],
                            st.get(0, 0), st.get(1, 0)])
                f.flush()
                next_sample += 1
            time.sleep(max(0.0, 0.1 - (time.time() - now)))


def ingest(sock, netns, out_csv, stop_file, base):
    """Routes in the kernel's main table (/proc/net/route of netns, less the base) and in lcpd's
    IPv4 FIB (less the base), every 0.2 s until stop_file exists: perf/scripts/netlink-sync.sh."""
    api = Api(sock)
    t0 = time.time()
    with open(out_csv, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["t", "kernel", "fib"])
        while True:
            now = time.time()
            k = subprocess.run(["ip", "netns", "exec", netns, "cat", "/proc/net/route"], capture_output=True, text=True).stdout.count("\n") - 1
            fib = api.call("show", "ip", "fib", "summary")["ipv4"] - base
            w.writerow([f"{now - t0:.2f}", max(0, k - 1), max(0, fib)])
            f.flush()
            if os.path.exists(stop_file):
                return
            time.sleep(max(0.0, 0.2 - (time.time() - now)))


def median_of(rows, key):
    return statistics.median(float(r[key]) for r in rows)


def slope_per_hour(rows, key):
    xs = [float(r["t"]) for r in rows]
    ys = [float(r[key]) for r in rows]
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    den = sum((x - mx) ** 2 for x in xs)
    return 0.0 if den == 0 else sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / den * 3600


def report(sock, out, minutes, flushes, verify_rc, verify_text, idle_mbufs):
    rows = list(csv.DictReader(open(out + ".csv")))
    gen = open(out + ".gen").read()
    done = re.search(r"^done (.*)$", gen, re.M)
    probe = re.search(r"^probe capacity_pps=(\d+) no_loss_pps=(\d+)", gen, re.M)
    soak = re.search(r"^soak rate=(\d+)", gen, re.M)
    checks, lines = [], []

    def check(name, ok, detail):
        checks.append(ok)
        lines.append(f"| {name} | {'PASS' if ok else 'FAIL'} | {detail} |")

    if not done or len(rows) < 10:
        print(f"soak: incomplete run ({len(rows)} samples; generator: {gen.strip().splitlines()[-1:] if gen.strip() else 'no output'})")
        return 1
    d = {k: float(v) for k, v in (x.split("=") for x in done.group(1).split())}
    api = Api(sock)
    mem = api.call("show", "memory")
    bufs_end = sum(b["in_use"] for b in api.call("show", "buffers"))
    errors = {e["reason"]: e["count"] for e in api.call("show", "errors") if e["count"]}
    lost = int(d["lost"] + d["txfail"])
    check("loss", lost == 0, f"{int(d['tx'] + d['txfail'])} offered, {int(d['rx'])} returned, {int(d['lost'])} lost in lcpd, "
          f"{int(d['txfail'])} refused by a full RX ring")
    # Trends, after a warm-up of 10 % (at least 30 s). Until the GC runs, RSS grows by what the
    # control plane allocates (the API's replies): garbage, not a leak. So RSS is compared at its
    # troughs, the first sample after each collection; with fewer than two collections in the
    # window, its growth must be explained by the bytes allocated meanwhile. The managed heap
    # (as of the last collection) and DPDK's heap are compared as medians of the first and last
    # third of the window (the heap's window starting at its first collection).
    warm = max(30.0, float(rows[-1]["t"]) * 0.1)
    steady = [r for r in rows if float(r["t"]) >= warm]
    troughs = [b for a, b in zip(steady, steady[1:]) if int(b["gen0"]) > int(a["gen0"])]
    rss_a, rss_b = float(steady[0]["rss_mb"]), float(steady[-1]["rss_mb"])
    limit = 4.0 + rss_a * 0.02
    if len(troughs) >= 2:
        ta, tb = float(troughs[0]["rss_mb"]), float(troughs[-1]["rss_mb"])
        check("RSS trend", tb - ta <= limit,
              f"after a collection: {ta:.1f} -> {tb:.1f} MiB over {len(troughs)} collections (limit +{limit:.1f}); "
              f"all samples {rss_a:.1f} -> {rss_b:.1f} MiB")
    else:
        alloc = float(steady[-1]["allocated_mb"]) - float(steady[0]["allocated_mb"])
        check("RSS trend", rss_b - rss_a <= limit + alloc,
              f"{rss_a:.1f} -> {rss_b:.1f} MiB with {len(troughs)} collection(s) in the window: within the "
              f"{alloc:.1f} MiB allocated meanwhile + {limit:.1f} (a leak needs collections to be told from garbage)")
    # The managed heap's figure is its size after the last collection; before the first one
    # lcpd reports the bytes allocated so far (garbage included), which is no trend of the heap.
    # So the heap is judged over the samples after the first collection in the window; with
    # too few of them, the RSS check above (which accounts for allocation) is what covers it.
    collected = [r for r in steady if int(r["gen0"]) > 0]
    for key, label, floor_mb, pct, rows_k in (("heap_mb", "managed heap", 8.0, 10.0, collected),
                                               ("dpdk_heap_mb", "DPDK heap in use", 2.0, 1.0, steady)):
        if len(rows_k) < 6:
            check(f"{label} trend", True, f"not judged: {len(rows_k)} samples after the first garbage collection "
                  f"(the heap's size is known only after one); RSS trend above")
            continue
        third_k = max(1, len(rows_k) // 3)
        a, b = median_of(rows_k[:third_k], key), median_of(rows_k[-third_k:], key)
        lim = floor_mb + a * pct / 100
        check(f"{label} trend", b - a <= lim,
              f"{a:.1f} -> {b:.1f} MiB (median of first and last third after {float(rows_k[0]['t']):.0f} s; limit +{lim:.1f}), "
              f"slope {slope_per_hour(rows_k, key):+.1f} MiB/h")
    check("mbufs returned", bufs_end == idle_mbufs, f"{bufs_end} in use at the end, {idle_mbufs} when idle before traffic")
    check("FIB equals the kernel's", verify_rc == 0, verify_text.strip().splitlines()[-1] if verify_text.strip() else "")
    wcpu = os.environ.get("WORKER_CPU", "0")

    def stolen(a, b):   # ms the hypervisor took from the worker's vCPU between two rows
        return int(b.get(f"steal_cpu{wcpu}_ms") or 0) - int(a.get(f"steal_cpu{wcpu}_ms") or 0)
    steal0 = stolen(rows[0], rows[-1])
    steal_max = max((stolen(a, b) for a, b in zip(rows, rows[1:])), default=0)
    events = []
    for a, b in zip(rows, rows[1:]):
        refused = int(b["txfail"]) - int(a["txfail"])
        missing = (int(b["tx"]) - int(a["tx"])) - (int(b["rx"]) - int(a["rx"]))
        if refused > 0 or missing > 256:   # 256: frames in flight across a sample boundary
            events.append((float(b["t"]), refused, missing, float(b["max_gap_us"]), stolen(a, b)))
    gaps = sorted(float(r["max_gap_us"]) for r in steady)
    gen0 = int(rows[-1]["gen0"]) - int(rows[0]["gen0"])
    gen1 = int(rows[-1]["gen1"]) - int(rows[0]["gen1"])
    gen2 = int(rows[-1]["gen2"]) - int(rows[0]["gen2"])
    secs = float(rows[-1]["t"]) - float(rows[0]["t"])
    churn = int(rows[-1]["churn_ops"]) - int(rows[0]["churn_ops"])
    target = int(soak.group(1)) if soak else 0
    ok = all(checks)
    md = [f"# Soak {os.path.basename(out)[5:]}: {minutes} min, {'PASS' if ok else 'FAIL'}", "",
          f"lcpd {os.environ.get('LCPD_COMMIT') or subprocess.run(['git', '-C', os.path.dirname(os.path.abspath(__file__)), 'log', '-1', '--format=%h %s'], capture_output=True, text=True).stdout.strip()[:100]}", "",
          f"lcpd's worker on CPU {wcpu}, "
          + ("kept for it (ISOLATE=1: kernel threads that may move and the unbound workqueues on the other CPU)"
             if os.environ.get("ISOLATE") == "1" else "shared with the kernel's threads (no ISOLATE)"), "",
          "| check | result | detail |", "|---|---|---|", *lines, "",
          "| figure | value |", "|---|---|",
          f"| no-loss rate (probe, {os.environ.get('PROBE_S', '10')} s steps) | {int(probe.group(2)) / 1e6:.3f} Mpps of a capacity of {int(probe.group(1)) / 1e6:.3f} Mpps |" if probe else "| rate | given (RATE_PPS) |",
          f"| soak rate | {target / 1e6:.3f} Mpps target, {d['offered_pps'] / 1e6:.3f} Mpps offered ({int(d['skipped'])} not sent in time by the generator) |",
          f"| route changes | {churn} in {secs:.0f} s ({churn / secs:.0f}/s) |" if secs > 0 else "| route changes | - |",
          f"| API requests | about {int(secs * 10 + secs * 5)} (10 polls/s + 5 sampling requests/s) |",
          f"| neighbour flushes | {flushes} |",
          f"| RSS | {float(rows[0]['rss_mb']):.0f} -> {float(rows[-1]['rss_mb']):.0f} MiB (max {max(float(r['rss_mb']) for r in rows):.0f}) |",
          f"| managed heap | {float(rows[0]['heap_mb']):.1f} -> {float(rows[-1]['heap_mb']):.1f} MiB (max {max(float(r['heap_mb']) for r in rows):.1f}) |",
          f"| GCs during the soak | gen0 {gen0}, gen1 {gen1}, gen2 {gen2}; pause {float(rows[-1]['gc_pause_ms']) - float(rows[0]['gc_pause_ms']):.1f} ms in total |",
          f"| longest loop gap | {gaps[-1]:.0f} us; per-second maxima: median {statistics.median(gaps):.0f} us, p99 {gaps[int(len(gaps) * 0.99) - 1 if len(gaps) > 1 else 0]:.0f} us |",
          f"| hypervisor steal on the worker's CPU | {steal0} ms in {secs:.0f} s ({steal0 / max(secs, 1) / 10:.2f} %), at most {steal_max} ms in one second (10 ms resolution) |",
          f"| mbufs in use | idle {idle_mbufs}, max during soak {max(int(r['mbufs_in_use']) for r in rows)}, end {bufs_end} |",
          f"| lcpd error counters | {', '.join(f'{k} {v}' for k, v in sorted(errors.items())) or 'none'} |",
          f"| lcpd memory at the end | RSS {mem['rss_bytes'] / 2**20:.0f} MiB, heap {mem['managed_heap_bytes'] / 2**20:.1f} MiB |", "",
          f"![soak](soak-{os.path.basename(out)[5:]}.png)", ""]
    if events:
        md += [f"Seconds with loss: {len(events)} of {len(rows)}. The worker's longest loop gap in each "
               f"(a 4096-descriptor ring holds {4096 / max(1, d['offered_pps']) * 1e3:.1f} ms at the offered rate):", "",
               f"| t (s) | refused by the full RX ring | sent, not returned | longest loop gap (us) | steal on CPU {wcpu} (ms) |", "|---|---|---|---|---|",
               *[f"| {t:.0f} | {r} | {m} | {g:.0f} | {st} |" for t, r, m, g, st in events[:20]],
               *([f"| ... {len(events) - 20} more | | | | |"] if len(events) > 20 else []), ""]
    with open(out + ".md", "w") as f:
        f.write("\n".join(md))
    plot = os.path.join(os.path.dirname(os.path.abspath(__file__)), "plot.py")
    subprocess.run(["/usr/bin/python3", plot, "soak", out + ".csv", "-o", out + ".png"], check=False)
    print("\n".join(md))
    return 0 if ok else 1


WQ_MASK = "/sys/devices/virtual/workqueue/cpumask"


def isolate(cpu, state):
    """Keeps CPU `cpu` for lcpd's worker, as a production host isolates its dataplane cores
    (isolcpus, tuned's cpu-partitioning profile): every kernel thread that may be moved (not
    bound to one CPU, PF_NO_SETAFFINITY clear) and the unbound workqueues go to the other CPUs.
    What was changed is written to `state` for `restore`. Other processes are not touched."""
    saved, old_wq = [], None
    for d in os.listdir("/proc"):
        if not d.isdigit():
            continue
        pid = int(d)
        try:
            with open(f"/proc/{d}/stat") as f:
                stat = f.read()
            fields = stat[stat.rindex(")") + 2:].split()
            ppid, flags = int(fields[1]), int(fields[6])
            if pid != 2 and ppid != 2 or flags & 0x04000000:
                continue  # not a kernel thread, or one that must stay where it is
            aff = os.sched_getaffinity(pid)
            if cpu not in aff or len(aff) < 2:
                continue
            os.sched_setaffinity(pid, aff - {cpu})
            saved.append([pid, stat[stat.index("(") + 1:stat.rindex(")")], sorted(aff)])
        except (OSError, ValueError):
            continue  # gone meanwhile, or refused
    try:
        with open(WQ_MASK) as f:
            old_wq = f.read().strip()
        mask = int(old_wq, 16) & ~(1 << cpu)
        if mask:
            with open(WQ_MASK, "w") as f:
                f.write(f"{mask:x}")
    except (OSError, ValueError):
        old_wq = None
    with open(state, "w") as f:
        json.dump({"threads": saved, "workqueue_cpumask": old_wq}, f)
    print(f"isolate: CPU {cpu} kept for the worker: {len(saved)} kernel threads moved"
          + (f", unbound workqueues off it (cpumask was {old_wq})" if old_wq else ""))


def restore(state):
    """Puts back what `isolate` changed (a thread whose pid now names another thread is left)."""
    with open(state) as f:
        st = json.load(f)
    for pid, comm, aff in st["threads"]:
        try:
            with open(f"/proc/{pid}/comm") as f:
                if f.read().strip().split("-")[0] != comm.split("-")[0]:  # (a kworker appends its queue)
                    continue
            os.sched_setaffinity(pid, aff)
        except OSError:
            continue
    if st.get("workqueue_cpumask"):
        try:
            with open(WQ_MASK, "w") as f:
                f.write(st["workqueue_cpumask"])
        except OSError:
            pass


if __name__ == "__main__":
    cmd = sys.argv[1]
    if cmd == "churn":
        signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
        churn(int(sys.argv[2]), sys.argv[3], sys.argv[4])
    elif cmd == "ingest":
        ingest(sys.argv[2], sys.argv[3], sys.argv[4], sys.argv[5], int(sys.argv[6]))
    elif cmd == "poll":
        poll(sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5], sys.argv[6])
    elif cmd == "isolate":
        isolate(int(sys.argv[2]), sys.argv[3])
    elif cmd == "restore":
        restore(sys.argv[2])
    elif cmd == "report":
        sys.exit(report(sys.argv[2], sys.argv[3], sys.argv[4], int(sys.argv[5]), int(sys.argv[6]), sys.argv[7], int(sys.argv[8])))
    else:
        sys.exit(__doc__)
