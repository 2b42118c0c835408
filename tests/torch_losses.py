#!/usr/bin/python3
"""Every loss against its PyTorch module, through one SGD step of a model.

usage: torch_losses.py DRIVER

Runs DRIVER (tests/torch_losses_driver.cpp) into a temporary directory: for
each loss, each ending of the model (a final softmax, a final sigmoid,
nothing) and each path (reference kernels, fast kernels, shards) it saved
the model before and after one SGD step. Here PyTorch loads the "before"
model, computes the loss with the module a user would compare with, on the
tensor that module is given (TABLE below), takes the same SGD step and
compares:
  - the loss value, relative to its size (LOSS_TOLERANCE);
  - every tensor after the step, relative to the size of the update:
    max |ours_after - torch_after| / max |torch_after - before|
    (UPDATE_TOLERANCE).
cce with an ending other than softmax must have been refused, and nothing
else. Exits 77 (skipped) if torch cannot be imported.
"""
import os
import subprocess
import sys
import tempfile

try:
    import torch
    from torch import nn
except ImportError as e:
    print(f"torch_losses: skipped: {sys.executable} cannot import torch ({e})")
    sys.exit(77)

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from torch_check import build, read_safetensors  # noqa: E402  (needs torch first)

LOSS_TOLERANCE = 1e-5
UPDATE_TOLERANCE = 1e-4


def fail(msg):
    print("torch_losses: " + msg, file=sys.stderr)
    sys.exit(1)


def torch_loss(loss, ending, model, x, y):
    """The PyTorch module for `loss` on the tensor it reads (cnn.h's table):
    scores are the input of a final softmax/sigmoid where the table says so,
    the output otherwise."""
    final = ending in ("softmax", "sigmoid")
    out = model(x)
    target = nn.functional.one_hot(y, out.shape[1]).float()
    scores = model[:-1](x) if final else out
    name, _, delta = loss.partition(":")
    if name == "xent":
        return nn.CrossEntropyLoss()(scores if ending == "softmax" else out, y)
    if name == "cce":  # -sum t log p on a final softmax's probabilities
        return nn.NLLLoss()(torch.log(out), y)
    if name == "bce":
        if ending == "softmax":
            return nn.BCELoss()(out, target)
        return nn.BCEWithLogitsLoss()(scores if ending == "sigmoid" else out, target)
    if name == "hinge":
        return nn.MultiMarginLoss()(scores, y)
    if name == "mse":
        return nn.MSELoss()(out, target)
    if name == "mae":
        return nn.L1Loss()(out, target)
    if name == "huber":
        return nn.HuberLoss(delta=float(delta) if delta else 1.0)(out, target)
    fail(f"unknown loss {loss}")


def load_batch(d, n, shape):
    with open(os.path.join(d, f"x{n}.f32"), "rb") as f:
        x = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).reshape((n,) + shape)
    with open(os.path.join(d, f"y{n}.u8"), "rb") as f:
        y = torch.frombuffer(bytearray(f.read()), dtype=torch.uint8).long()
    return x, y


def check_step(d, case, loss, ending, n, lr, ours_loss):
    """One SGD step in PyTorch; returns (loss error, update error, worst tensor)."""
    meta, before = read_safetensors(os.path.join(d, case + ".before.safetensors"))
    _, after = read_safetensors(os.path.join(d, case + ".after.safetensors"))
    model, shape = build(meta["arch"])
    model.load_state_dict(before, strict=True)
    model.train()
    x, y = load_batch(d, n, shape)
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    opt.zero_grad()
    value = torch_loss(loss, ending, model, x, y)
    value.backward()
    opt.step()
    loss_err = abs(value.item() - ours_loss) / max(abs(value.item()), 1e-12)
    worst, where = 0.0, ""
    state = model.state_dict()
    for name, mine in after.items():
        theirs = state[name].detach()
        update = (theirs - before[name]).abs().max().item()
        diff = (mine - theirs).abs().max().item()
        if update == 0.0:
            err = 0.0 if diff == 0.0 else float("inf")
        else:
            err = diff / update
        if err > worst or not where:
            worst, where = err, name
    return value.item(), loss_err, worst, where


def main():
    if len(sys.argv) != 2:
        fail("usage: torch_losses.py DRIVER")
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory(prefix="torch_losses_") as d:
        run = subprocess.run([sys.argv[1], d], capture_output=True, text=True)
        if run.returncode != 0:
            fail(f"{sys.argv[1]} exited {run.returncode}: {run.stderr.strip()}")
        with open(os.path.join(d, "cases.tsv")) as f:
            rows = [line.rstrip("\n").split("\t") for line in f if line.strip()]

        bad = []
        refused = set()
        steps = 0
        print(f"{'loss':<10} {'ending':<8} {'path':<7} {'loss (torch)':>13} "
              f"{'loss err':>9} {'update err':>10}  worst tensor")
        for row in rows:
            kind, case, loss, ending, path = row[:5]
            if kind == "refused":
                refused.add((loss, ending, path))
                print(f"{loss:<10} {ending:<8} {path:<7} refused: {row[5]}")
                if loss != "cce" or ending == "softmax":
                    bad.append(f"{case}: refused ({row[5]})")
                elif "softmax" not in row[5]:
                    bad.append(f"{case}: the refusal does not mention softmax: {row[5]}")
                continue
            n, lr, ours = int(row[5]), float(row[6]), float(row[7])
            value, loss_err, err, where = check_step(d, case, loss, ending, n, lr, ours)
            steps += 1
            print(f"{loss:<10} {ending:<8} {path:<7} {value:13.7g} {loss_err:9.2g} "
                  f"{err:10.2g}  {where}")
            if not loss_err <= LOSS_TOLERANCE:
                bad.append(f"{case}: loss {ours:.9g}, torch {value:.9g}")
            if not err <= UPDATE_TOLERANCE:
                bad.append(f"{case}: {where} differs from torch by {err:.3g} of its update")

        want_refused = {("cce", e, p) for e in ("sigmoid", "none")
                        for p in ("ref", "fast", "shards")}
        if refused != want_refused:
            bad.append(f"refused {sorted(refused)}, expected {sorted(want_refused)}")
        if steps != 8 * 3 * 3 - len(want_refused):
            bad.append(f"{steps} steps compared, expected {8 * 3 * 3 - len(want_refused)}")
        if bad:
            fail("mismatches:\n  " + "\n  ".join(bad))
        print(f"torch_losses: {steps} steps match PyTorch (loss within {LOSS_TOLERANCE:g}, "
              f"weights within {UPDATE_TOLERANCE:g} of the update); "
              f"{len(refused)} cce pairs refused")


if __name__ == "__main__":
    main()
