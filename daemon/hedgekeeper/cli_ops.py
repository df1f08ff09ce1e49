"""Operator commands that talk to a running daemon through its control channel.

They register themselves on :data:`hedgekeeper.cli.app`.
"""

from __future__ import annotations
