"""The feedback stage: what sales records (meeting held, disqualified, won, lost) read from the
report or CSV files, checked, stored append-only without loss, and applied as labels."""
