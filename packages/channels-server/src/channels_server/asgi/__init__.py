"""Translation between the protocol engines and ASGI messages: one stream per scope."""
