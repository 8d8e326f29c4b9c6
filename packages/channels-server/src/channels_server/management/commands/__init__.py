"""``runserver``, on channels-server."""
