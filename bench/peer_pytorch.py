#!/usr/bin/python3
"""peer_pytorch.py - the same presets in PyTorch, measured the way bench_train
measures ours, for the ours/PyTorch ratios in bench/RESULTS.md.

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/libjemalloc.so.2 \
    OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1 env -u OPENBLAS_CORETYPE \
    /usr/bin/python3 bench/peer_pytorch.py --threads 1 --out torch_t1.json

The models are built from the same architecture files (models/*.txt) our
library reads, so both sides run the same network: conv -> Conv2d, dense ->
Linear, maxpool -> MaxPool2d, ... Training uses the logits and
CrossEntropyLoss (our cross-entropy is fused with the final softmax the same
way); inference keeps the final Softmax, as ours does.

Figures (names match bench_train's):
  train/<model>/threads:T    img/s, batch 64, forward + backward + SGD
                             momentum step (lr 0.01, momentum 0.9)
  infer/<model>/threads:T    img/s, batch 1000, eval mode, inference_mode()
  latency/<model>/threads:T  seconds per single-image forward

Each figure is the best of --rounds rounds of at least --min-time seconds
after a warm-up; both wall-clock and process CPU time are recorded.

Best configuration, and why: jemalloc via LD_PRELOAD (glibc's allocator
makes PyTorch up to 10x slower at large batches on these machines);
OPENBLAS_NUM_THREADS = OMP_NUM_THREADS = T, because torch.set_num_threads
does not bound the OpenBLAS threads its Linear layers use; OPENBLAS_CORETYPE
unset so OpenBLAS picks its AVX-512 kernels. run_all.sh sets all of this;
this script records what it found in the JSON.
"""
import argparse
import json
import os
import platform
import sys
import time

import torch
import torch.nn as nn


def parse_pair(s):
    if "x" in s:
        a, b = s.split("x")
        return int(a), int(b)
    return int(s), int(s)


