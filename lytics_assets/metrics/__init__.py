"""Daily metrics: dbt models over raw data, the sensor and schedule that keep them fresh, checks."""
