"""Metric learning with a memory variant (the protocol: docs/protocol.md): warm-up of the head, then
the main phase with the memory, evaluated every epoch. ``run`` is the engine's entry point for
every task; the lifecycle they share is bench/engine/lifecycle.py.
"""

from __future__ import annotations

import importlib
import time
from typing import Any

import torch

from bench.config import RunConfig
from bench.engine.data import Data
from bench.engine.lifecycle import Task, preserved_rng, run_task
from bench.engine.memory_probe import MemoryProbe, reembed_all
from bench.engine.metric_epoch import evaluate, train_epoch
from bench.engine.model import build_model
from bench.engine.registry import build_loss, build_miner, build_optimizer, build_variant
from bench.engine.warmup import kmeans_superclasses, prefill, warmup
from bench.profiles import PROFILE_DEPARTURES
from bench.store import BEST_PRE_MAIN, METRIC_COLUMNS, PRE_MAIN_PHASES, RETRIEVAL_COLUMNS, RunDir
from bench.tasks import TASKS
from common import UserError


def build_memory(cfg: RunConfig, n_train: int):
    """The variant over the config's loss and miner; ``--opt miner_distance`` wins over the
    config field of that name."""
    return build_variant(
        cfg, build_loss(cfg), build_miner(cfg), n_train, miner_distance=cfg.miner_distance
    )


