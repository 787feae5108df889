"""The command line: --help and --version everywhere, stubs fail loudly, bad input exits 2."""

import click
import pytest
from click.testing import CliRunner

from cli import main


def _commands(group, prefix=()):
    for name, cmd in group.commands.items():
        yield prefix + (name,), cmd
        if isinstance(cmd, click.Group):
            yield from _commands(cmd, prefix + (name,))


ALL = [path for path, _ in _commands(main)]


@pytest.mark.parametrize("path", [()] + ALL, ids=lambda p: " ".join(p) or "xbmbench")
def test_help_and_version_on_every_command(path):
    runner = CliRunner()
    assert runner.invoke(main, [*path, "--help"]).exit_code == 0
    out = runner.invoke(main, [*path, "--version"])
    assert out.exit_code == 0 and "0.1.0" in out.output


def _run(*args: str):
    """``xbmbench run ARGS`` through click's runner."""
    return CliRunner().invoke(main, ["run", *args])


def test_run_rejects_unknown_variant_and_option(tmp_path):
    r = _run("--dataset", "fashion-mnist", "--variant", "xbnn", "--results", str(tmp_path))
    assert r.exit_code == 2 and "unknown variant 'xbnn'" in r.output and "Traceback" not in r.output
    r = _run("--dataset", "fashion-mnist", "--variant", "pc_xbn", "--opt", "lamda=1",
             "--results", str(tmp_path))  # fmt: skip
    assert r.exit_code == 2 and "lamda" in r.output and "lambda_mu" in r.output


def test_run_without_prepared_dataset_names_it(tmp_path):
    r = _run("--dataset", "sop", "--variant", "xbn", "--data", str(tmp_path / "nodata"),
             "--results", str(tmp_path))  # fmt: skip
    assert r.exit_code == 2 and "sop" in r.output and "Traceback" not in r.output
    assert not (tmp_path / "runs").exists()  # nothing half-written


def test_paper_profile_offline_without_weights_is_a_clear_error(tiny_data, tmp_path):
    base = ("--dataset", "fashion-mnist", "--variant", "xbn", "--profile", "paper",
            "--data", tiny_data, "--results", str(tmp_path))  # fmt: skip
    r = _run(*base, "--model", "resnet18")
    assert r.exit_code == 2 and "not in timm's cache" in r.output
    assert "--pretrained-file" in r.output
    r = _run(*base, "--pretrained-file", str(tmp_path / "x.pth"))
    assert r.exit_code == 2 and "x.pth" in r.output


@pytest.mark.parametrize(
    "args,message",
    [
        (
            ["--batch-size", "42", "--dataset", "sop"],
            "batch_size must be a multiple of m_per_class",
        ),
        (["--head", "foo", "--dataset", "sop"], "head must be one of l2, l2_bn, l2_ln, got 'foo'"),
        (["--epochs", "0", "--dataset", "sop"], "epochs must be an integer >= 1, got 0"),
        (["--miner-distance", "manhattan", "--dataset", "sop"], "miner_distance must be one of"),
        (["--profile", "gpu", "--dataset", "sop"], "Invalid value for '--profile'"),
    ],
)
def test_run_rejects_bad_config_values_before_anything_runs(args, message, tmp_path):
    r = _run("--variant", "xbn", "--results", str(tmp_path), *args)
    assert r.exit_code == 2 and message in r.output and "Traceback" not in r.output
    assert not (tmp_path / "runs").exists()


