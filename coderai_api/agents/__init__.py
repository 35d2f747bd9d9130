"""The refiner and the co-pilot through the API: tasks recorded here, done by the agent sensor's Dagster runs."""
