"""Django management commands of channels-server."""
