"""`vpipe train-style`: train a fast network for one painting into styles/<name>/."""

from __future__ import annotations

import dataclasses
import re
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from .. import styles
from ..errors import ModelError, UsageError
from ..job import name_from_path
from ..logs import format_seconds
from ..models import lookup

if TYPE_CHECKING:
    from ..teacher import Teacher


def _net(choice: str | None) -> tuple[str, Path]:
    """The feature network for the loss: vgg19 where its weights are present, else squeezenet."""
    if choice:
        return choice, lookup.verified(lookup.FEATURE_NETS[choice])
    try:
        return "vgg19", lookup.verified(lookup.FEATURE_NETS["vgg19"])
    except Exception:  # absent or damaged: fall back to the small network
        return "squeezenet", lookup.verified(lookup.FEATURE_NETS["squeezenet"])


def _toml(value: object) -> str:
    return "[" + ", ".join(map(str, value)) + "]" if isinstance(value, tuple) else repr(value)


def _style_toml(painting: Path, net: str, plan: object, teacher: str) -> str:
    settings = "".join(f"{k} = {_toml(v)}\n" for k, v in vars(plan).items() if k != "checkpoint_every")
    how = f"distilled from the {teacher} engine's output" if teacher != "none" else f"with a {net} perceptual loss"
    licence = f"yours: trained by vpipe train-style from {painting.name}; the painting's own rights apply"
    return (f"# Trained by `vpipe train-style` from {painting.name}, {how}.\n"
            f'engine = "fast"\nmodel = "model"\nreference = "{REFERENCE}"  # a {REFERENCE_SIDE} px copy of the painting\n'
            f'licence = {_toml(licence)}\n\n'
            f'[training]\n{settings}painting = {painting.name!r}\nnet = "{net}"\nteacher = "{teacher}"\n')


REFERENCE, REFERENCE_SIDE = "painting.jpg", 256  # the copy `vpipe styles --sheet` shows beside the style


def _reference_copy(painting: Path, folder: Path) -> None:
    """A small copy of the painting in the style's folder (at most REFERENCE_SIDE px on the long side)."""
    import cv2

    from .. import storage

    image = storage.read_rgb(painting, side=REFERENCE_SIDE)
    scale = min(1.0, REFERENCE_SIDE / max(image.shape[:2]))
    small = cv2.resize(image, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA) if scale < 1 else image
    storage.publish(folder / REFERENCE, storage.encode(small, "jpg", 90))


def _teacher(choice: str, painting: Path) -> Teacher | None:
    """The arbitrary engine as the teacher where its models are present (`auto`), or as asked."""
    if choice == "none":
        return None
    from .. import engines, teacher

    name = engines.spec_of(engines.PAINTING_ENGINE).painting_model
    assert name is not None
    try:
        models = lookup.verified(name)
    except ModelError as exc:
        if choice == "arbitrary":
            raise
        click.echo(f"no teacher ({exc}): training with the Gram recipe; `vpipe models pull {name}` enables distillation")
        return None
    return teacher.arbitrary(models, painting)


# Defaults per recipe, each within 45 minutes on 2 CPU cores (measured: README "Training a style").
RECIPES: dict[str, dict[str, Any]] = {
    "distill": {"size": 192, "steps": 3000, "temporal_weight": 300.0, "channels": (16, 32, 48), "style_weight": 1.5},
    "gram": {"size": 192, "steps": 2000, "temporal_weight": 1500.0, "channels": (12, 24, 48), "style_weight": 7.0}}


@click.command("train-style")
@click.argument("style_image", type=click.Path(dir_okay=False, path_type=Path))
@click.option("--images", "sources", multiple=True, required=True, type=click.Path(path_type=Path),
              help="A folder of photos/videos or a video file to train on (repeatable).")
@click.option("--name", help="Style name (default: from the painting's file name).")
@click.option("--teacher", type=click.Choice(["auto", "arbitrary", "none"]), default="auto", show_default=True,
              help="Distil the arbitrary engine's output for the painting (auto: where its models are present), "
                   "or none: the Gram-loss recipe.")
@click.option("--size", type=click.IntRange(min=64), help="Training crop side [192].")
@click.option("--steps", type=click.IntRange(min=1), help="Adam steps [distillation 3000, Gram 2000].")
@click.option("--batch", type=click.IntRange(min=2), default=4, show_default=True, help="Crops per step.")
@click.option("--temporal-weight", type=click.FloatRange(min=0),
              help="Weight of the flow-warped consistency term on consecutive video frames, 0: off "
                   "[distillation 300, Gram 1500].")
