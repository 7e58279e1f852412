"""The event hub: telemetry from children (access records, kernel events, alerts)."""
