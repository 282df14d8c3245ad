"""Accuracy, multi-modal gain / leakage, uncertainty, leaderboard export and plots."""
