"""What the stats worker writes: how many messages each room has seen."""

from __future__ import annotations

from django.db import IntegrityError, models, transaction
from django.db.models import F
from django.utils import timezone

from .rooms import MAX_ROOM_NAME_LENGTH


class RoomStats(models.Model):
    """The message count of one room, kept by the ``chat-stats`` worker."""

    room_name = models.CharField(max_length=MAX_ROOM_NAME_LENGTH, unique=True)
    message_count = models.PositiveBigIntegerField(default=0)
    last_message_at = models.DateTimeField(null=True)

    class Meta:
        verbose_name_plural = "room stats"

    def __str__(self) -> str:
        return f"{self.room_name}: {self.message_count} messages"

    @classmethod
    def count_message(cls, room_name: str) -> None:
        """Add one message to *room_name*'s count (blocking: call from a thread).

        Safe with several workers counting at once: the increment happens in
        the database, and if two workers create the row for a new room at the
        same time, the one that loses the race adds to the other's row.
        """
        now = timezone.now()
        increment = {"message_count": F("message_count") + 1, "last_message_at": now}
        if cls.objects.filter(room_name=room_name).update(**increment):
            return
        try:
            with transaction.atomic():
                cls.objects.create(room_name=room_name, message_count=1, last_message_at=now)
        except IntegrityError:
            cls.objects.filter(room_name=room_name).update(**increment)
