"""Task recipes (data + training + evaluation) used by the CLI and the app."""

import importlib

#: ``train <task>`` subcommand → module; card ``task`` → module.
MODULES = {"mnist": "mnist", "adding": "adding", "frequency": "frequency", "frames": "frames",
           "text": "skim_text", "transkimmer": "transkimmer"}
CARD_TASKS = {"mnist-pixels": "mnist", "adding": "adding", "frequency": "frequency",
              "frames": "frames", "text-classification": "text",
              "sst2-transkimmer": "transkimmer"}


def module(name: str):
    if name not in MODULES:
        raise ValueError(f"unknown task {name!r}; known: {sorted(MODULES)}")
    return importlib.import_module(f"{__name__}.{MODULES[name]}")


def by_card_task(card_task):
    """The task module for a card's ``task`` field, or None."""
    return module(CARD_TASKS[card_task]) if card_task in CARD_TASKS else None
