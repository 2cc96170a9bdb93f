"""Alarm classification: category, priority, capabilities and units from an editable rules file.

See docs/classification.md for the rules format and how matching works.
"""

from dispatch.classify.classifier import (
    Classification,
    KeywordMatcher,
    classify,
    fold_keyword,
    fold_text,
)
from dispatch.classify.rules import (
    CategoryRule,
    CategoryRules,
    FallbackRule,
    Modifier,
    PlaceRule,
    Rules,
    RulesFileError,
    SourceRule,
    default_rules_path,
    load_rules,
)

__all__ = [
    "CategoryRule",
    "CategoryRules",
    "Classification",
    "FallbackRule",
    "KeywordMatcher",
    "Modifier",
    "PlaceRule",
    "Rules",
    "RulesFileError",
    "SourceRule",
    "classify",
    "default_rules_path",
    "fold_keyword",
    "fold_text",
    "load_rules",
]
