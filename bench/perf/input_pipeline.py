"""``xbmbench bench data``: images per second of the ``paper`` profile's input pipeline.

How many DataLoader workers does a GPU need? The pipeline is the trainer's own: JPEG decode as
``ManifestDataset`` does it (PIL open + convert RGB), then the profile's train transforms from
``bench.engine.data`` (timm's RandomResizedCrop 224 + flip + RandAugment ``rand-m9-mstd0.5`` +
normalise + random erasing 0.2), each image's draws seeded from its key as the trainer's keyed
draws do (bench/engine/draws.py ``KeyedDataset``), batched by a torch DataLoader.

Method:
- ``images`` JPEGs (quality 90, sides drawn uniformly in 256-500 px, smooth random content plus
  noise, so that they decode like photos rather than like flat colour or pure noise) are written,
  seeded, to ``--root`` or a temporary folder. They were just written, so they are in the page
  cache: this is decode from memory, the best case of a local disk;
- for each worker count W, one pass of a DataLoader (no shuffle, ``batch_size`` images a batch);
  the clock starts when the first max(W, 1) batches have arrived (every worker started and
  done with its first batch) and stops at the last, so worker start-up is left out
  (``images_per_s_with_startup`` keeps it in). W = 0 runs in this process with one torch
  thread, as a worker has;
- per-worker rate: images/s with one worker (W = 1) where it was measured, else the best
  images/s / max(W, 1); the workers a GPU needs at ``TARGETS`` img/s follow from it, assuming
  workers scale linearly up to the cores there are (they do not beyond them);
- decode only: the same pass in this process with the decode and no transform (and no keys);
- stages: one process, one thread, each image decoded and then put through the transform's
  steps one at a time (the flattened ``Compose``), each step timed on its own, then the batches
  collated; the stages' times per image add up to one worker's time per image without the
  DataLoader's own overhead (``stages`` in the output; ``stage_sequence`` applies the same steps
  and equals the whole transform, tested).
"""

from __future__ import annotations

import math
import random
import tempfile
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import torch
from PIL import Image
from torch.utils.data import DataLoader, Dataset

from bench.engine.draws import KeyedDataset, pack
from common import atomic_write

SIDES = (256, 500)  # JPEG sides drawn uniformly in this range (px), as web product photos
QUALITY = 90
# published ResNet-50 AMP training speeds, V100 to H100
TARGETS = (1200, 2600)
NODE_WORKERS = 16  # CPU cores a GPU typically gets on a node (the lent H100/H200 machines: 16)


def write_jpeg(path: Path, seed: Sequence[int], sides: tuple[int, int] = SIDES) -> None:
    """One photo-like JPEG: a random 8 x 8 colour field upsampled (bicubic) plus pixel noise."""
    rng = np.random.default_rng(list(seed))
    w, h = (int(s) for s in rng.integers(sides[0], sides[1] + 1, size=2))
    field = Image.fromarray(rng.integers(0, 256, size=(8, 8, 3), dtype=np.uint8))
    smooth = np.asarray(field.resize((w, h), Image.BICUBIC), dtype=np.float32)
    pixels = np.clip(smooth + rng.normal(0, 8, size=smooth.shape), 0, 255).astype(np.uint8)
    image = Image.fromarray(pixels)
    atomic_write(path, lambda tmp: image.save(tmp, format="JPEG", quality=QUALITY))


def _write_chunk(args: tuple[list[Path], int, int]) -> None:
    paths, seed, first = args
    for i, path in enumerate(paths):
        write_jpeg(path, (seed, first + i))


