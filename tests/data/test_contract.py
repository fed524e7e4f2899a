"""The data contract: every problem names the file, column, row and value."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from leadscore.config import load_config, settings_from_dict
from leadscore.data.contract import check_data, load_lead_data
from leadscore.data.streams import iter_lead_batches
from leadscore.errors import ConfigError, ContractError

LEADS = """lead_id,created_at,industry,employees,meeting_at,won_at,lost_at
L1,2025-01-01,software,100,2025-01-20,2025-03-01,
L2,2025-01-05,retail,,,,2025-02-01
L3,2025-06-01,software,50,,,
"""
ACTS = """lead_id,occurred_at,activity_type
L1,2025-01-02 10:00:00,page_view
L3,2025-06-02,email_open
"""


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def settings_for(tmp_path: Path, leads: str = LEADS, acts: str | None = ACTS, **extra):
    data = {"leads": str(write(tmp_path, "leads.csv", leads))}
    if acts is not None:
        data["activities"] = str(write(tmp_path, "acts.csv", acts))
    raw = {"data": data, "columns": {"lost_at": "lost_at"}, **extra}
    return settings_from_dict(raw)


def messages(settings) -> list[str]:
    return [str(p) for p in check_data(settings)]


def test_clean_data_has_no_problems(tmp_path):
    settings = settings_for(tmp_path)
    assert messages(settings) == []
    data = load_lead_data(settings)
    assert list(data.leads["lead_id"]) == ["L1", "L2", "L3"]
    assert data.categorical == ("industry",)
    assert data.numeric == ("employees",)
    assert len(data.activities) == 2


def test_missing_file_is_named(tmp_path):
    settings = settings_from_dict({"data": {"leads": str(tmp_path / "nope.csv")}})
    (msg,) = messages(settings)
    assert "nope.csv" in msg and "file not found" in msg


def test_missing_column_is_named(tmp_path):
    settings = settings_for(tmp_path, leads=LEADS.replace("meeting_at", "first_meeting"))
    msgs = messages(settings)
    assert any("column 'meeting_at'" in m and "missing column" in m for m in msgs)
    with pytest.raises(ContractError, match=r"leads\.csv, column 'meeting_at': missing column"):
        load_lead_data(settings)


def test_unparseable_timestamp_names_row_and_value(tmp_path):
    settings = settings_for(tmp_path, leads=LEADS.replace("2025-06-01", "June first"))
    (msg,) = messages(settings)
    assert "column 'created_at'" in msg and "row 4" in msg
    assert "unparseable timestamp" in msg and "'June first'" in msg


def test_unparseable_number_names_row_and_value(tmp_path):
    raw = {
        "data": {"leads": str(write(tmp_path, "leads.csv", LEADS.replace(",100,", ",lots,")))},
        "columns": {"lost_at": "lost_at", "categorical": ["industry"], "numeric": ["employees"]},
    }
    (msg,) = messages(settings_from_dict(raw))
    assert "column 'employees', row 2: unparseable number (value: 'lots')" in msg


def test_duplicate_lead_ids(tmp_path):
    settings = settings_for(tmp_path, leads=LEADS + "L2,2025-02-01,retail,5,,,\n")
    (msg,) = messages(settings)
    assert "column 'lead_id', row 5: duplicate lead id (value: 'L2')" in msg


def test_activities_for_unknown_leads(tmp_path):
    settings = settings_for(tmp_path, acts=ACTS + "L9,2025-06-03,email_open\n")
    (msg,) = messages(settings)
    assert "acts.csv" in msg and "row 4" in msg and "unknown lead id" in msg and "'L9'" in msg


def test_unparseable_activity_time(tmp_path):
    settings = settings_for(tmp_path, acts=ACTS + "L1,yesterday,email_open\n")
    (msg,) = messages(settings)
    assert "acts.csv, column 'occurred_at', row 4" in msg and "'yesterday'" in msg


def test_outcome_before_creation(tmp_path):
    settings = settings_for(tmp_path, leads=LEADS.replace("2025-01-20", "2024-12-20"))
    (msg,) = messages(settings)
    assert "column 'meeting_at', row 2: meeting_at is before created_at" in msg


def test_outcomes_file_for_unknown_leads(tmp_path):
    leads = "lead_id,created_at,industry\nL1,2025-01-01,a\nL2,2025-01-02,b\n"
    outcomes = "lead_id,meeting_at,won_at\nL1,2025-01-05,\nL7,2025-01-09,\n"
    raw = {
        "data": {
            "leads": str(write(tmp_path, "leads.csv", leads)),
            "outcomes": str(write(tmp_path, "outcomes.csv", outcomes)),
        },
    }
    settings = settings_from_dict(raw)
    (msg,) = messages(settings)
    assert "outcomes.csv, column 'lead_id', row 3: unknown lead id (value: 'L7')" in msg
    with pytest.raises(ContractError, match="unknown lead id"):
        load_lead_data(settings)


def test_outcomes_file_is_merged(tmp_path):
    leads = "lead_id,created_at,industry\nL1,2025-01-01,a\nL2,2025-01-02,b\n"
    outcomes = "lead_id,meeting_at,won_at\nL2,2025-01-05,\n"
    raw = {
        "data": {
            "leads": str(write(tmp_path, "leads.csv", leads)),
            "outcomes": str(write(tmp_path, "outcomes.csv", outcomes)),
        },
    }
    data = load_lead_data(settings_from_dict(raw))
    assert data.leads["meeting_at"].notna().tolist() == [False, True]


def test_empty_file(tmp_path):
    settings = settings_for(tmp_path, leads="")
    (msg,) = messages(settings)
    assert "leads.csv" in msg and "empty" in msg
    settings = settings_for(tmp_path, leads="lead_id,created_at,meeting_at,won_at\n")
    (msg,) = messages(settings)
    assert "no rows" in msg


def test_all_problems_reported_at_once(tmp_path):
    leads = LEADS.replace("2025-06-01", "bad") + "L2,2025-02-01,retail,5,,,\n"
    settings = settings_for(tmp_path, leads=leads, acts=ACTS + "L9,2025-06-03,x\n")
    msgs = messages(settings)
    assert len(msgs) == 3
    with pytest.raises(ContractError) as err:
        load_lead_data(settings)
    assert len(err.value.problems) == 3


def test_drop_invalid_rows_keeps_the_rest(tmp_path):
    settings = settings_for(
        tmp_path,
        leads=LEADS.replace("2025-01-20", "2024-12-20"),
        validation={"drop_invalid_rows": True},
    )
    data = load_lead_data(settings)
    assert list(data.leads["lead_id"]) == ["L2", "L3"]
    assert any("before created_at" in str(w) for w in data.warnings)


def test_missing_value_words_become_missing(tmp_path):
    leads = LEADS.replace("retail", "Select")
    settings = settings_for(
        tmp_path, leads=leads, columns={"lost_at": "lost_at", "missing_values": ["Select"]}
    )
    data = load_lead_data(settings)
    assert data.leads["industry"].isna().tolist() == [False, True, False]


def test_parquet_input(tmp_path):
    import pandas as pd

    frame = pd.read_csv(write(tmp_path, "leads.csv", LEADS))
    frame.to_parquet(tmp_path / "leads.parquet")
    settings = settings_from_dict({"data": {"leads": str(tmp_path / "leads.parquet")}})
    data = load_lead_data(settings)
    assert data.leads["created_at"].dtype.kind == "M"
    assert data.numeric == ("employees",)


@pytest.mark.parametrize(
    ("yaml_text", "expected"),
    [
        ("data: {leads: a.csv}\ncolums: {}\n", "colums: unknown key"),
        (
            "data: {leads: a.csv}\nlabels: {meeting_window_days: soon}\n",
            "labels.meeting_window_days",
        ),
        ("columns: {}\n", "data: missing required key"),
        ("data: {leads: a.csv, activitys: b.csv}\n", "data.activitys: unknown key"),
    ],
)
def test_config_errors_name_key_and_file(tmp_path, yaml_text, expected):
    path = write(tmp_path, "bad.yaml", yaml_text)
    with pytest.raises(ConfigError) as err:
        load_config(path)
    assert str(path) in str(err.value)
    assert expected in str(err.value)


def test_shipped_sample_config_loads():
    settings = load_config(Path(__file__).parents[2] / "configs" / "sample.yaml")
    assert settings.targets == ("meeting", "won")


# --- reading the leads file in batches (the scorer) -------------------------------------------

MANY_LEADS = "lead_id,created_at,industry,employees\n" + "".join(
    f"L{i},2025-01-{1 + i % 28:02d},{'software' if i % 3 else 'retail'},{10 * i}\n"
    for i in range(40)
)


@pytest.fixture
def small_csv_blocks(monkeypatch):
    """Arrow's CSV stream in 128-byte blocks, so a small file comes in many batches."""
    monkeypatch.setattr("leadscore.data.io.CSV_STREAM_BLOCK", 128)


