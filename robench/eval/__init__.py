"""Evaluation: per-example accuracy flags, named eval suites, leaderboard rows."""
