"""``ferry demo``: the research-to-production story of ONNX, end to end, in a minute.

Train a small CNN on scikit-learn's handwritten digits (shipped with the package, no
download), export it with ferry's tracer (dynamic batch), run the test split in ferry's
runtime and in onnxruntime, compare with PyTorch, then export the super-resolution network
of the PyTorch ONNX tutorial. Needs ``torch`` and ``scikit-learn``.
"""

from __future__ import annotations

import argparse
import os
import tempfile
import time

import numpy as np

from ferry.cli.progress import Progress
from ferry.errors import InvalidArgument

__all__ = ["add_commands", "run_demo"]


def add_commands(sub: argparse._SubParsersAction) -> None:
    demo = sub.add_parser("demo", help="train, export and run a digits CNN (needs torch, scikit-learn)")
    demo.add_argument("--quick", action="store_true", help="train for fewer epochs")
    demo.add_argument("--output-dir", metavar="DIR", help="where to write the artefacts")
    demo.add_argument("--seed", type=int, default=0)
    demo.set_defaults(run=run_demo)


def _stage(text: str) -> None:
    print(f"==> {text}", flush=True)


def _digits(seed: int):
    try:
        from sklearn.datasets import load_digits
    except ImportError:
        raise InvalidArgument("ferry demo needs scikit-learn: pip install 'ferry-onnx[demo]'") from None
    data = load_digits()
    images = (data.images / 16.0).astype(np.float32)[:, None, :, :]
    order = np.random.default_rng(seed).permutation(len(images))
    split = int(len(order) * 0.8)
    train, test = order[:split], order[split:]
    return images[train], data.target[train], images[test], data.target[test]


def _cnn():
    import torch
    from torch import nn

    return nn.Sequential(
        nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
        nn.Flatten(), nn.Linear(32 * 2 * 2, 64), nn.ReLU(), nn.Dropout(0.1), nn.Linear(64, 10),
    ).to(torch.float32)


def _train(model, images, labels, epochs: int, seed: int) -> None:
    import torch

    torch.manual_seed(seed)
    optimizer = torch.optim.Adam(model.parameters(), lr=3e-3)
    x, y = torch.from_numpy(images), torch.from_numpy(labels).long()
    batches = (len(x) + 63) // 64
    model.train()
    with Progress("training", epochs * batches) as bar:
        for _ in range(epochs):
            order = torch.randperm(len(x))
            for start in range(0, len(x), 64):
                index = order[start:start + 64]
                loss = torch.nn.functional.cross_entropy(model(x[index]), y[index])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                bar.advance(suffix=f"loss {loss.item():.3f}")
    model.eval()


def _latency(run, feed_one, feed_all, repeats: int = 20) -> tuple[float, float]:
    def timed(feed):
        run(feed)
        start = time.perf_counter()
        for _ in range(repeats):
            run(feed)
        return (time.perf_counter() - start) / repeats * 1e3

    return timed(feed_one), timed(feed_all)


def _engines(model, path: str):
    """(name, run(images) -> logits) for torch, ferry and onnxruntime when installed."""
    import torch

    import ferry

    session = ferry.InferenceSession(path)
    engines = [
        ("torch", lambda x: model(torch.from_numpy(x)).detach().numpy()),
        ("ferry", lambda x: session.run(None, {"image": x})[0]),
    ]
    try:
        import onnxruntime

        ort = onnxruntime.InferenceSession(path, providers=["CPUExecutionProvider"])
        engines.append(("onnxruntime", lambda x: ort.run(None, {"image": x})[0]))
    except ImportError:
        print("    (onnxruntime not installed: skipped)")
    return engines


def _compare_engines(model, path: str, images, labels) -> int:
    import torch

    rows = []
    with torch.no_grad():
        engines = _engines(model, path)
        reference = engines[0][1](images)
        for name, run in engines:
            logits = run(images)
            predictions = logits.argmax(axis=1)
            differing = int((predictions != reference.argmax(axis=1)).sum())
            one, everything = _latency(run, images[:1], images)
            rows.append((name, (predictions == labels).mean(), differing,
                         float(np.abs(logits - reference).max()), one, everything))
    print(f"    {'engine':<12} {'accuracy':>8} {'differ':>7} {'max |dlogit|':>13} "
          f"{'batch 1':>10} {'batch ' + str(len(images)):>11}")
    for name, accuracy, differing, diff, one, everything in rows:
        print(f"    {name:<12} {accuracy:8.4f} {differing:7d} {diff:13.2e} {one:8.3f}ms {everything:9.3f}ms")
    return max(row[2] for row in rows)


def run_demo(args: argparse.Namespace) -> int:
    try:
        import torch
    except ImportError:
        raise InvalidArgument("ferry demo needs PyTorch: pip install 'ferry-onnx[demo]'") from None
    import ferry

    started = time.perf_counter()
    out_dir = args.output_dir or tempfile.mkdtemp(prefix="ferry-demo-")
    os.makedirs(out_dir, exist_ok=True)
    torch.manual_seed(args.seed)

    _stage("loading scikit-learn's handwritten digits (8x8 images)")
    train_x, train_y, test_x, test_y = _digits(args.seed)
    print(f"    {len(train_x)} training images, {len(test_x)} test images")

    _stage("training a small CNN in PyTorch")
    model = _cnn()
    _train(model, train_x, train_y, epochs=6 if args.quick else 15, seed=args.seed)
    with torch.no_grad():
        accuracy = (model(torch.from_numpy(test_x)).argmax(1).numpy() == test_y).mean()
    print(f"    test accuracy (torch): {accuracy:.4f}")

    _stage("exporting it with ferry's tracer (dynamic batch axis), checking it")
    path = os.path.join(out_dir, "digits_cnn.onnx")
    exported = ferry.export(model, (torch.from_numpy(test_x[:2]),), path, input_names=["image"],
                            output_names=["logits"], dynamic_axes={"image": {0: "batch"}, "logits": {0: "batch"}})
    ferry.check_model(exported)
    with open(os.path.join(out_dir, "digits_cnn.txt"), "w") as handle:
        handle.write(str(exported) + "\n")
    print(f"    {len(exported.graph)} nodes, max difference vs torch {exported.max_difference:.2e}")

    _stage("running the test split: torch vs ferry vs onnxruntime")
    differing = _compare_engines(model, path, test_x, test_y)

    _stage("exporting the super-resolution network of the PyTorch ONNX tutorial (random weights)")
    from ferry.cli.models import SuperResolutionNet

    torch.manual_seed(0)
    net = SuperResolutionNet().eval()
    image = torch.randn(1, 1, 224, 224)
    sr_path = os.path.join(out_dir, "super_resolution.onnx")
    sr = ferry.export(net, (image,), sr_path, input_names=["input"], output_names=["output"])
    with open(os.path.join(out_dir, "super_resolution.txt"), "w") as handle:
        handle.write(str(sr) + "\n")
    (output,) = ferry.InferenceSession(sr_path).run(None, {"input": image.numpy()})
    with torch.no_grad():
        diff = float(np.abs(output - net(image).numpy()).max())
    print(f"    output shape {list(output.shape)}, max difference vs torch {diff:.2e}")

    _stage(f"done in {time.perf_counter() - started:.1f}s; artefacts in {out_dir}")
    for name in sorted(os.listdir(out_dir)):
        print(f"    {os.path.join(out_dir, name)}")
    if differing:
        print(f"ferry: error: {differing} predictions differ between engines")
        return 1
    return 0