@click.option("--style-weight", type=click.FloatRange(min=0),
              help="Weight of the Gram loss against the painting itself [distillation 1.5, Gram 7].")
@click.option("--gram-weight", type=click.FloatRange(min=0),
              help="Distillation: weight of the Gram loss against the teacher's output [3].")
@click.option("--full", is_flag=True,
              help="The full Johnson network (32/64/128 channels, 5 blocks, 9x9 ends, transposed convs) instead of the slim one.")
@click.option("--net", type=click.Choice(["squeezenet", "vgg19"]),
              help="Loss network (default: vgg19 if present, else squeezenet).")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--force", is_flag=True, help="Replace a finished style of this name.")
def train_style(style_image: Path, sources: tuple[Path, ...], name: str | None, teacher: str, size: int | None,
                steps: int | None, batch: int, temporal_weight: float | None, style_weight: float | None, gram_weight: float | None,
                full: bool, net: str | None, seed: int, force: bool) -> None:
    """Train a fast network for STYLE_IMAGE; resumable; the result is usable by --engine fast at once."""
    if not style_image.is_file():
        raise UsageError(f"{style_image}: no such file")
    missing = [str(s) for s in sources if not s.exists()]
    if missing:
        raise UsageError(f"--images {missing[0]}: no such file or folder")
    name = name or name_from_path(style_image)
    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}", name) or ".." in name:
        raise UsageError(f"style name {name!r} is not allowed: letters, digits, '.', '_' and '-'")
    out = styles.styles_dir() / name
    if (out / "style.toml").exists() and not (out / ".train").is_dir() and not force:  # not a resume
        raise UsageError(f"style {name!r} exists ({out}): add --force to replace it, or choose another --name")
    net_name, weights = _net(net)
    from .. import teacher as teaching
    from .. import training
    from ..engines import features

    tutor = _teacher(teacher, style_image)
    recipe = RECIPES["distill" if tutor else "gram"]
    steps = steps or recipe["steps"]
    plan = training.Plan(size=size or recipe["size"], steps=steps, batch=batch,
                         style_weight=recipe["style_weight"] if style_weight is None else style_weight,
                         temporal_weight=recipe["temporal_weight"] if temporal_weight is None else temporal_weight,
                         channels=recipe["channels"], seed=seed)
    if gram_weight is not None:
        plan = dataclasses.replace(plan, gram_weight=gram_weight)
    if full:
        plan = dataclasses.replace(plan, channels=(32, 64, 128), blocks=5, kernels=(9, 9), decoder="transpose")
    out.mkdir(parents=True, exist_ok=True)
    if (out / ".train").is_dir():
        click.echo(f"resuming from the checkpoint in {out / '.train'}")

    def report(step: int, parts: dict[str, float], per_step: float) -> None:
        if step % 25 == 0 or step == steps:
            terms = " ".join(f"{k} {v:.4g}" for k, v in parts.items() if k != "loss")
            click.echo(f"step {step}/{steps}  loss {parts['loss']:.4g} ({terms})  {per_step:.2f} s/step  "
                       f"ETA {format_seconds((steps - step) * per_step)}")

    def taught(done: int, total: int) -> None:
        if done == total or done % (8 * teaching.PART) == 0:
            click.echo(f"teacher ({tutor.name if tutor else '-'} engine): {done}/{total} training images painted")

    if tutor:
        click.echo(f"distilling the {tutor.name} engine's {style_image.name} (its outputs are cached in {out / '.teacher'})")
    model = training.train(style_image, list(sources), out, features.load(net_name, weights), plan, report,
                           teacher=tutor, taught=taught)
    if tutor:
        freed = teaching.forget(out / ".teacher")  # the style is trained: its targets are no longer needed
        if freed:
            click.echo(f"removed the teacher's cached outputs ({freed / 2**20:.0f} MiB)")
    _reference_copy(style_image, out)
    (out / "style.toml").write_text(_style_toml(style_image, net_name, plan, tutor.name if tutor else "none"))
    click.echo(f"style {name}: {model} (preview {out / 'preview.png'}); use it with --style {name}")
