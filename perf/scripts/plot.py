#!/usr/bin/python3
"""PNG plots of the benchmark result tables in perf/results (Debian's python3-matplotlib).

  plot.py pairs RESULT.md [RESULT.md ...] -o OUT.png   lcpd vs l3fwd Mpps per interleaved pair,
                                                       one panel per file, ratio on each pair
  plot.py sweep RESULT.md -o OUT.png                   lcpd vs l3fwd Mpps per case, ratio on each
  plot.py soak SOAK.csv -o OUT.png                     RSS and managed heap, offered/returned rate
                                                       and loss, loop gap, mbufs in use over time
  plot.py ingest INGEST.csv -o OUT.png                 routes in the kernel and in lcpd's FIB over
                                                       time (netlink-sync.sh)

The scripts that write the tables (pairs.sh, sweep.sh, soak.sh, netlink-sync.sh) call this.
"""
import os
import re
import sys

import matplotlib
matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402


def rows(path):
    """Data rows of the markdown tables in a file, as lists of cells."""
    out = []
    for line in open(path, encoding="utf-8"):
        line = line.strip()
        if not line.startswith("|") or re.match(r"^\|[-:| ]+\|$", line):
            continue
        cells = [c.strip() for c in line.strip("|").split("|")]
        if cells and cells[0] in ("pair", "case"):
            continue
        out.append(cells)
    return out


def number(cell):
    m = re.match(r"\(?([0-9]+(?:\.[0-9]+)?)", cell.strip())
    return float(m.group(1)) if m else None


def title(path):
    first = open(path, encoding="utf-8").readline().lstrip("# ").strip()
    return first.split(",")[0] + ", " + (re.search(r"\d{4}-\d\d-\d\dT?[\d:]*Z?", first) or [""])[0]


