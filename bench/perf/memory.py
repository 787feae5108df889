"""Benchmark: the per-step cost of every memory variant against PML's ``CrossBatchMemory``.

The XBN paper says its adaptation "does not add any overhead" to XBM. One step is what the
trainer calls: ``loss = mem(emb, labels, superclasses=sc); loss.backward()`` with ``emb`` a leaf
requiring grad (adapt, enqueue, mine with ``PairMarginMiner(0.2, 0.8)`` and PML's default
``LpDistance``, ``SupConLoss`` forward and backward), timed with ``time.perf_counter`` (and
``torch.cuda.synchronize`` on CUDA).

Method:
- class-structured unit embeddings, as trained ones are: superclass centres on a cap of the
  sphere, ``SUPERCLASS_SIZE`` class centres near each, samples near their class centre, every
  spread scaled by 1/sqrt(dim) so that distances do not depend on the dimension. Same-class pairs
  sit around 0.1-0.3 apart (some beyond the 0.2 positive margin), same-superclass negatives around
  0.8 (some within the 0.8 negative margin), others around 1.2. Plain random vectors would sit at
  ~1.41, nothing would be mined and the loss would be zero: the mined pair counts show it is not;
- batches as MPerClassSampler gives them (``batch / 4`` classes, 4 samples each); the memory is
  filled with ``memory_size`` such samples (~memory_size / classes per class);
- before every step (timed or not, untimed itself) each memory is refilled with the same
  snapshot through its own enqueue, so every row times the same step on the same full memory and
  the same batch; the rows differ only by what the variant does;
- ``warmup`` untimed rounds, then ``reps`` timed rounds; in each round every row runs once on the
  same batch, in a fresh (seeded) random order, so that load from other processes and the
  after-effects of one row on the next hit all rows alike; ms_per_step is the median over rounds,
  ratio_to_pml / ratio_to_xbm the median over rounds of the row's time over the reference's time
  in the same round (paired, so a change of machine load between rounds cancels out);
- every normalising variant is set to epoch ``MEASURE_EPOCH`` (delayed XBN adapts from epoch 15
  on) and checked to really change the stored entries in a step; plain ones to leave them alone.
"""

from __future__ import annotations

import statistics
import time
from dataclasses import asdict

import torch
from pytorch_metric_learning.losses import CrossBatchMemory, SupConLoss
from pytorch_metric_learning.miners import PairMarginMiner

from bench.perf.memory_config import PER_CLASS, MemoryBenchConfig, check_config
from variants import DROP_IN_VARIANTS, build

SUPERCLASS_SIZE = 10  # superclass = class // 10 (for sc_xbn and for the data's structure)
POS_MARGIN, NEG_MARGIN = 0.2, 0.8  # PairMarginMiner, as in the paper
MEASURE_EPOCH = 15  # delayed_xbn's default delay: every normalising variant is adapting here
# spreads (times 1/sqrt(dim)) of superclass centres around the pole, of class centres around their
# superclass centre and of samples around their class centre; each class and each sample draws its
# own spread uniformly from the range, so that some pairs are hard and some easy (in 512-d a single
# spread would put every pair of a kind at almost the same distance)
SUPERCLASS_SPREAD, CLASS_SPREAD, NOISE = 1.2, (0.5, 0.8), (0.05, 0.25)
REFERENCE = "pml_xbm"
# row -> (ratio it is judged by, upper bound); rows not listed are informational
TARGETS = {"xbm": ("ratio_to_pml", 1.05)}
TARGETS.update(
    {n: ("ratio_to_xbm", 1.15) for n in ("xbn", "axbn", "centre_xbn", "scaled_xbn", "delayed_xbn")}
)
TARGETS.update({n: ("ratio_to_xbm", 2.0) for n in ("pc_xbn", "sc_xbn")})


def _unit(x: torch.Tensor) -> torch.Tensor:
    return torch.nn.functional.normalize(x, dim=-1)


