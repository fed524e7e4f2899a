"""Lead rows as a caller of the logged MLflow model sends them: the user's own column names.

One row per lead: the id, the creation time, the deal amount and the attribute columns under
the names of the leads file (the config's `columns` roles), and the lead's activity in a column
`events`: a list of events, each a mapping in the activity log's column names (by default
`{"occurred_at": ..., "activity_type": ...}`). Training logs a few such rows as the model's
input example; tests and benchmarks build the model's input from the sample files with it.
"""

from __future__ import annotations

import pandas as pd

from leadscore.config import Settings
from leadscore.data.features import FeatureSpec

EVENTS_COLUMN = "events"
ROLE_INPUTS = ("lead_id", "created_at", "amount")  # the role columns the model reads


def time_text(values: pd.Series) -> pd.Series:
    """Timestamps as ISO text ("YYYY-MM-DD HH:MM:SS"); missing stays missing."""
    text = pd.to_datetime(values).dt.strftime("%Y-%m-%d %H:%M:%S").astype(object)
    return text.where(values.notna(), None)


def event_lists(
    lead_ids: pd.Series, activities: pd.DataFrame | None, settings: Settings, before
) -> list[list[dict]]:
    """Each lead's events dated before `before` (None: all), oldest first, as mappings in the
    activity log's column names, timestamps as ISO text."""
    if activities is None or activities.empty:
        return [[] for _ in range(len(lead_ids))]
    ac = settings.activity_columns
    acts = activities[activities["lead_id"].isin(set(lead_ids))]
    if before is not None:
        acts = acts[acts["occurred_at"] < pd.Timestamp(before)]
    acts = acts.sort_values(["lead_id", "occurred_at"], kind="stable")
    records = pd.DataFrame(
        {
            "lead_id": acts["lead_id"].to_numpy(),
            ac.occurred_at: time_text(acts["occurred_at"]).to_numpy(),
            ac.type: acts["activity_type"].astype(str).to_numpy(),
        }
    )
    by_lead: dict[str, list[dict]] = {}
    for lead, group in records.groupby("lead_id", sort=False):
        by_lead[str(lead)] = group.drop(columns="lead_id").to_dict("records")
    return [by_lead.get(str(lead), []) for lead in lead_ids]


def model_input_rows(
    leads: pd.DataFrame,
    activities: pd.DataFrame | None,
    settings: Settings,
    spec: FeatureSpec,
    before: pd.Timestamp | None = None,
) -> pd.DataFrame:
    """Canonical lead rows (and events) turned into the model's input: the user's column names,
    times as text, and the `events` column when the model uses activity (events before
    `before` only)."""
    cols = settings.columns
    out = pd.DataFrame(index=range(len(leads)))
    for role in ROLE_INPUTS:
        name = getattr(cols, role)
        if name and role in leads:
            values = leads[role].reset_index(drop=True)
            out[name] = time_text(values) if role == "created_at" else values.astype(object)
    for col in (*spec.categorical, *spec.numeric):
        if col in leads:
            out[col] = leads[col].reset_index(drop=True).astype(object)
    out = out.astype(object).where(out.notna(), None)
    if spec.has_activities:
        out[EVENTS_COLUMN] = event_lists(leads["lead_id"], activities, settings, before)
    return out
