"""The GPU path (marker ``cuda``; every test is skipped with "needs CUDA" on a machine without).

What the CUDA path promises, and the flags it sets (bench/engine/metric.py):
- the same seeding as on a CPU: python, numpy and torch (CPU and every CUDA device, through
  ``torch.manual_seed``) are re-seeded from (seed, epoch) at the start of every epoch, so the
  initial weights, the sampler's batches and the augmentation draws are those of the same config
  on any machine; a resumed run restores the model, the whole memory state, the optimiser, the LR
  schedule and the GradScaler;
- no determinism flag: ``pick_device`` switches ``torch.use_deterministic_algorithms`` on for CPU
  runs only; ``torch.backends.cudnn.benchmark`` and ``.deterministic`` stay at torch's defaults
  (False, False) and so does TF32 (off for matmuls, on for cuDNN convolutions). cuDNN may pick
  backward kernels that accumulate in a different order from call to call, and ``index_add_`` /
  ``scatter_reduce`` (pc_xbn, sc_xbn statistics) use atomics: two runs of one config agree to
  float rounding, which over steps can flip a mined pair or a kNN rank; they are not equal bit
  for bit as CPU runs are;
- mixed precision where the config asks (``amp``, the paper profile): the forward and the memory
  loss run under ``torch.autocast(float16)``, gradients through a GradScaler; the memory keeps
  float32 entries; the warm-up of the head, the drift probe and evaluation run in float32.

Tolerances (stated here, used below):
- AMP against float32 on the same inputs: each step's loss within ``AMP_RTOL`` = 5e-3 relative
  (float16 has a 2^-11 relative rounding step; the worst of 55 variant x seed cases under CPU
  float16 autocast was 6.6e-4), stored entries within ``AMP_ATOL`` = 5e-3 (worst seen 1.9e-3);
- a resumed CUDA run against an uninterrupted one (the same as two uninterrupted runs): every
  continuous column of metrics.csv within ``RUN_RTOL`` = 1e-2 relative (``RUN_ATOL`` = 1e-3
  absolute), Recall@K within two queries' worth (2 x 100 / number of queries), the epoch, phase
  and LR columns and the record's status exactly.

Tiny configs (test_resnet, 28 px) keep each test to seconds on a GPU.
"""

from __future__ import annotations

import copy
import io
import json

import pandas as pd
import pytest
import torch
from pytorch_metric_learning.losses import SupConLoss
from pytorch_metric_learning.miners import PairMarginMiner

import variants
from bench.config import make_config
from bench.perf.memory import class_centres, sample, sampler_labels
from bench.store import TIMING_COLUMNS, RunDir
from tests.conftest import TINY

pytestmark = [
    pytest.mark.cuda,
    pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA"),
]

AMP_RTOL, AMP_ATOL = 5e-3, 5e-3
RUN_RTOL, RUN_ATOL = 1e-2, 1e-3
DIM, MEMORY, BATCH, CLASSES = 64, 512, 32, 50
EXACT = ["epoch", "phase", "lr"]
RECALL = ["recall@1", "recall@10"]


@pytest.fixture(autouse=True)
def no_leftover_cpu_determinism():
    """A CPU run earlier in this process leaves deterministic algorithms on (pick_device), and
    CUDA ops without a deterministic kernel (cuBLAS without CUBLAS_WORKSPACE_CONFIG, atomics)
    then raise; the CUDA path itself sets no flag, so start every test from torch's default."""
    before = torch.are_deterministic_algorithms_enabled()
    torch.use_deterministic_algorithms(False)
    yield
    torch.use_deterministic_algorithms(before)


