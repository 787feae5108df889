"""The Slurm options without a cluster: what reaches submitit's sbatch script, the defaults of
each profile, sinfo's verdict on a request, stuck reasons, --dry-run and the weights check."""

from __future__ import annotations

import pytest
import torch
from click.testing import CliRunner
from submitit.slurm.slurm import _make_sbatch_string

from bench.config import make_config
from bench.launch.cell import check_weights
from bench.launch.cluster import Node, check_request, stuck
from bench.launch.request import SlurmRequest, default_request, parse_slurm_opts
from cli import main
from common import UserError

NODE = Node(
    "cpu", True, "n1", cpus=2, mem_mb=4000, gpus=0, features=frozenset({"avx2"}), state="idle"
)
GPU = Node("gpu", False, "g1", cpus=16, mem_mb=64000, gpus=4, features=frozenset(), state="idle")


def test_every_option_reaches_the_sbatch_script():
    req = SlurmRequest(
        cpus_per_job=3, gpus_per_job=2, partition="gpu", mem="16G", account="proj", qos="high",
        constraint="a100", timeout_min=90, array_parallelism=5,
        extra=parse_slurm_opts(["exclude=node3", "mail-type=END"]),
    )  # fmt: skip
    script = _make_sbatch_string(
        command="x", folder="/tmp/f/%j", map_count=7, **req.executor_parameters()
    )
    wanted = ("--cpus-per-task=3", "--gpus-per-node=2", "--partition=gpu", "--mem=16G",
              "--account=proj", "--qos=high", "--constraint=a100", "--time=90", "--array=0-6%5",
              "--exclude=node3", "--mail-type=END", "--signal=USR2@120")  # fmt: skip
    for line in wanted:
        assert f"#SBATCH {line}\n" in script
    assert "#SBATCH --requeue\n" in script
    one_minute = SlurmRequest(cpus_per_job=1, timeout_min=1).executor_parameters()
    assert one_minute["signal_delay_s"] == 10 and "gpus_per_node" not in one_minute


@pytest.mark.parametrize("minutes, delay", [(1, 10), (2, 30), (3, 90), (4, 120), (600, 120)])
def test_the_warning_never_comes_before_the_job_has_started(minutes, delay):
    """USR2 may come 60 s before the time asked for; 30 s are left for the job to start
    (by hand: 60 x minutes - 60 - 30, between 10 and 120)."""
    assert SlurmRequest(cpus_per_job=1, timeout_min=minutes).signal_delay_s == delay


def test_defaults_follow_the_profile():
    cpu = make_config("fashion-mnist", "xbm", 0, "cpu")
    paper = make_config("sop", "xbm", 0, "paper")
    assert default_request([cpu]) == SlurmRequest(cpus_per_job=1, gpus_per_job=0)
    assert default_request([cpu, paper]) == SlurmRequest(
        cpus_per_job=paper.num_workers + 1, gpus_per_job=1
    )
    assert default_request([paper], cpus_per_job=4, gpus_per_job=0).cpus_per_job == 4
    with pytest.raises(UserError, match="'lots'"):
        default_request([cpu], mem="lots")


@pytest.mark.parametrize(
    "item, match",
    [("exclude", "KEY=VALUE"), ("partition=x", "--partition"), ("time=5", "--timeout")],
)
def test_bad_slurm_opt_is_named(item, match):
    with pytest.raises(UserError, match=match):
        parse_slurm_opts([item])


def test_sinfo_check_names_what_no_node_has():
    nodes = [NODE, GPU]
    assert check_request(SlurmRequest(cpus_per_job=2), nodes) == "cpu"  # the default partition
    assert (
        check_request(SlurmRequest(cpus_per_job=8, gpus_per_job=4, partition="gpu"), nodes) == "gpu"
    )
    with pytest.raises(UserError, match=r"3 CPUs \(the most a node has: 2\)"):
        check_request(SlurmRequest(cpus_per_job=3), nodes)
    with pytest.raises(UserError, match=r"1 GPUs \(the most a node has: 0\)"):
        check_request(SlurmRequest(cpus_per_job=1, gpus_per_job=1), nodes)
    with pytest.raises(UserError, match="8G memory"):
        check_request(SlurmRequest(cpus_per_job=1, mem="8G"), nodes)
    with pytest.raises(UserError, match="feature 'a100'"):
        check_request(SlurmRequest(cpus_per_job=1, constraint="a100"), nodes)
    with pytest.raises(UserError, match="partition 'big' does not exist.*cpu, gpu"):
        check_request(SlurmRequest(cpus_per_job=1, partition="big"), nodes)


def test_stuck_reasons():
    assert stuck("PartitionConfig", True, True)
    assert stuck("QOSMaxCpuPerJobLimit", True, True)
    assert not stuck("Resources", True, False) and not stuck("Priority", True, False)
    assert stuck("AssocGroupCpuLimit", True, False) and not stuck("AssocGroupCpuLimit", True, True)
    assert stuck("ReqNodeNotAvail, UnavailableNodes:n1", False, False)
    assert not stuck("ReqNodeNotAvail, UnavailableNodes:n1", True, False)


def test_slurm_options_are_refused_for_another_launcher(tmp_path):
    out = CliRunner().invoke(main, ["reproduce", "--study", "demo", "--cpus-per-job", "2",
                                    "--results", str(tmp_path)])  # fmt: skip
    assert out.exit_code == 2 and "--cpus-per-job: only with --launcher slurm" in out.output


def test_dry_run_prints_cells_script_and_call(tmp_path):
    args = ["reproduce", "--study", "demo", "--variant", "xbm", "--seeds", "0,1", "--launcher",
            "slurm", "--dry-run", "--results", str(tmp_path / "r"), "--data", str(tmp_path / "d"),
            "--mem", "2g", "--slurm-opt", "exclude=n9"]  # fmt: skip
    from bench.studies import cells

    out = CliRunner().invoke(main, args)
    assert out.exit_code == 0, out.output
    for cfg in cells("demo", variants=["xbm"], seeds=[0, 1]):
        assert cfg.run_id in out.output
    for line in ("#SBATCH --cpus-per-task=1", "#SBATCH --mem=2G", "#SBATCH --exclude=n9",
                 "#SBATCH --array=0-1%2", "submitit.core._submit", "threads=1",
                 "nothing was submitted"):  # fmt: skip
        assert line in out.output
    assert not (tmp_path / "r").exists()  # nothing written, nothing queued


def test_weights_are_checked_before_anything_runs(tmp_path):
    import timm

    cfg = make_config("fashion-mnist", "xbm", 0, "cpu", model="test_resnet", pretrained="true")
    good, bad = tmp_path / "w.pth", tmp_path / "bad.pth"
    torch.save(timm.create_model("test_resnet", num_classes=0).state_dict(), good)
    bad.write_bytes(b"not weights")
    assert check_weights([cfg], str(good)) == ["test_resnet"]
    with pytest.raises(UserError, match=f"{bad}.*cannot be read"):
        check_weights([cfg], str(bad))
    with pytest.raises(UserError, match="not in timm's cache and no --pretrained-file"):
        check_weights([cfg], None)
    assert check_weights([make_config("fashion-mnist", "xbm", 0, "cpu")], None) == []
