"""The detection engine: rules, threat chains and baselines over hub events, alerts out."""
