"""The Markdown page of ``make gpu-check`` (gpu_check.md), from its JSON report: pure functions.

The sections are README's GPU table: the device, images/s of no_xbm and each variant with the
overhead, the memory step against PML's, the input pipeline per worker and the end-to-end epoch.
A section whose step did not run, or failed before measuring, is left out.
"""

from __future__ import annotations

from typing import Any

OVERHEAD_TARGET = 0.03  # the goal: every variant's paper step within 3% of no_xbm's


def _pct(x: float | None) -> str:
    return "-" if x is None else f"{100 * x:+.1f}%"


def _details(report: dict[str, Any], step: str) -> dict[str, Any]:
    return report["steps"].get(step, {}).get("details") or {}


def _head(report: dict[str, Any]) -> list[str]:
    env = report["env"]
    lines = [
        f"# gpu-check: {env['device_name']}",
        "",
        f"torch {env['torch']}, CUDA {env['cuda']}, cuDNN {env['cudnn']}, {env['cpus']} CPUs, "
        f"commit {env['git_commit']}, {report['started_at']}",
        "",
        "| step | status | seconds | note |",
        "| --- | --- | ---: | --- |",
    ]
    for name, r in report["steps"].items():
        note = (r.get("error") or "").replace("|", "/")
        lines.append(f"| {name} | {r['status']} | {r.get('seconds', 0):.0f} | {note} |")
    return lines


def _train(train: dict[str, Any]) -> list[str]:
    if not train.get("rows"):
        return []
    c = train["config"]
    lines = [
        "",
        "## Training step: paper profile, synthetic 224 px images (bench train)",
        "",
        f"{c['model']}, batch {c['batch_size']}, median of {c['steps']} steps; overhead target "
        f"{100 * OVERHEAD_TARGET:.0f}%, over it: {', '.join(train['over_target']) or 'none'}",
        "",
        "| variant | memory | img/s | ms/step | overhead vs no_xbm | AMP |",
        "| --- | ---: | ---: | ---: | ---: | --- |",
    ]
    for r in train["rows"]:
        lines.append(
            f"| {r['name']} | {r['memory_size']} | {r['images_per_s']:.0f} | "
            f"{r['ms_per_step']:.1f} | {_pct(r['overhead_vs_no_xbm'])} | {r.get('amp_used')} |"
        )
    return lines


def _memory(memory: dict[str, Any]) -> list[str]:
    runs = memory.get("by_memory_size") or {}
    if not runs:
        return []
    sizes = list(runs)
    by = {m: {r["name"]: r for r in runs[m]["rows"]} for m in sizes}
    lines = [
        "",
        "## Memory step against PML's CrossBatchMemory (bench memory, batch 64, d 512)",
        "",
        f"targets missed: {'; '.join(memory.get('missed_targets') or []) or 'none'}",
        "",
        "| variant | " + " | ".join(f"ms @{m} | x PML @{m}" for m in sizes) + " |",
        "| --- |" + " ---: | ---: |" * len(sizes),
    ]
    for name in by[sizes[0]]:
        cells = [
            f"{by[m][name]['ms_per_step']:.2f} | {by[m][name]['ratio_to_pml']:.2f}" for m in sizes
        ]
        lines.append(f"| {name} | " + " | ".join(cells) + " |")
    return lines


def _data(data: dict[str, Any]) -> list[str]:
    if not data.get("rows"):
        return []
    e = data["estimate"]
    lines = [
        "",
        "## Input pipeline per DataLoader worker (bench data: decode + paper transforms)",
        "",
        "| workers | img/s | img/s per worker |",
        "| ---: | ---: | ---: |",
    ]
    for r in data["rows"]:
        lines.append(
            f"| {r['workers']} | {r['images_per_s']:.0f} | {r['images_per_s_per_worker']:.0f} |"
        )
    needs = "; ".join(
        f"{t['gpu_images_per_s']} img/s needs {t['workers_needed']} workers" for t in e["targets"]
    )
    lines += [
        "",
        f"decode alone: {data['decode_only']['images_per_s']:.0f} img/s; per worker "
        f"{e['per_worker_images_per_s']:.0f} img/s: {needs}",
    ]
    return lines


def _epoch(epoch: dict[str, Any], verdict: str | None) -> list[str]:
    if not epoch.get("pipeline"):
        return []
    p = epoch["pipeline"]
    lines = [
        "",
        "## One epoch end to end (generated SOP tree, xbmbench run --profile paper)",
        "",
        f"- {epoch['variant']}, {epoch['train_images']} train JPEGs, {epoch['num_workers']} "
        f"workers; weights: {epoch['weights']}",
        f"- input pipeline alone: {p['images_per_s']:.0f} img/s "
        f"({p['images_per_s_with_startup']:.0f} with worker start-up)",
    ]
    if "step_images_per_s" in epoch:
        lines.append(
            f"- whole training step: {epoch['step_images_per_s']:.0f} img/s "
            f"({100 * epoch['step_over_pipeline']:.0f}% of the pipeline's rate)"
        )
    if verdict:
        lines.append(f"- {verdict}")
    return lines


def input_bound(report: dict[str, Any]) -> str | None:
    """The loader's rate against the GPU step's on synthetic images, where both were measured."""
    epoch = _details(report, "epoch")
    rows = _details(report, "train").get("rows", [])
    gpu = next((r["images_per_s"] for r in rows if r["name"] == epoch.get("variant")), None)
    if gpu is None or not epoch.get("pipeline"):
        return None
    loader = epoch["pipeline"]["images_per_s"]
    verdict = "input-bound" if loader < gpu else "not input-bound"
    return (
        f"{verdict}: the loader gives {loader:.0f} img/s with {epoch['num_workers']} workers, "
        f"the GPU step on synthetic images {gpu:.0f} img/s"
    )


def summary_markdown(report: dict[str, Any]) -> str:
    lines = _head(report)
    lines += _train(_details(report, "train"))
    lines += _memory(_details(report, "memory"))
    lines += _data(_details(report, "data"))
    lines += _epoch(_details(report, "epoch"), input_bound(report))
    return "\n".join(lines) + "\n"
