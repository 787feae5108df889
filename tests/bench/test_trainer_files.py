"""The image-file path of the trainer (timm transforms, DataLoader, query-vs-gallery protocol,
memory prefill) on a tiny In-Shop-layout tree written by the test."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from PIL import Image

from bench.config import make_config
from bench.engine.metric import run
from bench.store import RunDir
from data_prep import prepare


def write_inshop(root, n_train_classes=8, n_eval_classes=6, seed=0):
    """In-Shop's official layout: Eval/list_eval_partition.txt and img/...; each class a colour."""
    rng = np.random.default_rng(seed)
    rows = []
    for c in range(n_train_classes + n_eval_classes):
        colour = rng.integers(0, 256, size=3)
        kinds = ["train"] * 4 if c < n_train_classes else ["query", "query", "gallery", "gallery"]
        category = ("Dresses", "Denim", "Skirts")[c % 3]
        for i, status in enumerate(kinds):
            rel = f"img/WOMEN/{category}/id_{c:05d}/{i:02d}_1_front.jpg"
            pixels = np.clip(colour + rng.normal(0, 20, size=(32, 32, 3)), 0, 255).astype(np.uint8)
            (root / rel).parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(root / rel, format="JPEG")
            rows.append(f"{rel} id_{c:05d} {status}")
    (root / "Eval").mkdir(parents=True, exist_ok=True)
    text = "\n".join([str(len(rows)), "image_name item_id evaluation_status", *rows]) + "\n"
    (root / "Eval" / "list_eval_partition.txt").write_text(text)
    return root


@pytest.fixture(scope="module")
def inshop_data(tmp_path_factory):
    base = tmp_path_factory.mktemp("inshop")
    raw = write_inshop(base / "raw")
    prepare("inshop", raw, base / "data", log=lambda text, warning=False: None)
    return str(base / "data")


pytestmark = pytest.mark.usefixtures("two_threads")  # tests/bench/conftest.py


FILES = dict(
    image_size=32,
    augment="randaugment",
    batch_size=8,
    m_per_class=2,
    train_per_class=None,
    epochs=1,
    warmup_epochs=1,
    embedding_size=16,
    drift_probe=8,
)


@pytest.mark.parametrize("variant,init", [("xbn", "queue"), ("sc_xbn", "prefill")])
@pytest.mark.slow
def test_file_dataset_query_gallery_run(variant, init, inshop_data, tmp_path):
    cfg = make_config("inshop", variant, 0, "cpu", memory_init=init, **FILES)
    result = run(cfg, inshop_data, tmp_path, progress=False)
    assert result["status"] == "done", result
    metrics = pd.read_csv(RunDir(tmp_path, cfg).metrics)
    main = metrics[metrics.phase == "main"].iloc[0]
    # 12 queries against 12 gallery items: Recall@K moves in steps of 100/12
    assert round(main["recall@1"] * 12 / 100, 6) == round(main["recall@1"] * 12 / 100)
    assert 0 <= main["recall@1"] <= main["recall@10"] <= 100
    assert main["mined_pos"] > 0
    assert json.loads(RunDir(tmp_path, cfg).config.read_text())["memory_init"] == init


def test_prefill_fills_the_memory_before_the_main_phase(inshop_data):
    from bench.engine.data import Data
    from bench.engine.metric import build_memory
    from bench.engine.model import build_model
    from bench.engine.warmup import prefill

    cfg = make_config("inshop", "xbm", 0, "cpu", memory_init="prefill", **FILES)
    data = Data(cfg, inshop_data)
    model = build_model(cfg.model, cfg.embedding_size, cfg.head, data.in_chans)
    memory = build_memory(cfg, len(data.labels))
    assert memory.memory_size == 16  # 50% of 32 training images
    prefill(model, memory, data, torch.device("cpu"))
    assert memory.has_been_filled
    assert set(memory.label_memory.tolist()) <= set(data.labels.tolist())


@pytest.mark.slow
def test_paper_profile_runs_end_to_end_from_a_local_weights_file(inshop_data, tmp_path):
    """ResNet-50, 224 px, RandAugment, 512-d head, weights from --pretrained-file (a state dict
    written here: nothing is downloaded); AMP is CUDA-only and the record says so on a CPU."""
    import timm

    weights = tmp_path / "resnet50.pth"
    torch.save(timm.create_model("resnet50", num_classes=0).state_dict(), weights)
    cfg = make_config(
        "inshop",
        "xbn",
        0,
        "paper",
        pretrained_file=str(weights),
        batch_size=8,
        m_per_class=2,
        epochs=1,
        warmup_epochs=1,
        num_workers=0,
    )
    assert (cfg.model, cfg.image_size, cfg.embedding_size) == ("resnet50", 224, 512)
    result = run(cfg, inshop_data, tmp_path / "results", progress=False)
    assert result["status"] == "done", result
    assert any(d.startswith("amp:") for d in result["deviations"])
