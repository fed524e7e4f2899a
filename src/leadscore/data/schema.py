"""Names every stage shares (prefixes, placeholders, feedback outcomes, report headers), once."""

from __future__ import annotations

# feature groups of activity features are named "activity:<type>" (or "activity:all")
ACTIVITY_GROUP_PREFIX = "activity:"
# label columns of the training examples are named "label_<target>"
LABEL_PREFIX = "label_"
# the category level of a missing value
MISSING = "(missing)"

# the outcomes sales can report: the report's drop-down and the words feedback files use.
# LABEL_OUTCOMES become labels; NOTE_OUTCOMES (could not reach the lead; the score looks wrong)
# are stored and counted for review, never applied as outcomes
LABEL_OUTCOMES: tuple[str, ...] = ("meeting_held", "disqualified", "won", "lost")
NOTE_OUTCOMES: tuple[str, ...] = ("no_response", "score_wrong")
FEEDBACK_OUTCOMES: tuple[str, ...] = LABEL_OUTCOMES + NOTE_OUTCOMES

# the report's layout that feedback ingestion reads back: keep these stable
SHEET_SCORES = "Scores"
LEAD_ID_HEADER = "Lead"
EXPLORE_HEADER = "Explore"
FEEDBACK_COLUMNS: tuple[str, str] = ("Sales feedback", "Feedback date")
COMMENT_HEADER = "Comment"  # free text stored with the feedback (the store's `note`)
OWNER_HEADER = "Owner"  # the `columns.owner` column in the reports
