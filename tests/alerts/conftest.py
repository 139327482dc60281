"""The alert tests' fixtures: real receivers on loopback (alert_receivers.py)."""

from alert_receivers import mailbox, silent_port, webhook

__all__ = ["mailbox", "silent_port", "webhook"]
