"""The engine: runs the phases it is handed on the hosts a provider gives it; it knows neither."""
