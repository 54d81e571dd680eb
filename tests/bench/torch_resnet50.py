#!/usr/bin/python3
"""PyTorch CPU inference of ResNet-50 (torchvision, eval mode, random
weights), the reference for bsp's dense path. Debian's python3-torch 1.13
and python3-torchvision; run with /usr/bin/python3.

Usage: torch_resnet50.py [--threads T] [--reps R] [--batch B]...
Prints one JSON line per batch size: {"batch", "threads", "reps", "median_ms", "times_ms"}.
"""
import argparse
import json
import time

import torch
import torchvision


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--reps", type=int, default=10)
    ap.add_argument("--batch", type=int, action="append")
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    model = torchvision.models.resnet50().eval()
    for b in a.batch or [1, 8]:
        x = torch.randn(b, 3, 224, 224)
        with torch.no_grad():
            model(x)  # warm-up (oneDNN primitive creation)
            model(x)
            ts = []
            for _ in range(a.reps):
                t = time.perf_counter()
                model(x)
                ts.append((time.perf_counter() - t) * 1e3)
        s = sorted(ts)
        n = len(s)
        med = s[n // 2] if n % 2 else 0.5 * (s[n // 2 - 1] + s[n // 2])
        print(json.dumps({"batch": b, "threads": a.threads, "reps": a.reps, "median_ms": med,
                          "times_ms": [round(t, 3) for t in ts], "torch": torch.__version__,
                          "mkldnn": torch.backends.mkldnn.is_available()}), flush=True)


if __name__ == "__main__":
    main()
