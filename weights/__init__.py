"""Shipped defense weights: one folder per registered name (see recondefense/weights.py)."""
