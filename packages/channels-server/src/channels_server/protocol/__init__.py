"""The sans-IO protocol engines: HTTP/1.1 on h11 and WebSocket on wsproto.

Nothing here performs I/O or touches the event loop: the engines take bytes
and return events and bytes, and are tested and fuzzed without sockets.
"""
