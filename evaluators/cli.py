"""CLI commands of the evaluators: eval, models, tiny-models, demo."""

from __future__ import annotations

import argparse


def add_commands(sub: argparse._SubParsersAction) -> None:
    pass
