#!/usr/bin/python3
"""Check a cnn model file against PyTorch.

usage: torch_check.py X.f32 Y.f32 N MODEL.safetensors...

Reads each safetensors file with nothing but json and torch.frombuffer,
builds the torch.nn.Sequential its "arch" metadata describes, loads the
tensors into it (strict=True for a model file; a checkpoint's optim.*
tensors are set aside first), runs the N images of X.f32 (float32, NCHW) in
eval mode and compares with Y.f32, the outputs cnn computed. Exits non-zero
with a message on any mismatch.
"""
import json
import struct
import sys

import torch
from torch import nn

DTYPES = {
    "F64": torch.float64, "F32": torch.float32, "F16": torch.float16,
    "BF16": torch.bfloat16, "I64": torch.int64, "I32": torch.int32,
    "I16": torch.int16, "I8": torch.int8, "U8": torch.uint8, "BOOL": torch.bool,
}
TOLERANCE = 1e-4


def fail(msg):
    print("torch_check: " + msg, file=sys.stderr)
    sys.exit(1)


def read_safetensors(path):
    with open(path, "rb") as f:
        blob = f.read()
    if len(blob) < 8:
        fail(f"{path}: too short")
    (n,) = struct.unpack("<Q", blob[:8])
    if 8 + n > len(blob):
        fail(f"{path}: header length {n} beyond the file")
    if n % 8:
        fail(f"{path}: header length {n} is not a multiple of 8")
    header = json.loads(blob[8:8 + n].decode("utf-8"))
    meta = header.pop("__metadata__", {})
    data = blob[8 + n:]
    tensors = {}
    spans = []
    for name, e in header.items():
        begin, end = e["data_offsets"]
        spans.append((begin, end, name))
        dtype = DTYPES[e["dtype"]]
        raw = bytearray(data[begin:end])
        t = torch.frombuffer(raw, dtype=dtype) if raw else torch.empty(0, dtype=dtype)
        tensors[name] = t.reshape(e["shape"])
    # the format asks for contiguous, non-overlapping data covering the buffer
    spans.sort()
    pos = 0
    for begin, end, name in spans:
        if begin != pos:
            fail(f"{path}: tensor {name} starts at {begin}, expected {pos}")
        pos = end
    if pos != len(data):
        fail(f"{path}: tensors cover {pos} of {len(data)} data bytes")
    return meta, tensors


def pair(text):
    """'3x5' -> (3, 5); '3' -> (3, 3)"""
    parts = text.split("x")
    return (int(parts[0]), int(parts[-1]))


class FlatLinear(nn.Linear):
    """cnn's dense reads any input as a flat vector per image."""

    def forward(self, x):
        return super().forward(x.flatten(1))


def build(arch):
    """torch.nn.Sequential for a cnn architecture text; returns it and the
    input shape (c, h, w)."""
    layers = []
    shape = None
    for raw in arch.splitlines():
        words = raw.split("#", 1)[0].split()
        if not words:
            continue
        kind, args = words[0], words[1:]
        pos = [a for a in args if "=" not in a]
        opt = dict(a.split("=", 1) for a in args if "=" in a)
        if kind == "input":
            shape = tuple(int(v) for v in pos[0].split("x"))
            continue
        if shape is None:
            fail("the arch metadata does not start with an input line")
        # the input this layer sees, found by running what is built so far
        with torch.no_grad():
            probe = nn.Sequential(*layers).eval()(torch.zeros((1,) + shape))
        if kind == "conv":
            k = pair(pos[1])
            stride = pair(opt.get("stride", "1"))
            if opt.get("pad") == "same":
                padding = ((k[0] - 1) // 2, (k[1] - 1) // 2)
            else:
                padding = pair(opt.get("pad", "0"))
            mode = {"zero": "zeros", "reflect": "reflect", "replicate": "replicate"}[
                opt.get("padmode", "zero")]
            layers.append(nn.Conv2d(probe.shape[1], int(pos[0]), k, stride, padding,
                                    padding_mode=mode, bias=opt.get("bias", "1") == "1"))
        elif kind in ("maxpool", "avgpool"):
            k = pair(pos[0])
            stride = pair(opt.get("stride", pos[0]))
            padding = pair(opt.get("pad", "0"))
            if kind == "maxpool":
                layers.append(nn.MaxPool2d(k, stride, padding))
            else:
                layers.append(nn.AvgPool2d(k, stride, padding, count_include_pad=True))
        elif kind == "dense":
            layers.append(FlatLinear(probe[0].numel(), int(pos[0]),
                                     bias=opt.get("bias", "1") == "1"))
        elif kind == "flatten":
            layers.append(nn.Flatten())
        elif kind == "relu":
            layers.append(nn.ReLU())
        elif kind == "leaky_relu":
            layers.append(nn.LeakyReLU(float(opt.get("alpha", pos[0] if pos else "0.01"))))
        elif kind == "sigmoid":
            layers.append(nn.Sigmoid())
        elif kind == "tanh":
            layers.append(nn.Tanh())
        elif kind == "softmax":
            layers.append(nn.Softmax(dim=1))
        elif kind == "dropout":
            layers.append(nn.Dropout(float(pos[0])))
        elif kind == "batchnorm":
            bn = nn.BatchNorm1d if probe.dim() == 2 else nn.BatchNorm2d
            layers.append(bn(probe.shape[1], eps=float(opt.get("eps", "1e-5")),
                             momentum=float(opt.get("momentum", "0.1"))))
        else:
            fail(f"unknown layer kind '{kind}' in the arch metadata")
    return nn.Sequential(*layers), shape


def check(path, xpath, ypath, n):
    meta, tensors = read_safetensors(path)
    if meta.get("format") != "cnn" or "arch" not in meta:
        fail(f"{path}: no cnn metadata (format={meta.get('format')!r})")
    model, (c, h, w) = build(meta["arch"])

    optim = {k: v for k, v in tensors.items() if k.startswith("optim.")}
    state = {k: v for k, v in tensors.items() if not k.startswith("optim.")}
    if optim and "optim_kind" not in meta:
        fail(f"{path}: optimizer tensors without optim_kind metadata")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        fail(f"{path}: load_state_dict(strict=True) failed: {e}")
    # a checkpoint is a state_dict plus extra keys: strict=False must take it
    if optim:
        result = model.load_state_dict(tensors, strict=False)
        if sorted(result.unexpected_keys) != sorted(optim) or result.missing_keys:
            fail(f"{path}: unexpected strict=False result {result}")

    with open(xpath, "rb") as f:
        x = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).reshape(n, c, h, w)
    with open(ypath, "rb") as f:
        want = torch.frombuffer(bytearray(f.read()), dtype=torch.float32).reshape(n, -1)
    model.eval()
    with torch.no_grad():
        got = model(x).reshape(n, -1)
    if got.shape != want.shape:
        fail(f"output shape {tuple(got.shape)} from torch, {tuple(want.shape)} from cnn")
    diff = (got - want).abs().max().item()
    print(f"torch_check: {path}: {len(state)} tensors loaded strictly, "
          f"max |torch - cnn| = {diff:.3g} over {n} images")
    if not diff < TOLERANCE:
        fail(f"outputs differ by {diff:.3g} (tolerance {TOLERANCE})")


def main():
    if len(sys.argv) < 5:
        fail("usage: torch_check.py X.f32 Y.f32 N MODEL.safetensors...")
    xpath, ypath, n = sys.argv[1], sys.argv[2], int(sys.argv[3])
    # several files per run: importing torch is the slow part
    for path in sys.argv[4:]:
        check(path, xpath, ypath, n)


if __name__ == "__main__":
    main()