def batched_settings(tmp_path: Path, leads: str, **extra):
    raw = {
        "data": {"leads": str(write(tmp_path, "leads.csv", leads))},
        "columns": {"categorical": ["industry"], "numeric": ["employees"]},
        **extra,
    }
    return settings_from_dict(raw)


def test_leads_read_in_batches_equal_the_whole_file(tmp_path, small_csv_blocks):
    settings = batched_settings(tmp_path, MANY_LEADS)
    batches = list(iter_lead_batches(settings, include_outcomes=False, batch_rows=5))
    assert len(batches) > 3
    assert all(not found for _, found in batches)
    joined = pd.concat([leads for leads, _ in batches], ignore_index=True)
    whole = load_lead_data(settings, include_outcomes=False).leads
    pd.testing.assert_frame_equal(joined[whole.columns], whole, check_dtype=False)


def test_batched_problems_name_rows_of_the_whole_file(tmp_path, small_csv_blocks):
    lines = MANY_LEADS.splitlines(keepends=True)
    lines[31] = lines[31].replace(",300\n", ",lots\n")  # lead L30, file row 32
    lines.append("L3,2025-02-01,retail,5\n")  # L3 again, in a later batch: file row 42
    settings = batched_settings(tmp_path, "".join(lines))
    batches = iter_lead_batches(settings, include_outcomes=False, batch_rows=5)
    found = [p for _, batch in batches for p in batch]
    text = " | ".join(str(p) for p in found)
    assert len(found) == 2, text
    assert "column 'employees', row 32: unparseable number (value: 'lots')" in text
    assert "column 'lead_id', row 42: duplicate lead id (value: 'L3')" in text
    assert {p.lead_id for p in found} == {"L30", "L3"}


