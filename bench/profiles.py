"""The profiles a run config resolves (``paper``, ``cpu``), MoCo's, and where the values come from.

A profile gives the values that differ from RunConfig's defaults (bench/config.py); the ``cpu``
profile is the defaults but for what it names. ``PROFILE_SOURCES`` gives the source of every
value of the ``paper`` profile (README's protocol table is ``protocol_table()``).
"""

from __future__ import annotations

import re
from typing import Any

PROFILES: dict[str, dict[str, Any]] = {
    # the XBN paper, section 5.1
    "paper": dict(
        model="resnet50",
        pretrained=True,
        head="l2",
        embedding_size=512,
        image_size=224,
        augment="randaugment",
        batch_size=64,
        m_per_class=4,
        memory_ratio=0.5,
        lr=1e-4,
        weight_decay=1e-4,
        lr_step_epochs=15,
        lr_gamma=0.33,
        epochs=50,
        warmup_epochs=2,
        warmup_lr=1e-3,
        amp=True,
        grad_clip=10.0,
        train_per_class=None,
        drift_probe=64,
        num_workers=8,
    ),
    # the defaults (bench/config.py RunConfig): the same pipeline scaled to two CPU cores, a small
    # timm ResNet trained from scratch at the native resolution, 400 training images per class,
    # 5 main epochs with the LR x0.33 every 2 (the shape of x0.33 every 15 of 50), AdamW at 1e-3
    # since nothing is pretrained; only where it departs from them is said here
    "cpu": dict(
        # the memory probe at 2 points within each epoch (and its end), not the default 4: the
        # demo's 12 minutes (README, "Where a demo cell's time goes"); it changes no Recall
        memory_probe_points=2,
    ),
}

# Where each value of a profile comes from: a section/table/footnote of a paper, or "choice: "
# and the reason (README's protocol table is ``protocol_table()``). Keys are
# the profile's fields, then settings of the pipeline that are not RunConfig fields (they are
# fixed in code for every profile: bench/engine/data.py, warmup.py, registry.py).
PROFILE_SOURCES: dict[str, dict[str, str]] = {
    "paper": {
        "model": "XBN paper sec. 5.1 (ImageNet-pretrained ResNet-50; timm)",
        "pretrained": "XBN paper sec. 5.1 and footnote 4",
        "head": "XBN paper sec. 5.1 (linear layer to 512, L2-normalised; footnote 4)",
        "embedding_size": "XBN paper sec. 5.1",
        "image_size": "choice: the papers state none; 224 is timm's input size for resnet50",
        "augment": "XBN paper sec. 5.1 (timm default augmentations, rand-m9-mstd0.5, reprob 0.2)",
        "batch_size": "XBN paper sec. 5.1 and table 1",
        "m_per_class": "XBN paper sec. 5.1 (four images per class)",
        "memory_ratio": "XBN paper table 1 (50%; 100% for DeepFashion2)",
        "lr": "XBN paper sec. 5.1 (AdamW, 0.0001)",
        "weight_decay": "choice: neither paper states it; 1e-4 on every parameter is kept because "
        "changing it would change every paper run (timm's train.py default is 2e-5 with no "
        "decay on norm and bias parameters)",
        "lr_step_epochs": "XBN paper sec. 5.1 (x0.33 every 15 epochs)",
        "lr_gamma": "XBN paper sec. 5.1",
        "epochs": "XBN paper sec. 5.1 (50 epochs)",
        "warmup_epochs": "XBN paper sec. 5.1 (2-epoch pre-warm-up of the last layer)",
        "warmup_lr": "XBN paper sec. 5.1 (SGD, 0.001)",
        "amp": "XBN paper sec. 5.1 (mixed precision)",
        "grad_clip": "choice: neither paper states clipping; norm 10 keeps fp16 steps bounded",
        "train_per_class": "XBN paper sec. 5.2 (the standard training splits, whole)",
        "drift_probe": "XBN paper appendix C (drift on a minibatch of 64 training samples)",
        "num_workers": "choice: loader processes; no effect on the numbers",
        # fixed in code, not RunConfig fields
        "random_erasing_mode": "choice: 'const' (create_transform's default) is used; timm's "
        "train.py uses 'pixel' (a departure: the run's deviations say so)",
        "interpolation_and_crop": "choice: create_transform's defaults are used (bilinear; "
        "evaluation crop_pct 0.875; ImageNet mean/std); timm's train.py takes them from the "
        "model's pretrained config (resnet50: bicubic, crop_pct 0.95) (a departure: the run's "
        "deviations say so)",
        "warmup_backbone_batchnorm": "choice: train mode, so the frozen backbone's BatchNorm "
        "running statistics adapt to the dataset during the head warm-up (the paper freezes "
        "only the weights, footnote 4, and trains with BatchNorm enabled, sec. 5.1)",
        "warmup_momentum": "choice: SGD momentum 0.9 (the paper says only 'sgd', sec. 5.1)",
        "selection": "XBN paper sec. 5.1 and footnote 6 (best Recall@1 over every evaluated "
        "epoch, the pretrained network included)",
    },
}
# Where a ``paper`` run departs from a source it follows: appended to the run's record
# (result.json "deviations") at run time, not to RunConfig.deviations, which is in the run id
PROFILE_DEPARTURES: dict[str, tuple[str, ...]] = {
    "paper": (
        "random erasing mode 'const' (timm create_transform's default); timm's train.py, whose "
        "defaults the XBN paper follows (sec. 5.1), uses 'pixel'",
        "interpolation bilinear and crop_pct 0.875 (create_transform's defaults); timm's "
        "train.py takes them from resnet50's pretrained config (bicubic, crop_pct 0.95)",
    ),
}


