"""Replaying a seed: what publishers served over days, served again on 127.0.0.1 in simulated
time to the real monitor."""
