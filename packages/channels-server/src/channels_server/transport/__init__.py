"""Sockets: binding endpoints and the asyncio protocol of each connection."""
