"""Bulk sends: one message (or one template with per-recipient parameters) to many recipients.

:mod:`.items` validates the arguments into payloads, :mod:`.engine` sends them at the rate limit and
decides retries per recipient, :mod:`.progress` records every send durably so that a new try of the
task skips what was accepted and never repeats a send that may have gone through.
"""
