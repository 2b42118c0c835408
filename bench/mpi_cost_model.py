#!/usr/bin/env python3
"""mpi_cost_model.py — what training over MPI gains across N machines: the
per-step compute against the time the shard exchange takes on 10, 25 and
100 Gbit/s links, and the smallest batch at which N machines beat one.

The model follows src/dist/dist.c and src/model/shard.c:
  * a batch of B >= 32 images is cut into S = min(ceil(B / 16), 16) shards
    (smaller batches run whole on every rank: nothing gained);
  * each of N ranks (one a machine) runs ceil(S / N) shards at most, so a
    step's compute is ceil(S / N) * (B / S) / rate, rate being one
    machine's training images per second;
  * each rank sums one slice of the gradient, 1/N of the parameters: it
    receives that slice of every shard it did not run, (S - S_own) * 4 *
    params / N bytes (MPI_Alltoallw), sums it in shard order, and then
    receives the other ranks' summed slices, (N - 1) / N * 4 * params bytes
    (MPI_Allgatherv); both copy, with no arithmetic inside MPI. Plus a
    latency of ALPHA per rank heard from, twice. The sum itself is 1/N of
    one process's, so it is not counted. No overlap of compute and
    exchange (the code has none).

Usage: python3 bench/mpi_cost_model.py [RATE_LENET5 RATE_PYTORCHNET]
The rates default to one core of the machine the figures in README.md were
measured on (img/s, batch 64, 1 thread); give a machine's rate (say 16
cores' worth) to model machines of many cores.
"""
import math
import sys

NETS = {"lenet5": 61706, "pytorchnet": 1199882}
RATES = {"lenet5": 42367.0, "pytorchnet": 2261.0}  # bench/NOTES.md, README.md
if len(sys.argv) == 3:
    RATES = {"lenet5": float(sys.argv[1]), "pytorchnet": float(sys.argv[2])}
LINKS = [10, 25, 100]  # Gbit/s
ALPHA = 20e-6          # seconds per rank heard from (MPI latency over a network)
RANKS = [2, 4, 8, 16]


def shards(b):
    return 1 if b < 32 else min(math.ceil(b / 16), 16)


def step(net, b, n, gbit):
    """Seconds per step of batch b on n machines (n = 1: no exchange)."""
    s = shards(b)
    if n == 1 or s == 1:
        return b / RATES[net], 0.0
    own = math.ceil(s / n)
    compute = own * (b / s) / RATES[net]
    # the fewest shards a rank runs is s // n
    got = (s - s // n) * 4 * NETS[net] / n + (n - 1) * 4 * NETS[net] / n
    return compute, got / (gbit * 1e9 / 8) + 2 * ALPHA * (n - 1)


def paying_batch(net, n, gbit):
    """The smallest batch (up to 4096) at which n machines beat one."""
    for b in range(32, 4097):
        c, x = step(net, b, n, gbit)
        if c + x < b / RATES[net]:
            return b
    return None


print("rates (img/s, one machine):", ", ".join("%s %.0f" % kv for kv in RATES.items()))
for net in NETS:
    print("\n%s (%d parameters, %.0f KB a gradient buffer), batch 64:" % (net, NETS[net], NETS[net] * 4 / 1e3))
    print("| machines | compute ms | " + " | ".join("exchange ms at %d Gbit/s | speed-up" % g for g in LINKS) + " |")
    print("|---|---|" + "---|---|" * len(LINKS))
    base = 64 / RATES[net]
    for n in RANKS:
        cells = []
        for g in LINKS:
            c, x = step(net, 64, n, g)
            cells += ["%.3f" % (1e3 * x), "%.2fx" % (base / (c + x))]
        print("| %d | %.3f | %s |" % (n, 1e3 * step(net, 64, n, 10)[0], " | ".join(cells)))
    print("\nsmallest batch at which N machines beat one:")
    print("| machines | " + " | ".join("%d Gbit/s" % g for g in LINKS) + " |")
    print("|---|" + "---|" * len(LINKS))
    for n in RANKS:
        print("| %d | %s |" % (n, " | ".join(str(paying_batch(net, n, g) or "> 4096") for g in LINKS)))