def test_batched_outcomes_file_is_attached(tmp_path, small_csv_blocks):
    outcomes = "lead_id,meeting_at,won_at\nL35,2025-03-01,\nL2,2025-02-01,2025-03-01\n"
    settings = batched_settings(
        tmp_path,
        MANY_LEADS,
        data={
            "leads": str(write(tmp_path, "leads.csv", MANY_LEADS)),
            "outcomes": str(write(tmp_path, "outcomes.csv", outcomes)),
        },
    )
    joined = pd.concat([b for b, _ in iter_lead_batches(settings, batch_rows=5)])
    met = joined.loc[joined["meeting_at"].notna(), "lead_id"]
    assert sorted(met) == ["L2", "L35"]
    assert joined.loc[joined["won_at"].notna(), "lead_id"].tolist() == ["L2"]


def test_batched_reading_names_a_missing_column_before_reading(tmp_path):
    settings = batched_settings(tmp_path, MANY_LEADS.replace("employees", "staff"))
    with pytest.raises(ContractError, match=r"leads\.csv, column 'employees': missing column"):
        next(iter_lead_batches(settings, include_outcomes=False))


def test_streamed_csv_that_is_not_utf8_is_read_on(tmp_path, small_csv_blocks):
    from leadscore.data.io import iter_table_batches

    # plain ASCII first, so some batches are out before Arrow meets the Latin-1 bytes
    rows = "".join(
        f"L{i},2025-01-01,{'caf' + chr(0xE9) if i >= 30 else 'cafe'},{i}\n" for i in range(40)
    )
    path = tmp_path / "leads.csv"
    path.write_bytes(("lead_id,created_at,industry,employees\n" + rows).encode("latin-1"))
    frames = list(iter_table_batches(path, ["lead_id", "industry"], batch_rows=7))
    joined = pd.concat(frames, ignore_index=True)
    assert joined["lead_id"].tolist() == [f"L{i}" for i in range(40)]
    assert joined["industry"].str.startswith("caf").all()