def pairs(files, out):
    fig, axes = plt.subplots(1, len(files), figsize=(4.2 * len(files), 3.6), squeeze=False)
    for ax, path in zip(axes[0], files):
        by_pair = {}
        for c in rows(path):
            if len(c) >= 4 and c[0].isdigit():
                by_pair.setdefault(int(c[0]), {})[c[2]] = number(c[3])
        ids = sorted(p for p, v in by_pair.items() if "lcpd" in v and "l3fwd" in v)
        x = range(len(ids))
        ax.bar([i - 0.2 for i in x], [by_pair[p]["l3fwd"] for p in ids], 0.4, label="l3fwd", color="#888888")
        ax.bar([i + 0.2 for i in x], [by_pair[p]["lcpd"] for p in ids], 0.4, label="lcpd", color="#2a6fb0")
        for i, p in zip(x, ids):
            r = by_pair[p]["lcpd"] / by_pair[p]["l3fwd"]
            ax.text(i, max(by_pair[p].values()) * 1.02, f"{r:.2f}", ha="center", fontsize=8)
        ratios = sorted(by_pair[p]["lcpd"] / by_pair[p]["l3fwd"] for p in ids)
        med = (ratios[len(ratios) // 2] + ratios[(len(ratios) - 1) // 2]) / 2 if ratios else 0
        stated = re.search(r"median ([0-9.]+)", open(path, encoding="utf-8").read())
        med = float(stated.group(1)) if stated else med  # the figure the script printed
        ax.set_xticks(list(x), [f"pair {p}" for p in ids])
        ax.set_ylabel("Mpps (median of reps)")
        ax.set_title(f"{os.path.basename(path)}\nmedian ratio {med:.2f}", fontsize=9)
        ax.set_ylim(0, max(max(v.values()) for v in by_pair.values()) * 1.15 if by_pair else 1)
        ax.legend(fontsize=8, loc="lower right")
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def sweep(path, out):
    cases, lc, l3 = [], [], []
    for c in rows(path):
        if len(c) >= 3 and number(c[1]) is not None and number(c[2]) is not None:
            cases.append(c[0])
            lc.append(number(c[1]))
            l3.append(number(c[2]))
    fig, ax = plt.subplots(figsize=(max(6, 1.3 * len(cases)), 4))
    x = range(len(cases))
    ax.bar([i - 0.2 for i in x], l3, 0.4, label="l3fwd", color="#888888")
    ax.bar([i + 0.2 for i in x], lc, 0.4, label="lcpd", color="#2a6fb0")
    for i in x:
        ax.text(i, max(lc[i], l3[i]) * 1.02, f"{lc[i] / l3[i]:.2f}", ha="center", fontsize=8)
    ax.set_xticks(list(x), [c.replace(", ", "\n") for c in cases], fontsize=7)
    ax.set_ylabel("Mpps, one core")
    ax.set_title(title(path), fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def csv_rows(path):
    import csv
    return list(csv.DictReader(open(path, encoding="utf-8")))


def soak(path, out):
    r = csv_rows(path)
    t = [float(x["t"]) / 60 for x in r]
    col = lambda k: [float(x[k]) for x in r]  # noqa: E731
    fig, ax = plt.subplots(4, 1, figsize=(8, 9), sharex=True)
    ax[0].plot(t, col("rss_mb"), label="RSS", color="#2a6fb0")
    ax0b = ax[0].twinx()
    ax0b.plot(t, col("heap_mb"), label="managed heap", color="#d07020")
    ax[0].set_ylabel("RSS, MiB")
    ax0b.set_ylabel("managed heap, MiB")
    ax[0].set_ylim(0, max(col("rss_mb")) * 1.2)
    ax0b.set_ylim(0, max(col("heap_mb")) * 1.5)
    ax[0].legend(loc="lower left", fontsize=8)
    ax0b.legend(loc="lower right", fontsize=8)
    tx, rx, fail = col("tx"), col("rx"), col("txfail")
    dt = [b - a for a, b in zip([0.0] + [float(x["t"]) for x in r][:-1], [float(x["t"]) for x in r])]
    rate = lambda v: [(b - a) / d / 1e6 if d > 0 else 0 for a, b, d in zip([v[0]] + v[:-1], v, dt)]  # noqa: E731
    ax[1].plot(t[1:], rate(tx)[1:], label="offered (accepted)", color="#888888")
    ax[1].plot(t[1:], rate(rx)[1:], label="returned", color="#2a6fb0", linestyle="--")
    ax[1].set_ylabel("Mpps")
    ax[1].legend(fontsize=8, loc="lower left")
    lost = [max(0.0, (f2 - f1) + ((a2 - a1) - (b2 - b1)))
            for a1, a2, b1, b2, f1, f2 in zip(tx, tx[1:], rx, rx[1:], fail, fail[1:])]
    ax1b = ax[1].twinx()
    ax1b.bar(t[1:], lost, width=(t[-1] - t[0]) / max(1, len(t)), color="#c03030", label="not returned in the second")
    ax1b.set_ylabel("packets", color="#c03030")
    ax1b.legend(fontsize=8, loc="lower right")
    ax[2].plot(t, col("max_gap_us"), color="#2a6fb0")
    ax[2].set_yscale("log")
    ax[2].set_ylabel("longest loop gap\nin the second, us")
    ax[3].plot(t, col("mbufs_in_use"), label="mbufs in use", color="#2a6fb0")
    ax[3].set_ylabel("mbufs in use")
    ax3b = ax[3].twinx()
    ax3b.plot(t, col("fib_routes"), color="#60a060", label="IPv4 FIB routes")
    ax3b.set_ylabel("FIB routes", color="#60a060")
    ax[3].set_xlabel("minutes")
    ax[0].set_title(os.path.basename(path), fontsize=9)
    fig.tight_layout()
    fig.savefig(out, dpi=100)


def ingest(path, out):
    r = csv_rows(path)
    t = [float(x["t"]) for x in r]
    fig, ax = plt.subplots(figsize=(7, 3.8))
    ax.plot(t, [int(x["kernel"]) for x in r], label="kernel (routes in the table)", color="#888888")
    ax.plot(t, [int(x["fib"]) for x in r], label="lcpd FIB", color="#2a6fb0", linestyle="--")
    ax.set_xlabel("seconds after the first route was sent")
    ax.set_ylabel("routes")
    ax.set_title(os.path.basename(path), fontsize=9)
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(out, dpi=110)


def main(argv):
    if len(argv) < 4 or "-o" not in argv or argv[0] not in ("pairs", "sweep", "soak", "ingest"):
        print(__doc__)
        return 2
    o = argv.index("-o")
    out, files = argv[o + 1], argv[1:o] + argv[o + 2:]
    {"pairs": lambda: pairs(files, out), "sweep": lambda: sweep(files[0], out),
     "soak": lambda: soak(files[0], out), "ingest": lambda: ingest(files[0], out)}[argv[0]]()
    print(f"plot: {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