# ----- every bad value exits 2 before anything runs, naming the field and the value ---------------
# (variant, arguments, field, the value as the message shows it); hand-written, not derived from
# the specs, so that a loosened spec fails here
BAD_VALUES = [
    ("xbn", ["--grad-clip", "-1"], "grad_clip", "-1.0"),  # gradient ascent
    ("xbn", ["--grad-clip", "0"], "grad_clip", "0.0"),
    ("xbn", ["--temperature", "0"], "temperature", "0.0"),  # loss 0 on every step
    ("xbn", ["--temperature", "nan"], "temperature", "nan"),
    ("xbn", ["--lr", "nan"], "lr", "nan"),
    ("xbn", ["--lr", "inf"], "lr", "inf"),
    ("xbn", ["--lr", "0"], "lr", "0.0"),
    ("xbn", ["--lr", "-0.001"], "lr", "-0.001"),
    ("xbn", ["--lr", "fast"], "lr", "'fast'"),
    ("xbn", ["--warmup-lr", "-0.001"], "warmup_lr", "-0.001"),
    ("xbn", ["--weight-decay", "-0.0001"], "weight_decay", "-0.0001"),
    ("xbn", ["--drift-probe", "0"], "drift_probe", "0"),
    ("xbn", ["--memory-probe-points", "-1"], "memory_probe_points", "-1"),
    ("xbn", ["--memory-probe-size", "0"], "memory_probe_size", "0"),
    ("xbn", ["--augment-draws", "random"], "augment_draws", "'random'"),
    ("xbn", ["--lr-step-epochs", "0"], "lr_step_epochs", "0"),
    ("xbn", ["--lr-gamma", "0"], "lr_gamma", "0.0"),
    ("xbn", ["--lr-gamma", "1.5"], "lr_gamma", "1.5"),
    ("xbn", ["--epochs", "0"], "epochs", "0"),
    ("xbn", ["--epochs", "1.5"], "epochs", "'1.5'"),
    ("xbn", ["--epochs", "abc"], "epochs", "'abc'"),
    ("xbn", ["--warmup-epochs", "-1"], "warmup_epochs", "-1"),
    ("xbn", ["--batch-size", "1"], "batch_size", "1"),
    ("xbn", ["--batch-size", "0"], "batch_size", "0"),
    ("xbn", ["--m-per-class", "1"], "m_per_class", "1"),
    ("xbn", ["--memory-ratio", "-0.5"], "memory_ratio", "-0.5"),
    ("xbn", ["--memory-ratio", "1.5"], "memory_ratio", "1.5"),
    ("xbn", ["--memory-ratio", "nan"], "memory_ratio", "nan"),
    ("xbn", ["--embedding-size", "0"], "embedding_size", "0"),
    ("xbn", ["--image-size", "-28"], "image_size", "-28"),
    ("xbn", ["--pos-margin", "-0.1"], "pos_margin", "-0.1"),
    ("xbn", ["--neg-margin", "nan"], "neg_margin", "nan"),
    ("xbn", ["--train-per-class", "0"], "train_per_class", "0"),
    ("xbn", ["--num-workers", "-1"], "num_workers", "-1"),
    ("xbn", ["--moco-momentum", "1.5"], "moco_momentum", "1.5"),
    ("xbn", ["--moco-bn-splits", "0"], "moco_bn_splits", "0"),
    ("xbn", ["--amp", "maybe"], "amp", "'maybe'"),
    ("xbn", ["--pretrained", "yes"], "pretrained", "'yes'"),
    ("xbn", ["--augment", "moco"], "augment", "'moco'"),  # MoCo's views in a metric run
    ("xbn", ["--optimizer", "lbfgs"], "optimizer", "'lbfgs'"),
    ("xbn", ["--loss", "triplet"], "loss", "'triplet'"),
    ("xbn", ["--memory-init", "full"], "memory_init", "'full'"),
    ("xbn", ["--task", "byol"], "task", "'byol'"),
    ("xbn", ["--eval-ks", "5"], "eval_ks", "'5'"),
    ("xbn", ["--eval-ks", "1"], "eval_ks", "'1'"),
    ("xbn", ["--eval-ks", "1,10,10"], "eval_ks", "'1,10,10'"),
    ("xbn", ["--eval-ks", "0,1,10"], "eval_ks", "'0,1,10'"),
    ("xbn", ["--eval-ks", "1,ten"], "eval_ks", "'1,ten'"),
    ("xbn", ["--seed", "-1"], "seed", "-1"),
    ("pc_xbn", ["--opt", "lambda_mu=NaN"], "lambda_mu", "nan"),
    ("pc_xbn", ["--opt", "lambda_mu=abc"], "lambda_mu", "'abc'"),
    ("pc_xbn", ["--opt", "lambda_mu=-0.1"], "lambda_mu", "-0.1"),
    ("pc_xbn", ["--opt", "lambda_mu=1.5"], "lambda_mu", "1.5"),
    ("pc_xbn", ["--opt", "lambda_sigma=inf"], "lambda_sigma", "inf"),
    ("sc_xbn", ["--opt", "lambda_sigma=2"], "lambda_sigma", "2.0"),
    ("pc_xbn", ["--opt", "normalize_absent=maybe"], "normalize_absent", "'maybe'"),
    ("sc_xbn", ["--opt", "normalize_absent=yes"], "normalize_absent", "'yes'"),
    ("delayed_xbn", ["--opt", "delay_epochs=abc"], "delay_epochs", "'abc'"),
    ("delayed_xbn", ["--opt", "delay_epochs=1.5"], "delay_epochs", "'1.5'"),
    ("xbn", ["--opt", "delay_epochs=-1"], "delay_epochs", "-1"),
    ("axbn", ["--opt", "p0=-1"], "p0", "-1.0"),
    ("axbn", ["--opt", "q=nan"], "q", "nan"),
    ("axbn", ["--opt", "r=-0.01"], "r", "-0.01"),
    ("axbn", ["--opt", "gain_interval=0"], "gain_interval", "0"),
    ("axbn", ["--opt", "gain_interval=2.5"], "gain_interval", "'2.5'"),
    ("xbm_star", ["--opt", "memory_weight=-1"], "memory_weight", "-1.0"),
    ("xbm", ["--opt", "miner_distance=manhattan"], "miner_distance", "'manhattan'"),
]


