"""``marginrank experiment``: experiments on live traffic, read from their event logs.

A group: each action is a command module of its own, registered here in the order ``--help``
lists them.
"""

from __future__ import annotations

import argparse

from ranking.app import (
    allocate_command,
    estimate_command,
    learn_command,
    open_bandit_command,
    report_command,
)

#: The group's actions: readouts, real logs in, learning from logs, the bandit.
ACTIONS = (report_command, open_bandit_command, estimate_command, learn_command,
           allocate_command)


def add_arguments(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``experiment`` group and every module of :data:`ACTIONS` on it."""
    group = subparsers.add_parser("experiment",
                                  help="experiments on live traffic: readouts from event logs")
    actions = group.add_subparsers(required=True, metavar="ACTION")
    for module in ACTIONS:
        module.add_arguments(actions)
