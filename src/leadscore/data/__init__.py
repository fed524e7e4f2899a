"""The data stage: reading and checking the user's tables (contract, parse, streams, io), the
point-in-time examples and features both training and scoring use, the on-disk spill that keeps
scoring memory flat, and the synthetic sample funnel. It imports nothing above it."""
