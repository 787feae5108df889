"""``xbmbench data``: prepare, info and fetch, a thin click layer over ``data_prep``."""

from __future__ import annotations

import json
from pathlib import Path

import click

from data_prep.fashion_mnist import fetch_fashion_mnist
from data_prep.folder import KIND, prepare_folder
from data_prep.load import fingerprint, load_manifest
from data_prep.manifest import default_data_dir, prepare, summarise
from data_prep.registry import REGISTRY, get_source

CONTEXT = {"help_option_names": ["-h", "--help"]}
NAMES = ", ".join(REGISTRY)


@click.group("data", context_settings=CONTEXT)
def data() -> None:
    """Prepare datasets from their official files and inspect them."""


@data.command(
    "prepare",
    context_settings=CONTEXT,
    help=f"Turn the official files of dataset NAME ({NAMES}) into DATA/NAME/manifest.csv; "
    f"or, with NAME `{KIND}` and --name, your own images (one sub-folder per class, or a CSV "
    "path,label[,split][,superclass]) into DATA/NAME/, usable as --dataset NAME.",
)
@click.argument("name")
@click.option(
    "--root",
    required=True,
    type=click.Path(path_type=Path),
    help="Folder with the files downloaded from the dataset's official page; for "
    f"`{KIND}`: the folder of class sub-folders, or the CSV file.",
)
@click.option(
    "--name",
    "dataset_name",
    default=None,
    help=f"`{KIND}` only: the dataset's name (letters, digits, . _ -), as --dataset takes it.",
)
@click.option(
    "--data",
    "out",
    type=click.Path(path_type=Path),
    default=None,
    help="Data folder, the one every command reads (--data); the manifest goes to "
    "DATA/NAME/. [$XBMBENCH_DATA, else ./data]",
)
@click.option(
    "--check-images", is_flag=True, help="Fail, listing the first ten, if any image is missing."
)
@click.option(
    "--crop-to",
    type=click.Path(path_type=Path),
    default=None,
    help="DeepFashion2 only: write each item's crop once into this folder and use the crops.",
)
def prepare_command(
    name: str,
    root: Path,
    dataset_name: str | None,
    out: Path | None,
    check_images: bool,
    crop_to: Path | None,
) -> None:
    if name == KIND:
        if crop_to is not None:
            raise click.UsageError(f"--crop-to does not apply to {KIND}")
        prepare_folder(root, dataset_name, out, check_images=check_images)
        return
    if dataset_name is not None:
        raise click.UsageError(f"--name applies to `{KIND}` only, not to {name}")
    prepare(name, root, out, check_images=check_images, crop_to=crop_to)


@data.command("info", context_settings=CONTEXT)
@click.argument("name")
@click.option(
    "--data",
    "data_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Data folder holding NAME/manifest.csv. Default: $XBMBENCH_DATA, else ./data.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the counts as JSON.")
def info_command(name: str, data_dir: Path | None, as_json: bool) -> None:
    """Per split: the number of images, classes and superclasses of a prepared dataset, and its
    fingerprint (the content hash run records are checked against)."""
    data_dir = data_dir if data_dir is not None else default_data_dir()
    source = get_source(name, data_dir)  # a folder dataset is found there
    counts = summarise(load_manifest(name, data_dir), source.splits)  # every column checked
    if as_json:
        click.echo(json.dumps(counts, indent=2))
        return
    click.echo(f"{'split':<8} {'images':>8} {'classes':>8} {'superclasses':>13}")
    for split, c in counts.items():
        click.echo(f"{split:<8} {c['images']:>8,} {c['classes']:>8,} {c['superclasses']:>13}")
    click.echo(f"fingerprint {fingerprint(data_dir, name)}")


@data.command("fetch", context_settings=CONTEXT)
@click.argument("name")
@click.option(
    "--out",
    type=click.Path(path_type=Path),
    default=None,
    help="Raw folder for the files. Default: DATA/raw/NAME, DATA = $XBMBENCH_DATA, else ./data.",
)
def fetch_command(name: str, out: Path | None) -> None:
    """Get the official files of NAME (fashion-mnist only: the others need a licence or a form):
    copied from Debian's dataset-fashion-mnist package when installed, else downloaded;
    SHA-256 checked."""
    source = get_source(name)
    if name != "fashion-mnist":
        raise click.UsageError(
            f"only fashion-mnist can be fetched; download {name} from {source.url} "
            f"and run `xbmbench data prepare {name} --root <folder>`"
        )
    out = out if out is not None else default_data_dir() / "raw" / name
    folder = fetch_fashion_mnist(out)
    click.echo(
        f"{name}: the four files are in {folder}; "
        f"next: xbmbench data prepare {name} --root {folder}"
    )