def _ids(rows):
    return [f"{v}:{' '.join(a)}" for v, a, *_ in rows]


def _reject(tmp_path, variant, *args):
    """``run`` on a data folder that does not exist: a value check that fires later than the
    dataset would report the missing manifest instead."""
    res = tmp_path / "results"
    r = _run("--dataset", "fashion-mnist", "--variant", variant, "--data", str(tmp_path / "none"),
             "--results", str(res), *args)  # fmt: skip
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert "manifest" not in r.output  # refused before the dataset was read
    assert not res.exists()  # no run folder, no results folder
    return r.output


@pytest.mark.parametrize("variant,args,field,shown", BAD_VALUES, ids=_ids(BAD_VALUES))
def test_run_rejects_every_bad_value_before_anything_runs(variant, args, field, shown, tmp_path):
    out = _reject(tmp_path, variant, *args)
    assert f"Error: {field} must be " in out and f"got {shown}" in out


def test_eval_ks_without_1_or_10_says_why(tmp_path):
    out = _reject(tmp_path, "xbn", "--eval-ks", "5")
    assert "containing 1 and 10" in out and "Recall@1 and Recall@10" in out


def _option_rows():
    """Every declared option of every variant, with a value of the wrong type and one below its
    lower bound: a new variant's options are tested without new code."""
    import variants
    from variants import option_specs

    wrong = {int: "abc", float: "abc", bool: "maybe", str: "nosuch"}
    for v in variants.VARIANTS:
        for name, spec in option_specs(v).items():
            yield v, name, wrong[spec.kind]
            if spec.kind is float:
                yield v, name, "nan"
            low = spec.gt if spec.gt is not None else spec.ge
            if low is not None:
                yield v, name, str(low - 1 if spec.ge is not None else low)


OPTION_ROWS = list(_option_rows())


@pytest.mark.parametrize(
    "variant,name,text", OPTION_ROWS, ids=[f"{v}.{n}={t}" for v, n, t in OPTION_ROWS]
)
def test_run_rejects_each_declared_option_out_of_type_or_range(variant, name, text, tmp_path):
    out = _reject(tmp_path, variant, "--opt", f"{name}={text}")
    assert f"Error: {name} must be " in out and "got " in out


@pytest.mark.parametrize(
    "args,shown",
    [
        (["--threads", "-1"], "-1"),
        (["--threads", "0"], "0"),
        (["--device", "foo"], "'foo'"),
        (["--device", "cuda:99"], "'cuda:99'"),
        (["--opt", "lambda_mu"], "'lambda_mu'"),  # no '='
        (["--opt", "lambda_mu=0.1", "--opt", "lambda_mu=0.2"], "lambda_mu given twice"),
        (["--pretrained-file", "no-such-weights.pth"], "no-such-weights.pth"),
        (["--pretrained-file", "."], "'.'"),  # a folder
    ],
)
def test_run_rejects_bad_command_line_values(args, shown, tmp_path):
    out = _reject(tmp_path, "pc_xbn", *args)
    assert shown in out


