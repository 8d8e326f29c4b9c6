"""Generic consumers for HTTP and WebSocket connections."""
