"""oracle_xbm: the memory re-embedded with the current model every ``refresh_interval`` steps.

The "model" here is a known function of the image index and of the model version (the step):
``embed(index, version)``. A trainer feeds each batch as ``embed(batch_index, step)`` and its
``reembed`` returns ``embed(index_memory, step)``; what the memory must hold after each step is
worked out by a plain loop over slots.
"""

import pytest
import torch
from pytorch_metric_learning.losses import SupConLoss
from pytorch_metric_learning.miners import PairMarginMiner

import variants

from .conftest import StepStream, batch_indices, build_any

DIM, IMAGES = 8, 60
BASE = torch.randn(IMAGES, DIM, generator=torch.Generator().manual_seed(0))


def embed(index: torch.Tensor, version: int) -> torch.Tensor:
    """A model that changes every step: a per-version scale and shift of a fixed table."""
    return torch.nn.functional.normalize(BASE[index] * (1 + 0.1 * version) + 0.05 * version, dim=1)


class Trainer:
    """Feeds batches of images and re-embeds the memory at the current version; counts calls."""

    def __init__(self, mem, seed=1):
        self.mem, self.version, self.calls = mem, 0, []
        self.g = torch.Generator().manual_seed(seed)
        mem.reembed = self.reembed

    def reembed(self, mem):
        self.calls.append(self.version)
        return embed(mem.index_memory[: mem.num_stored], self.version)

    def step(self, batch=7, **kwargs):
        idx = torch.randperm(IMAGES, generator=self.g)[:batch]
        x = embed(idx, self.version).requires_grad_(True)
        loss = self.mem(x, idx % 4, indices=idx, **kwargs)
        self.version += 1
        return loss, idx


def _oracle(size=20, **options):
    return variants.build("oracle_xbm", SupConLoss(), DIM, size, **options)


def test_interval_1_holds_the_current_models_embeddings_after_every_step():
    mem = _oracle()
    mem.track_raw()
    trainer = Trainer(mem)
    for step in range(10):  # batches of 7 into 20 slots: wraps mid-batch from step 2 on
        version = trainer.version
        loss, _ = trainer.step()
        n = mem.num_stored
        want = embed(mem.index_memory[:n], version)
        assert torch.equal(mem.embedding_memory[:n], want), step
        assert torch.equal(mem.raw_view(), want), step  # the raw copy is refreshed too
        assert mem.adapted_this_step is (step > 0)
        assert torch.isfinite(loss)
    assert trainer.calls == list(range(1, 10))  # every step with something stored
    assert mem.has_been_filled


def _refresh_steps(steps, interval):
    """The steps that re-embed, by a plain loop: enqueue count a multiple of the interval and
    something stored (one enqueue per step, so the count before step k is k)."""
    out = []
    for k in range(steps):
        if k > 0 and k % interval == 0:
            out.append(k)
    return out


@pytest.mark.parametrize("interval", [2, 3, 5])
def test_interval_refreshes_on_the_right_steps_only(interval):
    mem = _oracle(refresh_interval=interval)
    trainer = Trainer(mem, seed=interval)
    version = [-1] * 20  # per slot: the model version of what it holds
    index = [-1] * 20
    start = 0
    for step in range(13):
        refresh = step in _refresh_steps(13, interval)
        n_before = mem.num_stored
        if refresh:
            version[:n_before] = [step] * n_before
        _, idx = trainer.step()
        for i, image in enumerate(idx.tolist()):
            slot = (start + i) % 20
            version[slot], index[slot] = step, image
        start = (start + len(idx)) % 20
        n = mem.num_stored
        assert mem.adapted_this_step is refresh, step
        assert mem.index_memory[:n].tolist() == index[:n]
        want = torch.cat([embed(torch.tensor([index[s]]), version[s]) for s in range(n)])
        assert torch.equal(mem.embedding_memory[:n], want), step
    assert trainer.calls == _refresh_steps(13, interval)
    assert len(trainer.calls) >= 2


def test_an_unchanging_model_makes_the_oracle_xbm():
    """With a model that does not change, a fresh embedding is the stored one: oracle = xbm,
    step for step (losses and gradients), over wrap-around."""
    oracle = build_any("oracle_xbm", SupConLoss(), 16, 30, PairMarginMiner(0.2, 0.8))
    xbm = variants.build("xbm", SupConLoss(), 16, 30, PairMarginMiner(0.2, 0.8))
    stream = StepStream()
    nonzero = 0
    for step in range(8):
        x, y, _ = stream()
        a, b = x.clone().requires_grad_(True), x.clone().requires_grad_(True)
        la = oracle(a, y, indices=batch_indices(step, len(x)))
        lb = xbm(b, y)
        la.backward()
        lb.backward()
        torch.testing.assert_close(la, lb, rtol=0, atol=0)
        torch.testing.assert_close(a.grad, b.grad, rtol=0, atol=0)
        nonzero += int(lb.item() > 0)
    assert torch.equal(oracle.embedding_memory, xbm.embedding_memory) and nonzero >= 5


def test_without_the_trainer_it_says_it_needs_one():
    mem = _oracle()
    x = embed(torch.arange(4), 0)
    with pytest.raises(RuntimeError, match="oracle_xbm .* needs the trainer .* memory.reembed"):
        mem(x, torch.arange(4), indices=torch.arange(4))
    assert mem.enqueue_count == 0  # refused before it stored anything
    mem.enqueue(x, torch.arange(4), indices=torch.arange(4))  # a prefill needs no images
    assert mem.num_stored == 4


def test_entries_without_an_image_or_a_wrong_shape_are_refused():
    mem = _oracle()
    mem.reembed = lambda m: embed(m.index_memory[: m.num_stored], 0)
    x = embed(torch.arange(4), 0)
    mem(x, torch.arange(4))  # nothing stored yet: nothing to re-embed
    with pytest.raises(ValueError, match="4 of the 4 stored entries have none"):
        mem(x, torch.arange(4))
    mem = _oracle()
    mem.reembed = lambda m: torch.zeros(m.num_stored, DIM + 1)
    mem(x, torch.arange(4), indices=torch.arange(4))
    with pytest.raises(ValueError, match=r"reembed must return shape \(4, 8\), got \(4, 9\)"):
        mem(x, torch.arange(4), indices=torch.arange(4, 8))


def test_refresh_interval_below_1_is_refused():
    with pytest.raises(ValueError, match="refresh_interval must be >= 1, got 0"):
        _oracle(refresh_interval=0)
