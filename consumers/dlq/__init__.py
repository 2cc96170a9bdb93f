"""Dead letters an operator handles: listed from the record, replayed onto their topic.

`dispatch dlq list` and `dispatch dlq replay` (cli/dlq_command.py) are built on these;
docs/operations-dlq.md says how an operator uses them.
"""

from consumers.dlq.letters import (
    DeadLetterQuery,
    Replay,
    StoredDeadLetter,
    dead_letters,
    find_dead_letter,
    lock_dead_letter,
    preview,
)
from consumers.dlq.replay import (
    REPLAYABLE_TOPICS,
    Outcome,
    Publish,
    Published,
    ReplayRefused,
    Result,
    catalog_name,
    dead_letter_subject,
    operator,
    replay_dead_letter,
    why_not_replayable,
)

__all__ = [
    "REPLAYABLE_TOPICS",
    "DeadLetterQuery",
    "Outcome",
    "Publish",
    "Published",
    "Replay",
    "ReplayRefused",
    "Result",
    "StoredDeadLetter",
    "catalog_name",
    "dead_letter_subject",
    "dead_letters",
    "find_dead_letter",
    "lock_dead_letter",
    "operator",
    "preview",
    "replay_dead_letter",
    "why_not_replayable",
]