def is_sourced(text: str) -> bool:
    """A source names a paper's section/table/footnote/appendix, or is "choice: <reason>"."""
    if text.startswith("choice: "):
        return len(text[len("choice: ") :].strip()) >= 10
    return bool(re.match(r"(XBN paper|thesis) (sec\.|table|footnote|appendix) ?[\dA-Z]", text))


def protocol_table(profile: str = "paper") -> str:
    """README's protocol table: every value of ``profile`` with its source (Markdown)."""
    values, sources = PROFILES[profile], PROFILE_SOURCES[profile]
    lines = ["| setting | value | source |", "| --- | --- | --- |"]
    # the profile's own order first, then the settings fixed in code (a stable order)
    keys = [k for k in values if k in sources] + [k for k in sources if k not in values]
    for key in keys:
        value = f"`{values[key]!r}`" if key in values else "(in code)"
        lines.append(f"| `{key}` | {value} | {sources[key]} |")
    return "\n".join(lines) + "\n"


MOCO_QUEUE_RATIO = 4096 / 50000  # PML's queue of 4096 on CIFAR's 50,000 training images

# Config overrides of a MoCo run per profile (make_config and bench.studies use them; the task
# itself is bench/engine/moco). ``paper``: PML's MoCo
# example with every value kept except the batch size, 128, as the XBN paper says (so lr 0.03,
# not the 0.06 of the official MoCo CIFAR demo at batch 512); trained from scratch. ``cpu``:
# the same path on Fashion-MNIST in minutes on two cores. m_per_class is unused by MoCo; it is
# set to the batch size so that the metric sampler's check has nothing to adapt.
MOCO_PROFILES: dict[str, dict[str, Any]] = {
    "paper": dict(
        task="moco",
        model="resnet18",
        pretrained=False,
        embedding_size=128,
        image_size=32,
        augment="moco",
        batch_size=128,
        m_per_class=128,
        memory_ratio=MOCO_QUEUE_RATIO,
        optimizer="sgd",
        lr=0.03,
        weight_decay=5e-4,
        temperature=0.1,
        epochs=200,
        warmup_epochs=0,
        amp=False,
        train_per_class=None,
        moco_momentum=0.99,
        moco_bn_splits=8,
        num_workers=8,
    ),
    "cpu": dict(
        task="moco",
        model="test_resnet",
        pretrained=False,
        embedding_size=128,
        image_size=28,
        augment="moco_tensor",
        batch_size=64,
        m_per_class=64,
        memory_ratio=MOCO_QUEUE_RATIO,
        optimizer="sgd",
        lr=0.06,
        weight_decay=5e-4,
        temperature=0.1,
        epochs=4,  # demo scale: epoch 2 is the early point of the claim; 12-minute demo
        warmup_epochs=0,
        amp=False,
        train_per_class=400,
        moco_momentum=0.99,
        moco_bn_splits=4,
        num_workers=0,
    ),
}