def _setup(name: str, seed: int = 0, memory_size: int = MEMORY):
    """A variant's memory on CUDA filled with class-structured unit embeddings, a near-identity
    linear layer (so that autocast has an op to run in float16) and three batches."""
    g = torch.Generator().manual_seed(seed)
    centres = class_centres(CLASSES, DIM, g)
    labels = sampler_labels(memory_size, CLASSES, BATCH, g)
    snapshot = sample(centres, labels, g)
    batches = []
    for _ in range(3):
        y = sampler_labels(BATCH, CLASSES, BATCH, g)
        batches.append((sample(centres, y, g).cuda(), y.cuda()))
    mem = variants.build(
        name, SupConLoss(temperature=0.1), DIM, memory_size, PairMarginMiner(0.2, 0.8)
    ).cuda()
    mem.set_epoch(10**3)  # adapting, delayed_xbn included
    if name != "no_xbm":
        mem.enqueue(snapshot.cuda(), labels.cuda(), (labels // 10).cuda())
    lin = torch.nn.Linear(DIM, DIM)
    with torch.no_grad():
        lin.weight.copy_(torch.eye(DIM) + 0.02 * torch.randn(DIM, DIM, generator=g))
        lin.bias.zero_()
    return mem, lin.cuda(), batches


def test_the_cuda_path_sets_no_determinism_flag():
    from bench.engine.lifecycle import pick_device

    benchmark, deterministic = torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic
    assert pick_device("cuda").type == "cuda" and pick_device(None).type == "cuda"
    assert not torch.are_deterministic_algorithms_enabled()
    assert (torch.backends.cudnn.benchmark, torch.backends.cudnn.deterministic) == (
        benchmark,
        deterministic,
    )
    assert (benchmark, deterministic) == (False, False)  # torch's defaults, as documented above


def test_amp_is_used_and_recorded(tiny_data, tmp_path, monkeypatch):
    import bench.engine.metric as trainer

    cfg = make_config("fashion-mnist", "xbn", 0, "cpu", amp=True, **TINY)
    runs, seen = [], []
    real = trainer.build_run

    def spy(cfg, data, dev):
        r = real(cfg, data, dev)
        r.model.head.register_forward_hook(  # the linear layer: float16 under autocast
            lambda m, i, out: seen.append(
                (
                    m.training,
                    torch.is_autocast_enabled("cuda"),
                    torch.get_autocast_dtype("cuda"),
                    out.dtype,
                )  # fmt: skip
            )
        )
        runs.append(r)
        return r

    monkeypatch.setattr(trainer, "build_run", spy)
    result = trainer.run(cfg, tiny_data, tmp_path, device="cuda", progress=False, stop_after=1)
    assert result["status"] == "running", result
    steps = 10 * TINY["train_per_class"] // cfg.batch_size  # one main epoch
    amp = [s for s in seen if s[1]]
    assert len(amp) == steps, seen
    assert all(train and dt == out == torch.float16 for train, _, dt, out in amp), amp
    assert all(out == torch.float32 for _, on, _, out in seen if not on)  # warm-up, probe, eval
    (r,) = runs
    assert r.scaler.is_enabled() and r.scaler.get_scale() > 0
    assert r.memory.embedding_memory.dtype == torch.float32 and r.memory.embedding_memory.is_cuda
    rd = RunDir(tmp_path, cfg)
    ckpt = torch.load(rd.checkpoint, map_location="cpu", weights_only=False)
    assert "scale" in ckpt["scaler"]  # an enabled GradScaler's state (a disabled one's is {})
    assert json.loads(rd.config.read_text())["amp"] is True
    assert json.loads(rd.env.read_text())["device"].startswith("cuda")
    assert not any(d.startswith("amp:") for d in result["deviations"])  # CPU runs carry this note


@pytest.mark.parametrize("name", variants.DROP_IN_VARIANTS)
def test_memory_stays_float32_under_autocast(name):
    mem, lin, batches = _setup(name)
    for x, y in batches:
        with torch.autocast("cuda", dtype=torch.float16):
            emb = lin(x)
            loss = mem(emb, y, superclasses=y // 10)
        assert emb.dtype == torch.float16  # autocast is on
        loss.float().backward()
        assert lin.weight.grad is not None and torch.isfinite(lin.weight.grad).all()
        assert mem.embedding_memory.dtype == torch.float32 and mem.embedding_memory.is_cuda
        if name != "no_xbm":  # the batch is stored as it came, widened to float32
            assert torch.equal(mem.embedding_memory[mem.curr_batch_idx], emb.detach().float())


@pytest.mark.parametrize("name", variants.DROP_IN_VARIANTS)
def test_amp_loss_is_within_tolerance_of_fp32(name):
    fp32, lin, batches = _setup(name)
    amp = copy.deepcopy(fp32)
    for step, (x, y) in enumerate(batches):
        want = fp32(lin(x), y, superclasses=y // 10)
        with torch.autocast("cuda", dtype=torch.float16):
            got = amp(lin(x), y, superclasses=y // 10)
        torch.testing.assert_close(
            got.float(), want, rtol=AMP_RTOL, atol=0, msg=lambda m, step=step: f"step {step}: {m}"
        )
        torch.testing.assert_close(
            amp.embedding_memory, fp32.embedding_memory, rtol=0, atol=AMP_ATOL
        )


@pytest.mark.parametrize("name", variants.DROP_IN_VARIANTS)
def test_state_dict_round_trip_on_cuda(name):
    mem, lin, batches = _setup(name, memory_size=80)  # 3 batches of 32 wrap around 80 entries
    for x, y in batches[:2]:
        with torch.autocast("cuda", dtype=torch.float16):
            mem(lin(x), y, superclasses=y // 10)
    buffer = io.BytesIO()
    torch.save(mem.state_dict(), buffer)
    buffer.seek(0)
    # as the trainer resumes: a checkpoint read onto the CPU, loaded into a memory on CUDA
    state = torch.load(buffer, map_location="cpu", weights_only=False)
    fresh = variants.build(
        name, SupConLoss(temperature=0.1), DIM, 80, PairMarginMiner(0.2, 0.8)
    ).cuda()
    fresh.load_state_dict(state)
    assert fresh.get_extra_state() == mem.get_extra_state()
    for key, value in mem.state_dict().items():
        if isinstance(value, torch.Tensor):
            loaded = fresh.state_dict()[key]
            assert loaded.is_cuda and loaded.dtype == value.dtype and torch.equal(loaded, value)
    x, y = batches[2]
    with torch.autocast("cuda", dtype=torch.float16):
        a = mem(lin(x), y, superclasses=y // 10)
        b = fresh(lin(x), y, superclasses=y // 10)
    torch.testing.assert_close(a, b)  # float32 defaults: CUDA atomics may reorder a sum
    torch.testing.assert_close(mem.embedding_memory, fresh.embedding_memory)
    assert fresh.get_extra_state() == mem.get_extra_state()


def _metrics(results, cfg) -> pd.DataFrame:
    return pd.read_csv(RunDir(results, cfg).metrics).drop(columns=list(TIMING_COLUMNS))


def _assert_runs_match(a: pd.DataFrame, b: pd.DataFrame, n_queries: int) -> None:
    assert list(a.columns) == list(b.columns)
    pd.testing.assert_frame_equal(a[EXACT], b[EXACT])
    for col in RECALL:
        assert (a[col] - b[col]).abs().max() <= 2 * 100 / n_queries + 1e-9, (col, a[col], b[col])
    rest = [c for c in a.columns if c not in EXACT + RECALL]
    pd.testing.assert_frame_equal(a[rest], b[rest], rtol=RUN_RTOL, atol=RUN_ATOL)


@pytest.mark.parametrize("name", ["xbn", "pc_xbn"])
def test_a_resumed_cuda_run_matches_an_uninterrupted_one(name, tiny_data, tmp_path):
    from bench.engine.metric import run

    cfg = make_config("fashion-mnist", name, 1, "cpu", amp=True, **TINY)
    assert run(cfg, tiny_data, tmp_path / "a", device="cuda", progress=False)["status"] == "done"
    assert run(cfg, tiny_data, tmp_path / "b", device="cuda", progress=False)["status"] == "done"
    first = run(cfg, tiny_data, tmp_path / "c", device="cuda", progress=False, stop_after=1)
    assert first["status"] == "running" and RunDir(tmp_path / "c", cfg).checkpoint.exists()
    assert run(cfg, tiny_data, tmp_path / "c", device="cuda", progress=False)["status"] == "done"
    n_queries = 10 * 8  # tests/conftest.py: 8 test images per class, 10 classes
    a, b, c = (_metrics(tmp_path / k, cfg) for k in "abc")
    assert list(a["phase"]) == ["init", "warmup", "main", "main"]
    _assert_runs_match(a, b, n_queries)  # run to run on CUDA
    _assert_runs_match(a, c, n_queries)  # resumed


def test_bench_train_measures_the_paper_step_with_amp():
    from bench.perf.train_step import measure

    row = measure("xbn", "paper", steps=1, warmup=1, device="cuda", memory_size=1024)
    assert row["amp_used"] is True and row["memory_size"] == 1024 and row["images_per_s"] > 0
