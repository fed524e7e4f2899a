"""Names every stage shares (prefixes, placeholders, feedback outcomes, report headers), once."""

from __future__ import annotations

# feature groups of activity features are named "activity:<type>" (or "activity:all")
ACTIVITY_GROUP_PREFIX = "activity:"
# label columns of the training examples are named "label_<target>"
LABEL_PREFIX = "label_"
# the category level of a missing value
MISSING = "(missing)"

# the outcomes sales can report: the report's drop-down and the words feedback files use
FEEDBACK_OUTCOMES: tuple[str, ...] = ("meeting_held", "disqualified", "won", "lost")

# the report's layout that feedback ingestion reads back: keep these stable
SHEET_SCORES = "Scores"
LEAD_ID_HEADER = "Lead"
EXPLORE_HEADER = "Explore"
FEEDBACK_COLUMNS: tuple[str, str] = ("Sales feedback", "Feedback date")
