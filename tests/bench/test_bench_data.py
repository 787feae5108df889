"""``bench data``: generated JPEGs, the trainer's transform, the JSON's shape and the estimate
(no timing is asserted: only that rates are positive and the arithmetic on them is right)."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner
from PIL import Image

from bench.perf import input_pipeline as bd
from commands.perf import bench_data

KEYS = {"config", "decode_only", "stages", "rows", "estimate"}
ROW_KEYS = {
    "workers",
    "images",
    "images_per_s",
    "images_per_s_per_worker",
    "images_per_s_with_startup",
}


def test_jpegs_are_seeded_and_within_the_size_range(tmp_path):
    a = [tmp_path / "a" / f"{i}.jpg" for i in range(4)]
    b = [tmp_path / "b" / f"{i}.jpg" for i in range(4)]
    bd.write_jpegs(a, seed=3)
    bd.write_jpegs(b, seed=3, processes=2)  # the same files whatever the parallelism
    for pa, pb in zip(a, b):
        assert pa.read_bytes() == pb.read_bytes()
        with Image.open(pa) as im:
            assert im.format == "JPEG" and im.mode == "RGB"
            assert all(bd.SIDES[0] <= s <= bd.SIDES[1] for s in im.size)
    bd.write_jpeg(tmp_path / "c.jpg", (4, 0))
    assert (tmp_path / "c.jpg").read_bytes() != a[0].read_bytes()


def test_the_transform_is_the_trainers_paper_transform(tmp_path, monkeypatch):
    import bench.engine.data as engine_data

    seen = []
    real = engine_data._transforms
    monkeypatch.setattr(
        engine_data, "_transforms", lambda cfg, training: seen.append(cfg) or real(cfg, training)
    )
    tf = bd.paper_train_transform()
    assert [(c.profile, c.augment, c.image_size) for c in seen] == [("paper", "randaugment", 224)]
    bd.write_jpeg(tmp_path / "x.jpg", (0, 0))
    x = tf(bd.decode(tmp_path / "x.jpg"))
    assert x.shape == (3, 224, 224) and x.dtype == torch.float32


def test_bench_data_json_with_no_workers(tmp_path):
    torch.set_num_threads(2)
    args = ["--images", "6", "--workers", "0", "--batch-size", "2", "--json"]
    out = CliRunner().invoke(bench_data, args + ["--root", str(tmp_path)])
    assert out.exit_code == 0, out.output
    result = json.loads(out.output)
    assert set(result) == KEYS
    assert len(list(tmp_path.glob("*.jpg"))) == 6  # --root keeps the files
    (row,) = result["rows"]
    assert set(row) == ROW_KEYS and row["workers"] == 0 and row["images"] == 6
    assert row["images_per_s"] > 0 and row["images_per_s_per_worker"] == row["images_per_s"]
    assert result["decode_only"]["images_per_s"] > 0
    assert result["config"]["output_shape"] == [3, 224, 224]
    est = result["estimate"]
    assert est["per_worker_images_per_s"] == row["images_per_s"]
    assert [t["gpu_images_per_s"] for t in est["targets"]] == list(bd.TARGETS)


def test_bench_data_table():
    torch.set_num_threads(2)
    args = ["--images", "4", "--workers", "0", "--batch-size", "2"]
    out = CliRunner().invoke(bench_data, args)
    assert out.exit_code == 0, out.output
    assert "img/s/worker" in out.output and "needs" in out.output


@pytest.mark.parametrize(
    "args",
    [
        ["--workers", "a,1"],
        ["--workers", "-1"],
        ["--images", "0"],
        ["--images", "5", "--workers", "0,2", "--batch-size", "2"],  # 2 workers need 6
    ],
)
def test_bad_arguments_exit_2(args):
    out = CliRunner().invoke(bench_data, args)
    assert out.exit_code == 2, out.output


def test_estimate_by_hand():
    rows = [
        {"workers": 0, "images_per_s_per_worker": 200.0},
        {"workers": 1, "images_per_s_per_worker": 150.0},
        {"workers": 2, "images_per_s_per_worker": 140.0},
    ]
    est = bd.estimate(rows)
    assert est["per_worker_images_per_s"] == 150.0  # the one-worker row
    # 1200 / 150 = 8 workers; 2600 / 150 = 17.33 -> 18 > 16; 16 x 150 = 2400 < 2600
    assert [t["workers_needed"] for t in est["targets"]] == [8, 18]
    assert [t["fits_in_node_workers"] for t in est["targets"]] == [True, False]
    assert est["input_bound"] is True and est["node_images_per_s"] == 2400.0
    # without a one-worker row: the best per-worker rate; 1200 / 200 = 6, 2600 / 200 = 13
    est = bd.estimate([rows[0], rows[2]])
    assert [t["workers_needed"] for t in est["targets"]] == [6, 13]
    assert est["input_bound"] is False


def test_too_few_images_for_the_workers_is_a_value_error(tmp_path):
    paths = [tmp_path / "a.jpg"]
    with pytest.raises(ValueError, match="need at least 4 images"):
        bd.loader_rate(paths, bd._image_size, 1, 2)


def test_the_stages_are_the_transforms_steps_and_add_up(tmp_path):
    """Every step of the paper transform is one stage, named as the issue names them, in order,
    with decode first and collation last; the shares add up to 1; and the steps applied one by
    one give the whole transform's tensor under the same random state."""
    paths = [tmp_path / f"{i}.jpg" for i in range(4)]
    bd.write_jpegs(paths, seed=1)
    tf = bd.paper_train_transform()
    rows = bd.stages(paths, tf, batch_size=2, seed=0)
    names = [r["stage"] for r in rows]
    assert names == [
        "decode (read and decompress)", "decode (convert to RGB)", "crop and resize", "flip",
        "RandAugment", "to tensor", "normalise", "erasing", "collation",
    ]  # fmt: skip
    assert sum(r["share"] for r in rows) == pytest.approx(1.0)
    assert all(r["ms_per_image"] >= 0 for r in rows)
    import random

    import numpy as np

    def seed_all(seed):  # timm draws from python's random and numpy's, erasing from torch's
        random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)

    image = bd.decode(paths[0])
    for seed in range(5):
        seed_all(seed)
        whole = tf(image)
        seed_all(seed)
        assert torch.equal(bd.stage_sequence(image, tf), whole)