def test_streamed_csv_with_a_broken_row_names_the_file(tmp_path, small_csv_blocks):
    from leadscore.data.io import iter_table_batches
    from leadscore.errors import DataFileError

    text = MANY_LEADS + "L99,2025-01-01,retail,5,extra,fields\n"
    path = write(tmp_path, "broken.csv", text)
    with pytest.raises(DataFileError, match=r"broken\.csv: cannot read"):
        list(iter_table_batches(path, ["lead_id"], batch_rows=7))


def test_duplicate_id_across_batches_drops_every_row_as_the_whole_read_does(
    tmp_path, small_csv_blocks
):
    from leadscore.data.contract import drop_leads

    lines = MANY_LEADS.splitlines(keepends=True)
    lines.append("L3,2025-02-01,retail,5\n")  # L3 again, far from its first row (batch 1)
    settings = batched_settings(tmp_path, "".join(lines), validation={"drop_invalid_rows": True})
    whole = load_lead_data(settings, include_outcomes=False).leads
    assert "L3" not in set(whole["lead_id"])
    kept, bad_ids, n_batches = [], set(), 0
    for leads, found in iter_lead_batches(settings, include_outcomes=False, batch_rows=5):
        n_batches += 1
        bad_ids |= {p.lead_id for p in found if p.lead_id is not None}  # as the scorer does
        kept.append(drop_leads(leads, bad_ids))
    assert n_batches > 3
    streamed = pd.concat(kept, ignore_index=True)
    assert streamed["lead_id"].tolist() == whole["lead_id"].tolist()


SHOWN = """lead_id,created_at,industry,company,contact,rep,meeting_at,won_at,lost_at
L1,2025-01-01,software,Acme 1,Ann Lee,Sam,2025-01-20,2025-03-01,
L2,2025-01-05,retail,Beta 2,,Kim,,,2025-02-01
L3,2025-06-01,software,Acme 1,Bo Li,,,,
"""


def test_display_and_owner_columns_are_never_features_but_come_with_the_leads(tmp_path):
    columns = {"lost_at": "lost_at", "display": ["company", "contact"], "owner": "rep"}
    settings = settings_for(tmp_path, SHOWN, columns=columns)
    assert messages(settings) == []
    data = load_lead_data(settings)
    assert data.categorical == ("industry",) and data.numeric == ()  # company, rep: no features
    streaming = settings.model_copy(
        update={"columns": settings.columns.model_copy(update={"categorical": ["industry"]})}
    )
    ((batch, problems),) = list(iter_lead_batches(streaming))
    assert problems == []
    assert batch["company"].tolist() == ["Acme 1", "Beta 2", "Acme 1"]
    assert batch["contact"].isna().tolist() == [False, True, False]
    assert batch["rep"].tolist()[:2] == ["Sam", "Kim"] and pd.isna(batch["rep"].iloc[2])


def test_a_missing_display_column_is_named(tmp_path):
    settings = settings_for(tmp_path, columns={"lost_at": "lost_at", "display": ["company"]})
    (msg,) = messages(settings)
    assert "leads.csv" in msg and "company" in msg and "missing column" in msg


@pytest.mark.parametrize(
    ("columns", "said"),
    [
        ({"display": ["created_at"]}, "display: 'created_at' is a role column"),
        ({"owner": "industry", "categorical": ["industry"]}, "owner: 'industry' is also an"),
        ({"display": ["rep"], "owner": "rep"}, "listed twice"),
    ],
)
def test_shown_columns_that_clash_are_config_errors(tmp_path, columns, said):
    with pytest.raises(ConfigError) as info:
        settings_for(tmp_path, SHOWN, columns=columns)
    assert said in str(info.value)
