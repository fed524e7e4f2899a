"""Account-based scoring: account snapshots, the account model, scoring accounts."""