def write_jpegs(paths: Sequence[Path], seed: int = 0, processes: int = 1) -> None:
    """Write ``paths[i]`` from seed (seed, i): the same files whatever ``processes`` is."""
    paths = [Path(p) for p in paths]
    if processes <= 1:
        _write_chunk((paths, seed, 0))
        return
    size = -(-len(paths) // (4 * processes))
    chunks = [(paths[s : s + size], seed, s) for s in range(0, len(paths), size)]
    with ProcessPoolExecutor(processes) as pool:
        list(pool.map(_write_chunk, chunks))


def decode(path: Path) -> Image.Image:
    """Decode as ``data_prep.ManifestDataset`` does."""
    with Image.open(path) as im:
        return im.convert("RGB")


def _image_size(image: Image.Image) -> torch.Tensor:
    return torch.tensor(image.size)


class JpegFiles(Dataset):
    """Decoded, transformed images of a list of files (no labels)."""

    def __init__(self, paths: Sequence[Path], transform: Callable) -> None:
        self.paths, self.transform = list(paths), transform

    def __len__(self) -> int:
        return len(self.paths)

    def __getitem__(self, i: int) -> torch.Tensor:
        return self.transform(decode(self.paths[i]))


def paper_train_transform() -> Callable:
    """The ``paper`` profile's train transform, as the trainer builds it."""
    from bench.config import make_config
    from bench.engine.data import _transforms

    return _transforms(make_config("sop", "no_xbm", 0, "paper", pretrained=False), True)


def loader_rate(
    paths: Sequence[Path], transform: Callable, workers: int, batch_size: int, keyed: bool = True
) -> dict[str, float]:
    """Images/s of one DataLoader pass, without and with worker start-up (see the module);
    ``keyed``: each image drawn under its key (epoch 0, its position), as the trainer draws."""
    skip = max(workers, 1)
    if len(paths) < batch_size * (skip + 1):
        raise ValueError(
            f"need at least {batch_size * (skip + 1)} images for {workers} workers at batch "
            f"{batch_size}, got {len(paths)}"
        )
    files = JpegFiles(paths, transform)
    if keyed:
        keys = pack(0, torch.arange(len(files))).tolist()
        loader = DataLoader(
            KeyedDataset(files, seed=0),
            batch_size=batch_size,
            sampler=list(enumerate(keys)),
            num_workers=workers,
        )
    else:
        loader = DataLoader(files, batch_size=batch_size, num_workers=workers)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as in a worker process
    try:
        start = time.perf_counter()
        n = n0 = 0
        t0 = start
        for i, x in enumerate(loader):
            n += len(x)
            if i + 1 == skip:
                t0, n0 = time.perf_counter(), n
        end = time.perf_counter()
    finally:
        torch.set_num_threads(threads)
    rate = (n - n0) / (end - t0)
    return {
        "workers": workers,
        "images": n,
        "images_per_s": rate,
        "images_per_s_per_worker": rate / skip,
        "images_per_s_with_startup": n / (end - start),
    }


# the stage names for timm's steps (class or function name -> stage)
STAGE_NAMES = {
    "_to_rgb": "decode (convert to RGB)",
    "RandomResizedCropAndInterpolation": "crop and resize",
    "RandomHorizontalFlip": "flip",
    "RandAugment": "RandAugment",
    "MaybeToTensor": "to tensor",
    "ToTensor": "to tensor",
    "Normalize": "normalise",
    "RandomErasing": "erasing",
}


def steps(transform: Callable) -> list[Callable]:
    """The transform's steps in order, nested ``Compose`` flattened."""
    inner = getattr(transform, "transforms", None)
    if inner is None:
        return [transform]
    return [step for t in inner for step in steps(t)]


def step_name(step: Callable) -> str:
    name = getattr(step, "__name__", None) or type(step).__name__
    return STAGE_NAMES.get(name, name)


def stage_sequence(image: Image.Image, transform: Callable) -> torch.Tensor:
    """The transform applied one step at a time (what ``stages`` times): equal to
    ``transform(image)`` under the same random state."""
    x = image
    for step in steps(transform):
        x = step(x)
    return x


def stages(paths: Sequence[Path], transform: Callable, batch_size: int, seed: int) -> list[dict]:
    """Milliseconds per image of each stage (decode, each transform step, collation), on one
    thread in this process; each image's draws seeded from (seed, its index)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    totals: dict[str, float] = {"decode (read and decompress)": 0.0}
    outputs = []
    try:
        for i, path in enumerate(paths):
            key = seed * 1_000_003 + i  # timm draws from python's random and numpy's
            random.seed(key), np.random.seed(key), torch.manual_seed(key)
            t = time.perf_counter()
            with Image.open(path) as im:
                im.load()
                x = im.copy()
            totals["decode (read and decompress)"] += time.perf_counter() - t
            for step in steps(transform):
                t = time.perf_counter()
                x = step(x)
                name = step_name(step)
                totals[name] = totals.get(name, 0.0) + time.perf_counter() - t
            outputs.append(x)
        t = time.perf_counter()
        for b in range(0, len(outputs), batch_size):
            torch.stack(outputs[b : b + batch_size])
        totals["collation"] = time.perf_counter() - t
    finally:
        torch.set_num_threads(threads)
    whole = sum(totals.values())
    return [
        {"stage": name, "ms_per_image": 1e3 * sec / len(paths), "share": sec / whole}
        for name, sec in totals.items()
    ]


def workers_needed(per_worker: float, target: float) -> int:
    """Workers that, scaling linearly, deliver ``target`` images/s."""
    return math.ceil(target / per_worker)


def estimate(rows: list[dict], targets: Sequence[float] = TARGETS) -> dict:
    """The per-worker rate (W = 1's, else the best per worker) and the workers each target needs."""
    one = [r for r in rows if r["workers"] == 1]
    per_worker = (one or [max(rows, key=lambda r: r["images_per_s_per_worker"])])[0][
        "images_per_s_per_worker"
    ]
    needs = [
        {
            "gpu_images_per_s": t,
            "workers_needed": workers_needed(per_worker, t),
            "fits_in_node_workers": workers_needed(per_worker, t) <= NODE_WORKERS,
        }
        for t in targets
    ]
    return {
        "per_worker_images_per_s": per_worker,
        "node_workers": NODE_WORKERS,
        "node_images_per_s": per_worker * NODE_WORKERS,
        "targets": needs,
        "input_bound": per_worker * NODE_WORKERS < max(targets),
    }


def run(images: int, workers: Sequence[int], batch_size: int, seed: int, root: Path | None) -> dict:
    """Write the JPEGs, time decode alone and the pipeline per worker count, and estimate."""
    with tempfile.TemporaryDirectory(prefix="xbm-bench-data-") as tmp:
        folder = Path(root) if root is not None else Path(tmp)
        paths = [folder / f"img_{i:06d}.jpg" for i in range(images)]
        write_jpegs(paths, seed)
        transform = paper_train_transform()
        shape = tuple(transform(decode(paths[0])).shape)
        decode_only = loader_rate(paths, _image_size, 0, batch_size, keyed=False)
        breakdown = stages(paths, transform, batch_size, seed)
        rows = [loader_rate(paths, transform, w, batch_size) for w in workers]
    config = {
        "images": images,
        "sides_px": list(SIDES),
        "jpeg_quality": QUALITY,
        "batch_size": batch_size,
        "seed": seed,
        "output_shape": list(shape),
        "transform": "paper profile train transform (bench.engine.data): RandomResizedCrop 224, "
        "flip, RandAugment rand-m9-mstd0.5, normalise, random erasing 0.2; keyed draws",
        "cpu_threads_main": torch.get_num_threads(),
        "torch": torch.__version__,
    }
    decode_ms = 1e3 / decode_only["images_per_s"]
    est = estimate(rows)
    return {
        "config": config,
        "decode_only": {
            "images_per_s": decode_only["images_per_s"],
            "ms_per_image": decode_ms,
            # of one worker's time per image
            "share_of_pipeline": decode_ms * est["per_worker_images_per_s"] / 1e3,
        },
        "stages": breakdown,
        "rows": rows,
        "estimate": est,
    }


def format_table(result: dict) -> str:
    c, e, d = result["config"], result["estimate"], result["decode_only"]
    lines = [
        f"paper-profile input pipeline on {c['images']} generated JPEGs "
        f"({c['sides_px'][0]}-{c['sides_px'][1]} px, q{c['jpeg_quality']}), batch "
        f"{c['batch_size']}, output {tuple(c['output_shape'])}; start-up excluded",
        f"{'workers':>7} {'img/s':>9} {'img/s/worker':>13} {'img/s incl. start-up':>21}",
    ]
    for r in result["rows"]:
        lines.append(
            f"{r['workers']:>7} {r['images_per_s']:>9.1f} {r['images_per_s_per_worker']:>13.1f} "
            f"{r['images_per_s_with_startup']:>21.1f}"
        )
    lines.append(
        f"decode only (one process): {d['images_per_s']:.1f} img/s, {d['ms_per_image']:.2f} "
        f"ms/image, {100 * d['share_of_pipeline']:.0f}% of the pipeline's time per image"
    )
    lines.append(f"per-worker rate used: {e['per_worker_images_per_s']:.1f} img/s")
    lines.append("stages (one thread, ms per image, share of the stages' time):")
    for st in result.get("stages", []):
        lines.append(f"  {st['stage']:<30} {st['ms_per_image']:>8.2f} {100 * st['share']:>5.1f}%")
    for t in e["targets"]:
        lines.append(
            f"a GPU at {t['gpu_images_per_s']} img/s needs {t['workers_needed']} workers"
            + ("" if t["fits_in_node_workers"] else f" (more than {e['node_workers']})")
        )
    if e["input_bound"]:
        lines.append(
            f"input-bound: {e['node_workers']} workers give {e['node_images_per_s']:.0f} img/s "
            f"< {max(TARGETS)} img/s"
        )
    return "\n".join(lines)
