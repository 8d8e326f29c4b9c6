"""The chat application: rooms, the chat consumer and the message-counting worker."""