def build(text, name):
    """nn.Sequential for an architecture text; returns (model, (c, h, w),
    ends_in_softmax). Raises ValueError on a layer it does not know."""
    layers = []
    shape = None
    softmax_last = False
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        words = line.split()
        kind = words[0]
        pos = [w for w in words[1:] if "=" not in w]
        opt = dict(w.split("=", 1) for w in words[1:] if "=" in w)
        where = "%s:%d" % (name, lineno)
        if kind == "input":
            dims = [int(v) for v in pos[0].split("x")]
            shape = tuple(dims) if len(dims) == 3 else (1, dims[0], dims[1])
            continue
        if shape is None:
            raise ValueError(where + ": layer before input")
        c, h, w = shape
        softmax_last = False
        if kind == "conv":
            f = int(pos[0])
            kh, kw = parse_pair(pos[1])
            sh, sw = parse_pair(opt.get("stride", "1"))
            pad = opt.get("pad", "0")
            if pad == "same":
                ph, pw = (kh - 1) // 2, (kw - 1) // 2
            else:
                ph, pw = parse_pair(pad)
            mode = {"zero": "zeros", "reflect": "reflect", "replicate": "replicate"}[
                opt.get("padmode", "zero")]
            layers.append(nn.Conv2d(c, f, (kh, kw), (sh, sw), (ph, pw),
                                    bias=opt.get("bias", "1") == "1", padding_mode=mode))
            shape = (f, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)
        elif kind in ("maxpool", "avgpool"):
            kh, kw = parse_pair(pos[0])
            sh, sw = parse_pair(opt["stride"]) if "stride" in opt else (kh, kw)
            ph, pw = parse_pair(opt.get("pad", "0"))
            cls = nn.MaxPool2d if kind == "maxpool" else nn.AvgPool2d
            layers.append(cls((kh, kw), (sh, sw), (ph, pw)))
            shape = (c, (h + 2 * ph - kh) // sh + 1, (w + 2 * pw - kw) // sw + 1)
        elif kind == "flatten":
            layers.append(nn.Flatten())
            shape = (c * h * w, 1, 1)
        elif kind == "dense":
            n = int(pos[0])
            if (h, w) != (1, 1):
                layers.append(nn.Flatten())
            layers.append(nn.Linear(c * h * w, n, bias=opt.get("bias", "1") == "1"))
            shape = (n, 1, 1)
        elif kind == "relu":
            layers.append(nn.ReLU())
        elif kind == "leaky_relu":
            a = float(opt.get("alpha", pos[0] if pos else 0.01))
            layers.append(nn.LeakyReLU(a))
        elif kind == "sigmoid":
            layers.append(nn.Sigmoid())
        elif kind == "tanh":
            layers.append(nn.Tanh())
        elif kind == "softmax":
            layers.append(nn.Softmax(dim=1))
            softmax_last = True
        elif kind == "dropout":
            layers.append(nn.Dropout(float(pos[0])))
        elif kind == "batchnorm":
            eps = float(opt.get("eps", 1e-5))
            mom = float(opt.get("momentum", 0.1))
            if (h, w) == (1, 1):
                layers.append(nn.BatchNorm1d(c, eps=eps, momentum=mom))
            else:
                layers.append(nn.BatchNorm2d(c, eps=eps, momentum=mom))
        else:
            raise ValueError("%s: %s: no PyTorch equivalent in this script" % (where, kind))
    return nn.Sequential(*layers), shape_in(text), softmax_last


def shape_in(text):
    for raw in text.splitlines():
        words = raw.split("#", 1)[0].split()
        if words and words[0] == "input":
            dims = [int(v) for v in words[1].split("x")]
            return tuple(dims) if len(dims) == 3 else (1, dims[0], dims[1])
    raise ValueError("no input line")


def measure(step, per_call_images, min_time, rounds, warmup):
    """Best-of-rounds seconds per call, wall and CPU."""
    for _ in range(warmup):
        step()
    # calls per round: enough for min_time
    t0 = time.perf_counter()
    step()
    one = max(time.perf_counter() - t0, 1e-6)
    calls = max(1, int(min_time / one))
    best_wall = best_cpu = float("inf")
    for _ in range(rounds):
        w0, c0 = time.perf_counter(), time.process_time()
        for _ in range(calls):
            step()
        w, c = time.perf_counter() - w0, time.process_time() - c0
        best_wall = min(best_wall, w / calls)
        best_cpu = min(best_cpu, c / calls)
    return {"wall_s": best_wall, "cpu_s": best_cpu, "calls": calls,
            "img_s_wall": per_call_images / best_wall,
            "img_s_cpu": per_call_images / best_cpu if best_cpu > 0 else None}


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    here = os.path.dirname(os.path.abspath(__file__))
    ap.add_argument("--models-dir", default=os.path.join(here, "..", "models"))
    ap.add_argument("--models", default="simplecnn,lenet5,pytorchnet")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--min-time", type=float, default=0.5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--out", default="-")
    args = ap.parse_args()

    T = args.threads
    torch.set_num_threads(T)
    torch.manual_seed(0)
    env = {k: os.environ.get(k) for k in
           ("LD_PRELOAD", "OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "OPENBLAS_CORETYPE",
            "ATEN_CPU_CAPABILITY")}
    warn = []
    if "jemalloc" not in (env["LD_PRELOAD"] or ""):
        warn.append("jemalloc not preloaded: large batches may be much slower")
    if env["OPENBLAS_NUM_THREADS"] != str(T):
        warn.append("OPENBLAS_NUM_THREADS != --threads: Linear layers may use other thread counts")
    if env["OPENBLAS_CORETYPE"]:
        warn.append("OPENBLAS_CORETYPE=%s pins OpenBLAS's kernels" % env["OPENBLAS_CORETYPE"])
    for w in warn:
        print("peer_pytorch: warning: " + w, file=sys.stderr)

    results = []
    for name in [m for m in args.models.split(",") if m]:
        path = os.path.join(args.models_dir, name + ".txt")
        if not os.path.exists(path):
            print("peer_pytorch: %s: missing, skipped" % path, file=sys.stderr)
            continue
        with open(path) as f:
            text = f.read()
        model, (c, h, w), softmax_last = build(text, name)
        train_net = model[:-1] if softmax_last else model
        opt = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
        loss_fn = nn.CrossEntropyLoss()
        g = torch.Generator().manual_seed(3)
        nb, B = 8, 64
        xs = [((torch.rand(B, c, h, w, generator=g) - 0.1307) / 0.3081) for _ in range(nb)]
        ys = [torch.randint(0, 10, (B,), generator=g) for _ in range(nb)]
        k = [0]

        def train_step():
            i = k[0] % nb
            k[0] += 1
            opt.zero_grad(set_to_none=True)
            loss = loss_fn(train_net(xs[i]), ys[i])
            loss.backward()
            opt.step()

        model.train()
        r = measure(train_step, B, args.min_time, args.rounds, warmup=5)
        r.update(name="train/%s/threads:%d" % (name, T), batch=B)
        results.append(r)

        model.eval()
        for kind, batch in (("infer", 1000), ("latency", 1)):
            x = (torch.rand(batch, c, h, w, generator=g) - 0.1307) / 0.3081

            def fwd():
                with torch.inference_mode():
                    model(x)

            r = measure(fwd, batch, args.min_time * (0.6 if kind == "infer" else 0.4),
                        args.rounds, warmup=3)
            r.update(name="%s/%s/threads:%d" % (kind, name, T), batch=batch)
            results.append(r)
        for r in results[-3:]:
            print("peer_pytorch: %-28s %10.1f img/s wall  %10.1f img/s cpu  (%.1f us/call)"
                  % (r["name"], r["img_s_wall"], r["img_s_cpu"] or 0, r["wall_s"] * 1e6),
                  file=sys.stderr)

    out = {
        "context": {
            "torch": torch.__version__,
            "python": platform.python_version(),
            "threads": T,
            "torch_num_threads": torch.get_num_threads(),
            "cpu_capability": torch.backends.cpu.get_cpu_capability()
            if hasattr(torch.backends, "cpu") else None,
            "mkldnn": torch.backends.mkldnn.is_available(),
            "env": env,
            "warnings": warn,
            "date": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
        },
        "results": results,
    }
    text = json.dumps(out, indent=1)
    if args.out == "-":
        print(text)
    else:
        with open(args.out, "w") as f:
            f.write(text + "\n")


if __name__ == "__main__":
    main()
