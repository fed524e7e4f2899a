"""The data a model learns from: the configured leads, with the sales feedback applied."""

from __future__ import annotations

import dataclasses

import pandas as pd

from leadscore.config import Settings
from leadscore.data.contract import LeadData, load_lead_data
from leadscore.feedback.apply import FeedbackCounts, apply_feedback
from leadscore.feedback.store import read_store


def with_feedback(
    data: LeadData, feedback: pd.DataFrame | None
) -> tuple[LeadData, FeedbackCounts | None]:
    """The data with sales feedback written onto the leads' outcomes (`apply_feedback`:
    feedback wins over the CRM), and what it changed; unchanged (and None) without feedback.
    Data cut at its export date (`LeadData.cut_at`) takes no feedback dated after it."""
    if feedback is not None and data.cut_at is not None:
        feedback = feedback[~(feedback["date"] > data.cut_at).to_numpy(bool)]
    if feedback is None or len(feedback) == 0:
        return data, None
    leads, counts = apply_feedback(data.leads, feedback)
    return dataclasses.replace(data, leads=leads), counts


def current_data(settings: Settings) -> tuple[LeadData, FeedbackCounts | None]:
    """The configured data with the feedback store (`data.feedback`) applied, when it has any."""
    return with_feedback(load_lead_data(settings), read_store(settings.data.feedback))
