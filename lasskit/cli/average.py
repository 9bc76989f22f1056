"""``lasskit average``: average the weights of several checkpoints of one run -> one checkpoint."""

from __future__ import annotations

from pathlib import Path

import typer


def average(
    checkpoints: list[Path] = typer.Argument(..., metavar="CKPT", help="Checkpoints of one model (two or more)."),
    output: Path = typer.Option(..., "--output", "-o", metavar="FILE", help="The averaged checkpoint to write."),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace FILE if it exists."),
) -> None:
    """Average checkpoints' weights (e.g. the last few kept by `train --keep-checkpoints N`).

    Example: lasskit average exp/train/base/step-*.ckpt -o exp/train/base/average.ckpt
    """
    from lasskit.training.average import average_checkpoints

    done = average_checkpoints([str(c) for c in checkpoints], str(output), overwrite=overwrite)
    steps = ", ".join(str(i["global_step"]) for i in done["inputs"])
    typer.echo(f"averaged {len(done['inputs'])} checkpoints (steps {steps}): {done['averaged']} of "
               f"{done['tensors']} tensors averaged"
               + (f", {done['integer_tensors_differing']} integer tensors differed (the last one's kept)"
                  if done["integer_tensors_differing"] else "")
               + f" -> {done['output']}")
