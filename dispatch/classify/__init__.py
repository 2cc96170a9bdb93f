"""Alarm classification: category, priority and counted needs from an editable rules file.

See docs/classification.md for the method, the rules format and how matching works.
"""

from dispatch.classify.classifier import Classification, Evidence, Signal, classify
from dispatch.classify.rules import (
    LIFE_THREAT,
    CategoryRule,
    Language,
    PlaceRule,
    Rules,
    RulesFileError,
    SourceRule,
    default_rules_path,
    load_rules,
)
from dispatch.classify.rules import Signal as SignalRule
from dispatch.classify.text import KeywordMatcher, fold_keyword, fold_text

__all__ = [
    "LIFE_THREAT",
    "CategoryRule",
    "Classification",
    "Evidence",
    "KeywordMatcher",
    "Language",
    "PlaceRule",
    "Rules",
    "RulesFileError",
    "Signal",
    "SignalRule",
    "SourceRule",
    "classify",
    "default_rules_path",
    "fold_keyword",
    "fold_text",
    "load_rules",
]