def class_centres(classes: int, dim: int, gen: torch.Generator) -> torch.Tensor:
    """Unit class centres: superclass centres on a cap around a pole, classes around those."""
    scale = dim**-0.5
    pole = _unit(torch.randn(dim, generator=gen))
    n_super = (classes - 1) // SUPERCLASS_SIZE + 1
    supers = _unit(pole + SUPERCLASS_SPREAD * scale * torch.randn(n_super, dim, generator=gen))
    level = torch.empty(classes, 1).uniform_(*CLASS_SPREAD, generator=gen)
    jitter = level * scale * torch.randn(classes, dim, generator=gen)
    return _unit(supers[torch.arange(classes) // SUPERCLASS_SIZE] + jitter)


def sample(centres: torch.Tensor, labels: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """Unit embeddings near their class centres, each with its own noise level."""
    dim = centres.shape[1]
    level = torch.empty(len(labels), 1).uniform_(*NOISE, generator=gen)
    return _unit(centres[labels] + level * dim**-0.5 * torch.randn(len(labels), dim, generator=gen))


def sampler_labels(n: int, classes: int, batch: int, gen: torch.Generator) -> torch.Tensor:
    """``n`` labels in MPerClassSampler order: batches of batch / 4 distinct classes x 4."""
    per_batch = batch // PER_CLASS
    blocks = [
        torch.randperm(classes, generator=gen)[:per_batch].repeat_interleave(PER_CLASS)
        for _ in range(-(-n // batch))
    ]
    return torch.cat(blocks)[:n]


def build_rows(cfg: MemoryBenchConfig) -> dict[str, torch.nn.Module]:
    """PML's CrossBatchMemory (the reference) and every variant, each with its own loss/miner."""
    mems = {
        REFERENCE: CrossBatchMemory(
            SupConLoss(),
            cfg.dim,
            memory_size=cfg.memory_size,
            miner=PairMarginMiner(POS_MARGIN, NEG_MARGIN),
        )
    }
    for name in DROP_IN_VARIANTS:  # oracle_xbm needs images: its cost is in bench train
        mem = build(
            name,
            loss=SupConLoss(),
            embedding_size=cfg.dim,
            memory_size=cfg.memory_size,
            miner=PairMarginMiner(POS_MARGIN, NEG_MARGIN),
        )
        mem.set_epoch(MEASURE_EPOCH)
        if mem.NORMALISING and not mem.adapting:
            raise RuntimeError(f"{name} is not adapting at epoch {MEASURE_EPOCH}")
        mems[name] = mem
    return {name: mem.to(cfg.device) for name, mem in mems.items()}


def _fill(mem, emb: torch.Tensor, labels: torch.Tensor) -> None:
    """Empty the memory and enqueue the snapshot: a full memory, next write at index 0."""
    mem.queue_idx, mem.has_been_filled = 0, False
    if not hasattr(mem, "enqueue"):
        mem.add_to_memory(emb, labels, len(emb))
    else:
        mem.enqueue(emb, labels, labels // SUPERCLASS_SIZE)
    assert mem.has_been_filled and mem.queue_idx == 0


def _step(mem, emb: torch.Tensor, labels: torch.Tensor, sync) -> float:
    """Seconds of one training step of the memory loss; ``emb`` is made a fresh leaf."""
    leaf = emb.clone().requires_grad_(True)
    kwargs = {} if not hasattr(mem, "enqueue") else {"superclasses": labels // SUPERCLASS_SIZE}
    sync()
    start = time.perf_counter()
    loss = mem(leaf, labels, **kwargs)
    loss.backward()
    sync()
    return time.perf_counter() - start


def _check_adaptation(name: str, mem, snapshot: torch.Tensor, batch: int) -> None:
    """After one step from the snapshot, entries past the batch change iff the variant adapts."""
    if name == "no_xbm":
        return
    changed = not torch.equal(mem.embedding_memory[batch:], snapshot[batch:])
    if changed != bool(getattr(mem, "NORMALISING", False)):
        raise RuntimeError(
            f"{name}: stored entries {'changed' if changed else 'unchanged'} "
            f"in a step; normalising={getattr(mem, 'NORMALISING', False)}"
        )


def _mined(name: str, mem, emb: torch.Tensor, labels: torch.Tensor) -> tuple[int, int]:
    """Pairs mined in the last step (recomputed for PML's memory, which does not keep them)."""
    if hasattr(mem, "last_mined"):
        return tuple(int(n) for n in mem.last_mined)
    pairs = mem.create_indices_tuple(
        emb, labels, mem.embedding_memory, mem.label_memory, None, True
    )
    return len(pairs[0]), len(pairs[2])


def _time_rows(cfg: MemoryBenchConfig, mems: dict, gen: torch.Generator) -> tuple[dict, dict]:
    """Seconds of every timed step (per row, by round) and the last mined counts of every row."""
    centres = class_centres(cfg.classes, cfg.dim, gen)
    mem_labels = sampler_labels(cfg.memory_size, cfg.classes, cfg.batch, gen)
    snapshot = sample(centres, mem_labels, gen).to(cfg.device)
    mem_labels = mem_labels.to(cfg.device)
    batches = []
    for _ in range(4):
        labels = sampler_labels(cfg.batch, cfg.classes, cfg.batch, gen)
        batches.append((sample(centres, labels, gen).to(cfg.device), labels.to(cfg.device)))
    cuda = torch.device(cfg.device).type == "cuda"
    sync = torch.cuda.synchronize if cuda else (lambda: None)
    times: dict[str, list[float]] = {name: [] for name in mems}
    names = list(mems)
    for rnd in range(cfg.warmup + cfg.reps):
        emb, labels = batches[rnd % len(batches)]
        for i in torch.randperm(len(names), generator=gen).tolist():
            name = names[i]
            _fill(mems[name], snapshot, mem_labels)
            seconds = _step(mems[name], emb, labels, sync)
            if rnd == 0:
                _check_adaptation(name, mems[name], snapshot, cfg.batch)
            if rnd >= cfg.warmup:
                times[name].append(seconds)
    mined = {name: _mined(name, mem, emb, labels) for name, mem in mems.items()}
    return times, mined


def _paired_ratio(times: list[float], reference: list[float]) -> float:
    """Median over rounds of a row's time over the reference's time in the same round."""
    return statistics.median([t / r for t, r in zip(times, reference, strict=True)])


def summarise(times: dict[str, list[float]], mined: dict[str, tuple[int, int]]) -> list[dict]:
    """One row per memory (in the order of ``times``) from its seconds per round and mined pairs.

    ms_per_step is the median over rounds; ratio_to_pml / ratio_to_xbm the median over rounds of
    the row's time over the reference's time in the same round; the target is judged on the
    ratio ``TARGETS`` names.
    """
    rows = []
    for name, seconds in times.items():
        row = {
            "name": name,
            "ms_per_step": 1e3 * statistics.median(seconds),
            "ratio_to_pml": _paired_ratio(seconds, times[REFERENCE]),
            "ratio_to_xbm": _paired_ratio(seconds, times["xbm"]),
            "mined_pos": mined[name][0],
            "mined_neg": mined[name][1],
            "target": None,
            "meets_target": None,
        }
        if name in TARGETS:
            key, bound = TARGETS[name]
            row["target"] = f"{key} <= {bound:g}"
            row["meets_target"] = bool(row[key] <= bound)
        rows.append(row)
    return rows


def run(cfg: MemoryBenchConfig) -> dict:
    """``{"config": ..., "rows": [...]}``: one row per variant plus ``pml_xbm`` (first)."""
    check_config(cfg)
    threads = torch.get_num_threads()
    torch.set_num_threads(cfg.threads)
    try:
        gen = torch.Generator().manual_seed(cfg.seed)
        mems = build_rows(cfg)
        times, mined = _time_rows(cfg, mems, gen)
    finally:
        torch.set_num_threads(threads)
    config = asdict(cfg) | {
        "per_class": PER_CLASS,
        "superclass": f"class // {SUPERCLASS_SIZE}",
        "loss": "SupConLoss()",
        "miner": f"PairMarginMiner({POS_MARGIN}, {NEG_MARGIN})",
        "epoch": MEASURE_EPOCH,
        "torch": torch.__version__,
        "adapting": [n for n, m in mems.items() if getattr(m, "adapting", False)],
    }
    return {"config": config, "rows": summarise(times, mined)}


def format_table(result: dict) -> str:
    c = result["config"]
    lines = [
        f"Memory loss step (adapt, enqueue, mine, SupConLoss forward + backward), full memory "
        f"{c['memory_size']} x {c['dim']}, {c['classes']} classes, batch {c['batch']} "
        f"({c['batch'] // PER_CLASS} classes x {PER_CLASS}), {c['device']}, {c['threads']} "
        f"threads; median of {c['reps']} rounds (rows in random order) after {c['warmup']} warm-up "
        f"rounds; ratios: median of per-round ratios; "
        f"every variant at epoch {c['epoch']} (delayed_xbn adapting); adapting: "
        f"{', '.join(c['adapting'])}",
        f"{'name':<12}{'ms/step':>9}{'x pml':>8}{'x xbm':>8}{'mined_pos':>11}{'mined_neg':>11}"
        f"  {'target':<21}{'meets'}",
    ]
    for r in result["rows"]:
        meets = {None: "-", True: "pass", False: "FAIL"}[r["meets_target"]]
        lines.append(
            f"{r['name']:<12}{r['ms_per_step']:>9.1f}{r['ratio_to_pml']:>8.2f}"
            f"{r['ratio_to_xbm']:>8.2f}{r['mined_pos']:>11}{r['mined_neg']:>11}"
            f"  {r['target'] or '(informational)':<21}{meets}"
        )
    return "\n".join(lines)
