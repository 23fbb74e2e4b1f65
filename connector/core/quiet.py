"""When a finished pass need not be written to Kafka: the quiet-pass rule. No I/O, no clock.

With push on, each stream is still polled every ``webhook.healthy_poll_seconds`` (the safety
poll), and nearly every such pass finds nothing: one ``events.list`` with the sync token, zero
items, a new ``nextSyncToken``. Committing that checkpoint (a Kafka transaction: about 1.7 ms
of CPU, half of such a pass, measured by ``benchmarks/idle_pass_cost.py``) changes nothing a
consumer or a restart needs: the sync token stored in Kafka is still valid and, after a
restart, returns the changes since it was issued, which are the same as those since the new
token, because the passes in between saw none.

So such a pass is not committed, and the stream goes on in memory with the new token (a fresh
token is never worse than an old one, e.g. if Google invalidates tokens issued before an ACL
change). It is committed anyway once the stored token is ``QUIET_COMMIT_MAX_AGE_MS`` old:
Google publishes no token lifetime, reports of 410 come after gaps of days to weeks, and the
emulator expires tokens 30 days after they were issued; so the token a restart would use is
never more than a few hours (plus the restart's own downtime) old. Anything else that changed
in the checkpoint (generation, phase, fingerprint, page token, channel, reset reason, counts,
extra, a dead letter, an item whose version was already published) means a commit, as always.
"""

from __future__ import annotations

from dataclasses import replace

from connector.core.records import Checkpoint, Phase
from connector.core.sync import PageResult

# How old the stored sync token may grow while passes find nothing (6 hours).
QUIET_COMMIT_MAX_AGE_MS = 6 * 3600 * 1000


def can_skip_commit(
    committed: Checkpoint | None,
    result: PageResult,
    stored_token_ms: int | None,
    now_ms: int,
    max_age_ms: int = QUIET_COMMIT_MAX_AGE_MS,
) -> bool:
    """True if ``result`` (a page of the pass that started from ``committed``) need not be
    committed: it ends an incremental pass that saw no item at all, and its checkpoint differs
    from ``committed`` only in the sync token and the attempt/success times.

    ``stored_token_ms`` is when the sync token stored in Kafka was obtained (the stored
    checkpoint's last success); None (unknown) means commit. ``committed`` is the stream's
    checkpoint in memory, which may carry a newer token than the stored one.
    """
    if committed is None or stored_token_ms is None:
        return False
    if not result.done or result.new_generation or result.records or result.skipped:
        return False
    if result.dead_letters or committed.phase is not Phase.INCREMENTAL:
        return False
    new = result.checkpoint
    if committed.sync_token is None or new.sync_token is None or committed.page_token is not None:
        return False
    if not 0 <= now_ms - stored_token_ms < max_age_ms:
        return False
    only_times_and_token = replace(
        committed,
        sync_token=new.sync_token,
        last_attempt_at_ms=new.last_attempt_at_ms,
        last_success_at_ms=new.last_success_at_ms,
    )
    return new == only_times_and_token
