"""The best trial's configuration as a preset ``conf/experiment/sweep_<name>.yaml`` that ``train.py`` runs.

The preset holds the trial's whole resolved training config (model, solver, optimiser, training,
evaluation, dataset, split, seed) and selects the matching groups, so ``train.py experiment=sweep_<name>``
trains exactly that run: the best/ file is merged first and the preset's values replace it. Paths,
device, logger, the tuner and seeds/splits are left to the command line and the machine.
"""

from __future__ import annotations

from pathlib import Path

from omegaconf import OmegaConf

from ..cli import CONF_DIR

EXPERIMENT_DIR = CONF_DIR / "experiment"
KEPT = ("dataset", "split", "model", "solver", "optim", "train", "eval", "seed")


def preset_name(sweep: str) -> str:
    return f"sweep_{sweep}"


def preset_body(config: dict, sweep: str) -> dict:
    """The preset's content: group overrides first, then the trial's values."""
    body: dict = {"defaults": []}
    choices = {
        "dataset": config["dataset"]["name"],
        "split": config["split"]["name"],
        "model": config["model"]["name"],
        "solver": config["solver"]["method"],
    }
    for group, choice in choices.items():
        if (CONF_DIR / group / f"{choice}.yaml").exists():  # the model schema comes with the model group
            body["defaults"].append({f"override /{group}": choice})
    for key in KEPT:
        body[key] = config[key]
    body["train"] = {k: v for k, v in config["train"].items() if k != "progress"}  # a trial ran without a bar
    body["tag"] = preset_name(sweep)
    return body


def export_preset(record: dict, sweep: str, lines: list[str], folder: Path = EXPERIMENT_DIR) -> Path:
    """Write the preset for ``record`` (the best trial's run record); ``lines`` become its header comment."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{preset_name(sweep)}.yaml"
    header = ["# @package _global_", *(f"# {line}" for line in lines)]
    text = "\n".join(header) + "\n" + OmegaConf.to_yaml(OmegaConf.create(preset_body(record["config"], sweep)))
    path.write_text(text, encoding="utf-8")
    return path
