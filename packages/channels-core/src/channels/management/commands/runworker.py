"""``manage.py runworker CHANNEL [CHANNEL ...] [--layer ALIAS]``."""

from __future__ import annotations

import logging
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from channels import DEFAULT_CHANNEL_LAYER
from channels.layers import get_channel_layer
from channels.routing import get_default_application
from channels.worker import Worker

__all__ = ["Command"]

logger = logging.getLogger("channels.worker")


class Command(BaseCommand):
    help = "Runs a worker that serves the events sent to the named channels."
    leave_locale_alone = True
    #: Subclasses may swap in their own worker.
    worker_class = Worker

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--layer",
            default=DEFAULT_CHANNEL_LAYER,
            help=f"The CHANNEL_LAYERS alias to receive from (default {DEFAULT_CHANNEL_LAYER!r}).",
        )
        parser.add_argument("channels", nargs="+", help="The channel names to listen on.")

    def handle(self, *args: Any, **options: Any) -> None:
        layer = get_channel_layer(options["layer"])
        if layer is None:
            raise CommandError(
                f"No channel layer is configured under {options['layer']!r}: "
                "set CHANNEL_LAYERS in your settings"
            )
        try:
            worker = self.worker_class(
                application=get_default_application(),
                channels=options["channels"],
                channel_layer=layer,
            )
        except (TypeError, ValueError) as exc:
            raise CommandError(str(exc)) from exc
        if options.get("verbosity", 1) >= 1:
            self.stdout.write(
                f"Worker listening on {', '.join(options['channels'])} "
                f"(layer {options['layer']!r}); press CONTROL-C to stop."
            )
        logger.info("Running worker for channels %s", options["channels"])
        worker.run()