def test_cuda_without_cuda_is_refused(tmp_path, monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    out = _reject(tmp_path, "xbn", "--device", "cuda")
    assert "device 'cuda' is not available: this machine has 0 CUDA GPUs" in out


def test_good_boundary_values_pass_validation(tmp_path):
    """Boundaries of the specs are accepted: the run goes on to read the dataset (absent here;
    SOP, which `run` cannot prepare by itself as it does the demo's datasets)."""
    r = _run("--dataset", "sop", "--variant", "pc_xbn", "--data", str(tmp_path / "none"),
             "--results", str(tmp_path / "r"), "--lr", "1e-12", "--memory-ratio", "1",
             "--weight-decay", "0", "--lr-gamma", "1", "--warmup-epochs", "0", "--drift-probe", "1",
             "--eval-ks", "1,10", "--amp", "TRUE", "--m-per-class", "2", "--batch-size", "20",
             "--opt", "lambda_mu=0", "--opt", "lambda_sigma=1", "--opt", "normalize_absent=0",
             "--opt", "delay_epochs=0", "--opt", "miner_distance=cosine", "--threads", "1",
             "--device", "cpu")  # fmt: skip
    assert r.exit_code == 2 and "no manifest for sop" in r.output, r.output


def test_eval_ks_list_is_recorded_and_evaluated(tiny_data, tmp_path):
    """--eval-ks 10,5,1 runs, is stored sorted, and every K has its recall column, each at
    least the recall at the smaller K (a nearest-neighbour recall grows with K)."""
    import csv
    import json

    r = _run("--dataset", "fashion-mnist", "--variant", "xbm", "--data", tiny_data,
             "--results", str(tmp_path), "--eval-ks", "10,5,1", "--train-per-class", "12",
             "--epochs", "1", "--embedding-size", "16", "--drift-probe", "8",
             "--lr-step-epochs", "1")  # fmt: skip
    assert r.exit_code == 0, r.output
    (run,) = (tmp_path / "runs").iterdir()
    assert json.loads((run / "config.json").read_text())["eval_ks"] == [1, 5, 10]
    rows = list(csv.DictReader((run / "metrics.csv").open()))
    assert [r["phase"] for r in rows] == ["init", "warmup", "main"]
    for row in rows:
        r1, r5, r10 = (float(row[f"recall@{k}"]) for k in (1, 5, 10))
        assert 0 <= r1 <= r5 <= r10 <= 100


@pytest.mark.parametrize("kind", ["junk", "foreign"])
def test_unloadable_pretrained_file_is_named_before_training(kind, tiny_data, tmp_path):
    import torch

    path = tmp_path / f"{kind}.pth"
    if kind == "junk":
        path.write_bytes(b"these are not weights")
    else:  # a readable checkpoint of something else: would leave the model randomly initialised
        torch.save({"encoder.weight": torch.zeros(2, 2)}, path)
    res = tmp_path / "results"
    args = ("--pretrained", "true", "--pretrained-file", str(path))
    r = _run("--dataset", "fashion-mnist", "--variant", "xbn", "--data", tiny_data,
             "--results", str(res), *args)  # fmt: skip
    assert r.exit_code == 2 and "Traceback" not in r.output, r.output
    assert f"pretrained weights {path}" in r.output
    why = "cannot be read as a checkpoint" if kind == "junk" else "not a checkpoint of this model"
    assert why in r.output
    assert not res.exists()  # read before any run folder is written


def test_a_checkpoint_of_the_model_loads_exactly():
    import tempfile

    import timm
    import torch

    from bench.engine.model import build_backbone

    src = timm.create_model("test_resnet", pretrained=False, num_classes=0)
    with torch.no_grad():
        for p in src.parameters():
            p.copy_(torch.arange(p.numel(), dtype=p.dtype).reshape(p.shape) / 1000)
    with tempfile.TemporaryDirectory() as d:
        path = f"{d}/w.pth"
        torch.save({"state_dict": src.state_dict()}, path)  # wrapped, as training scripts save
        net = build_backbone("test_resnet", 3, True, path)
    for _name, p in net.named_parameters():
        n = p.numel()
        assert torch.equal(p.detach(), (torch.arange(n, dtype=p.dtype) / 1000).reshape(p.shape))


@pytest.mark.parametrize(
    "args,shown",
    [
        (["grid", "list", "--study", "demo", "--seeds", "a,b"], "'a,b'"),
        (["grid", "list", "--study", "demo", "--seeds", "1.5"], "'1.5'"),
        (["grid", "list", "--study", "demo", "--seeds", "-1"], "'-1'"),
        (["reproduce", "--study", "demo", "--seeds", "x"], "'x'"),
        (["reproduce", "--study", "demo", "--jobs", "0"], "0"),
        (["reproduce", "--study", "demo", "--launcher", "k8s"], "'k8s'"),
        (["reproduce", "--study", "demo", "--timeout-min", "0"], "0"),
    ],
)
def test_grid_and_reproduce_reject_bad_values(args, shown, tmp_path):
    r = CliRunner().invoke(main, [*args, "--results", str(tmp_path / "res")])
    assert r.exit_code == 2 and shown in r.output and "Traceback" not in r.output, r.output
    assert not (tmp_path / "res").exists()