def best_row(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """The selection rule of "best": the highest test Recall@1 over every evaluated epoch, the
    network as loaded (epoch -1) and after the warm-up (epoch 0) included (XBN paper, footnote
    6: "the best validation performance is obtained by the pre-trained network"); the earliest
    epoch among equals."""
    scored = [r for r in rows if r.get("recall@1") == r.get("recall@1")]  # NaN: not evaluated
    return max(scored, key=lambda r: (r["recall@1"], -r["epoch"]))


def _number_or_none(x: Any) -> float | None:
    """A summary number for result.json: NaN (not computed) as null, so the file stays JSON."""
    return None if x != x else float(x)


class MetricTask(Task):
    columns = METRIC_COLUMNS
    first_phase = "warmup"
    parts = ("model", "memory", "opt", "sched", "scaler")  # what the checkpoint holds

    def build(self, data_dir: str, device: torch.device) -> None:
        cfg, self.device, self.data_dir = self.cfg, device, data_dir
        self.data = Data(cfg, data_dir)
        self.data.check_sizes()  # before anything is written: exit 2, not a crash mid-training
        self.model = build_model(
            cfg.model,
            cfg.embedding_size,
            cfg.head,
            self.data.in_chans,
            cfg.pretrained,
            cfg.pretrained_file,
        ).to(device)
        self.memory = build_memory(cfg, len(self.data.labels)).to(device)
        self.opt = build_optimizer(cfg, self.model.parameters())
        self.sched = torch.optim.lr_scheduler.StepLR(self.opt, cfg.lr_step_epochs, cfg.lr_gamma)
        self.scaler = torch.amp.GradScaler(device.type, enabled=cfg.amp and device.type == "cuda")
        self.probe = self.data.probe(cfg.drift_probe).to(device)
        amp = cfg.amp and device.type == "cuda"
        if getattr(self.memory, "TRAINER_ONLY", False):  # oracle_xbm: re-embeds its entries
            self.memory.reembed = lambda mem: reembed_all(self.model, self.data, mem, device, amp)
        self.memory_probe = None
        # the probe and the oracle re-make training inputs: only keyed draws can (a run with
        # augment_draws="global" and random augmentation is not probed)
        remakeable = cfg.augment_draws == "keyed" or cfg.augment == "none"
        if getattr(self.memory, "TRAINER_ONLY", False) and not remakeable:
            raise UserError(
                f"{cfg.variant} re-embeds its entries from their training inputs, which "
                f"augment_draws={cfg.augment_draws!r} cannot re-create: use augment_draws='keyed'"
            )
        if cfg.memory_probe and cfg.variant != "no_xbm" and remakeable:  # no_xbm stores nothing
            self.memory.track_raw()  # before a resume loads the memory's state
            self.memory_probe = MemoryProbe(
                cfg, self.data, self.memory, self.model, device, self.steps_per_epoch()
            )

    def start(self) -> tuple[dict[str, Any], list[str]]:
        """The network as loaded evaluated (epoch -1, phase "init", a pre-row), warm-up of the
        head, its evaluation (row 0), k-means superclasses, prefill if asked.

        The init evaluation runs inside ``preserved_rng``: warm-up and main phase draw exactly
        what they drew before it existed."""
        cfg, dev = self.cfg, self.device
        t0 = time.perf_counter()
        with preserved_rng():
            init = self.evaluate()
        nan = float("nan")
        self.pre_rows = [
            {"epoch": -1, "phase": "init", "loss": nan, **init, "lr": nan}
            | {"seconds": time.perf_counter() - t0}
        ]
        loss = warmup(self.model, self.data, cfg, dev)
        row = {"loss": loss, **self.evaluate(), "lr": cfg.warmup_lr}
        notes: list[str] = []
        notes += kmeans_superclasses(self.model, self.data, cfg, dev)
        notes += list(PROFILE_DEPARTURES.get(cfg.profile, ()))
        if cfg.amp and dev.type != "cuda":
            notes.append(f"amp: asked for by the profile, not used on {dev.type} (CUDA only)")
        if cfg.memory_init == "prefill":
            prefill(self.model, self.memory, self.data, dev)
        return row, notes

    def steps_per_epoch(self) -> int:
        return len(self.data.labels) // self.cfg.batch_size

    def train_epoch(self, epoch: int, step: int, bar) -> tuple[dict[str, Any], int]:
        self.memory.set_epoch(epoch)
        lr = self.opt.param_groups[0]["lr"]
        row, step = train_epoch(
            self.model,
            self.memory,
            self.opt,
            self.scaler,
            self.data,
            self.cfg,
            self.device,
            self.probe,
            step,
            bar,
            epoch=epoch,
            memory_probe=self.memory_probe,
        )
        self.sched.step()
        return {**row, "lr": lr}, step

    def evaluate(self) -> dict[str, float]:
        return evaluate(self.model, self.data, self.cfg, self.device)

    def summary(self, rows: list[dict[str, Any]]) -> dict[str, Any]:
        main = [r for r in rows if r["phase"] == "main"]
        best = best_row(rows)

        def pick(r: dict[str, Any]) -> dict[str, Any]:
            return {
                "epoch": int(r["epoch"]),
                "phase": r["phase"],
                "recall@1": r["recall@1"],
                "recall@10": r.get("recall@10"),
                **{k: _number_or_none(r[k]) for k in RETRIEVAL_COLUMNS if k in r},
            }

        return {
            "best": pick(best),
            BEST_PRE_MAIN: best["phase"] in PRE_MAIN_PHASES,
            "last": pick(main[-1]),
            "selection": "best: epoch of highest test Recall@1 among every evaluated epoch, the "
            "network as loaded (-1, init) and after the warm-up (0, warmup) included (XBN paper "
            "footnote 6); earliest among equals; last: final epoch (no test-set selection)",
        }

    def state_dict(self) -> dict[str, Any]:
        state = {k: getattr(self, k).state_dict() for k in self.parts}
        if self.memory_probe is not None:
            state["memory_error"] = list(self.memory_probe.rows)
        return {**state, "superclasses": self.data.superclasses}  # k-means ones are not on disk

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k in self.parts:
            getattr(self, k).load_state_dict(state[k])
        self.data.superclasses = state["superclasses"]
        if self.memory_probe is not None:
            self.memory_probe.rows = list(state.get("memory_error", []))

    def write_tables(self, rd: RunDir) -> None:
        if self.memory_probe is not None:
            rd.write_memory_error(self.memory_probe.rows)


def run(
    cfg: RunConfig,
    data_dir: str,
    results: str,
    device: str | None = None,
    progress: bool = True,
    stop_after: int | None = None,
) -> dict[str, Any]:
    """Train and evaluate one cell of any task (``cfg.task``), or return its record if already
    done; ``stop_after`` as in ``bench.engine.lifecycle.run_task``."""
    if cfg.task not in TASKS:
        raise UserError(f"unknown task {cfg.task!r}; valid: {', '.join(TASKS)}")
    spec = TASKS[cfg.task]  # the task's module is imported when a run of it starts
    task: type[Task] = getattr(importlib.import_module(spec.module), spec.cls)
    return run_task(task(cfg), data_dir, results, device, progress, stop_after)
