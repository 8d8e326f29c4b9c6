"""channels.consumer: AsyncConsumer and SyncConsumer driven through their ASGI interface."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from typing import Any

import pytest
from django.contrib.auth.models import User
from django.db import connections
from django.test import TestCase, override_settings

from channels.consumer import AsyncConsumer, SyncConsumer, get_handler_name
from channels.db import database_sync_to_async
from channels.exceptions import StopConsumer
from channels.layers import InMemoryChannelLayer, channel_layers, get_channel_layer
from channels.testing import ApplicationCommunicator

IN_MEMORY = {"BACKEND": "channels.layers.InMemoryChannelLayer"}
SCOPE = {"type": "test"}


# -- as_asgi() -------------------------------------------------------------------


class Greeter(AsyncConsumer):
    greeting = "hello"

    async def test_ask(self, message: dict[str, Any]) -> None:
        await self.send({"type": "test.answer", "greeting": self.greeting})


def test_as_asgi_exposes_class_and_initkwargs() -> None:
    app = Greeter.as_asgi(greeting="bonjour")
    assert app.consumer_class is Greeter  # type: ignore[attr-defined]
    assert app.consumer_initkwargs == {"greeting": "bonjour"}  # type: ignore[attr-defined]
    assert app.__name__ == "Greeter"


def test_as_asgi_rejects_a_kwarg_that_is_not_an_attribute() -> None:
    with pytest.raises(TypeError, match=r"'colour'.*not an attribute of Greeter"):
        Greeter.as_asgi(colour="blue")


def test_constructor_takes_keyword_arguments_only() -> None:
    with pytest.raises(TypeError, match="keyword arguments only"):
        Greeter("bonjour")
    with pytest.raises(TypeError, match="'colour'"):
        Greeter(colour="blue")


def test_custom_init_is_not_second_guessed_by_as_asgi() -> None:
    class Custom(AsyncConsumer):
        def __init__(self, *, colour: str) -> None:
            super().__init__()
            self.colour = colour

    # The class takes the argument itself, so as_asgi() lets it through.
    app = Custom.as_asgi(colour="blue")
    assert app.consumer_initkwargs == {"colour": "blue"}  # type: ignore[attr-defined]


@pytest.mark.asyncio
async def test_each_connection_gets_a_new_instance_with_the_initkwargs(
    settings: Any, stop: Any
) -> None:
    settings.CHANNEL_LAYERS = {}
    instances: list[AsyncConsumer] = []

    class Counting(Greeter):
        async def test_ask(self, message: dict[str, Any]) -> None:
            instances.append(self)
            await super().test_ask(message)

    app = Counting.as_asgi(greeting="bonjour")
    for _ in range(2):
        communicator = ApplicationCommunicator(app, SCOPE)
        await communicator.send_input({"type": "test.ask"})
        assert await communicator.receive_output() == {
            "type": "test.answer",
            "greeting": "bonjour",
        }
        await stop(communicator)
    assert len(instances) == 2
    assert instances[0] is not instances[1]
    # initkwargs go onto the instance, never onto the class.
    assert Counting.greeting == "hello"


# -- dispatch ------------------------------------------------------------------


class Recorder(AsyncConsumer):
    """Records which handler ran; used by the dispatch tests."""

    async def websocket_connect(self, message: dict[str, Any]) -> None:
        await self.send({"type": "ran", "handler": "websocket_connect"})

    async def a_b_c(self, message: dict[str, Any]) -> None:
        await self.send({"type": "ran", "handler": "a_b_c", "message": message})

    async def _x(self, message: dict[str, Any]) -> None:
        await self.send({"type": "ran", "handler": "_x"})

    async def __x(self, message: dict[str, Any]) -> None:  # name-mangled, still private
        await self.send({"type": "ran", "handler": "__x"})

    async def stop_now(self, message: dict[str, Any]) -> None:
        raise StopConsumer()


@pytest.mark.parametrize(
    ("message_type", "handler"),
    [("websocket.connect", "websocket_connect"), ("a.b.c", "a_b_c"), ("a_b.c", "a_b_c")],
)
@pytest.mark.asyncio
async def test_dispatch_replaces_dots_with_underscores(
    layer_setting: str, message_type: str, handler: str
) -> None:
    communicator = ApplicationCommunicator(Recorder.as_asgi(), SCOPE)
    await communicator.send_input({"type": message_type, "extra": 1})
    output = await communicator.receive_output()
    assert output["handler"] == handler
    await communicator.send_input({"type": "stop.now"})
    await communicator.wait()


@pytest.mark.parametrize("message_type", ["_x", "._x", ".", "_.x", "__x"])
@pytest.mark.asyncio
async def test_a_type_that_makes_a_private_name_is_never_dispatched(
    layer_setting: str, message_type: str
) -> None:
    communicator = ApplicationCommunicator(Recorder.as_asgi(), SCOPE)
    await communicator.send_input({"type": message_type})
    with pytest.raises(ValueError, match="underscore"):
        await communicator.wait()
    assert communicator.output_queue.empty()  # the private handler never ran


@pytest.mark.parametrize("message", [{}, {"typ": "x"}, {"type": 3}, {"type": None}])
def test_get_handler_name_rejects_a_message_without_a_string_type(message: Any) -> None:
    with pytest.raises(ValueError, match="type"):
        get_handler_name(message)


def test_get_handler_name() -> None:
    assert get_handler_name({"type": "http.request"}) == "http_request"
    assert get_handler_name({"type": "chat"}) == "chat"


@pytest.mark.asyncio
async def test_missing_handler_names_the_type_and_the_consumer(layer_setting: str) -> None:
    communicator = ApplicationCommunicator(Recorder.as_asgi(), SCOPE)
    await communicator.send_input({"type": "no.such.thing"})
    with pytest.raises(ValueError, match=r"'no\.such\.thing'.*Recorder") as info:
        await communicator.wait()
    assert "no_such_thing" in str(info.value)


@pytest.mark.asyncio
async def test_missing_handler_on_a_sync_consumer(layer_setting: str) -> None:
    class Empty(SyncConsumer):
        pass

    communicator = ApplicationCommunicator(Empty.as_asgi(), SCOPE)
    await communicator.send_input({"type": "hello"})
    with pytest.raises(ValueError, match=r"'hello'.*Empty"):
        await communicator.wait()


# -- stopping ---------------------------------------------------------------------


@pytest.mark.asyncio
async def test_stop_consumer_ends_the_instance_cleanly(layer_setting: str, tasks_left: Any) -> None:
    before = asyncio.all_tasks()
    communicator = ApplicationCommunicator(Recorder.as_asgi(), SCOPE)
    await communicator.send_input({"type": "stop.now"})
    await communicator.wait()  # returns: no exception escaped
    assert communicator.future.result() is None
    assert tasks_left(before) == set()


@pytest.mark.asyncio
async def test_stop_consumer_from_a_sync_consumer(layer_setting: str, tasks_left: Any) -> None:
    class Stopper(SyncConsumer):
        def test_stop(self, message: dict[str, Any]) -> None:
            self.send({"type": "bye"})
            raise StopConsumer()

    before = asyncio.all_tasks()
    communicator = ApplicationCommunicator(Stopper.as_asgi(), SCOPE)
    await communicator.send_input({"type": "test.stop"})
    assert await communicator.receive_output() == {"type": "bye"}
    await communicator.wait()
    assert tasks_left(before) == set()


class Boom(Exception):
    pass


class Exploding(AsyncConsumer):
    async def test_explode(self, message: dict[str, Any]) -> None:
        raise Boom(message.get("why", "boom"))


@pytest.mark.asyncio
async def test_an_exception_in_a_handler_propagates_out_of_the_app(
    layer_setting: str, tasks_left: Any
) -> None:
    before = asyncio.all_tasks()
    communicator = ApplicationCommunicator(Exploding.as_asgi(), SCOPE)
    await communicator.send_input({"type": "test.explode", "why": "on purpose"})
    with pytest.raises(Boom, match="on purpose"):
        await communicator.wait()
    assert tasks_left(before) == set()


@pytest.mark.asyncio
async def test_an_exception_in_a_sync_handler_propagates(
    layer_setting: str, tasks_left: Any
) -> None:
    class SyncExploding(SyncConsumer):
        def test_explode(self, message: dict[str, Any]) -> None:
            raise Boom("from a thread")

    before = asyncio.all_tasks()
    communicator = ApplicationCommunicator(SyncExploding.as_asgi(), SCOPE)
    await communicator.send_input({"type": "test.explode"})
    with pytest.raises(Boom, match="from a thread"):
        await communicator.wait()
    assert tasks_left(before) == set()


@pytest.mark.asyncio
async def test_cancelling_the_app_leaves_no_task_behind(
    layer_setting: str, tasks_left: Any
) -> None:
    started = asyncio.Event()

    class Waiting(AsyncConsumer):
        async def test_start(self, message: dict[str, Any]) -> None:
            started.set()

    before = asyncio.all_tasks()
    communicator = ApplicationCommunicator(Waiting.as_asgi(), SCOPE)
    await communicator.send_input({"type": "test.start"})
    await asyncio.wait_for(started.wait(), 1)
    communicator.future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await communicator.future
    assert tasks_left(before) == set()


@pytest.mark.asyncio
async def test_cancelling_the_app_inside_a_handler_cancels_the_handler(
    layer_setting: str,
    tasks_left: Any,
) -> None:
    entered = asyncio.Event()
    outcome: list[str] = []

    class Slow(AsyncConsumer):
        async def test_slow(self, message: dict[str, Any]) -> None:
            entered.set()
            try:
                await asyncio.sleep(10)
            except asyncio.CancelledError:
                outcome.append("cancelled")
                raise

    before = asyncio.all_tasks()
    communicator = ApplicationCommunicator(Slow.as_asgi(), SCOPE)
    await communicator.send_input({"type": "test.slow"})
    await asyncio.wait_for(entered.wait(), 1)
    communicator.future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await communicator.future
    assert outcome == ["cancelled"]
    assert tasks_left(before) == set()


# -- start_task() ------------------------------------------------------------------


class Background(AsyncConsumer):
    """Starts owned background tasks on request."""

    events: list[str] = []
    task: asyncio.Task[None] | None = None

    async def forever(self) -> None:
        self.events.append("started")
        try:
            await asyncio.sleep(3600)
        finally:
            self.events.append("cleaned up")

    async def fail(self) -> None:
        raise Boom("background failure")

    async def stop_later(self) -> None:
        raise StopConsumer()

    async def test_forever(self, message: dict[str, Any]) -> None:
        self.task = self.start_task(self.forever())
        await self.send({"type": "started"})

    async def test_fail(self, message: dict[str, Any]) -> None:
        self.start_task(self.fail())

    async def test_stop_later(self, message: dict[str, Any]) -> None:
        self.start_task(self.stop_later())

    async def test_stop(self, message: dict[str, Any]) -> None:
        raise StopConsumer()

    async def test_explode(self, message: dict[str, Any]) -> None:
        raise Boom("handler failure")


@pytest.mark.parametrize("ending", ["stop", "explode", "cancel"])
@pytest.mark.asyncio
async def test_start_task_is_cancelled_when_the_instance_ends(
    layer_setting: str, ending: str, tasks_left: Any
) -> None:
    events: list[str] = []
    before = asyncio.all_tasks()
    communicator = ApplicationCommunicator(Background.as_asgi(events=events), SCOPE)
    await communicator.send_input({"type": "test.forever"})
    assert await communicator.receive_output() == {"type": "started"}
    if ending == "cancel":
        communicator.future.cancel()
        with pytest.raises(asyncio.CancelledError):
            await communicator.future
    else:
        await communicator.send_input({"type": f"test.{ending}"})
        if ending == "explode":
            with pytest.raises(Boom):
                await communicator.wait()
        else:
            await communicator.wait()
    # The owned task was cancelled and awaited before the app returned.
    assert events == ["started", "cleaned up"]
    assert tasks_left(before) == set()


@pytest.mark.asyncio
async def test_a_failing_start_task_stops_the_instance_with_its_exception(
    layer_setting: str,
    tasks_left: Any,
) -> None:
    before = asyncio.all_tasks()
    communicator = ApplicationCommunicator(Background.as_asgi(events=[]), SCOPE)
    await communicator.send_input({"type": "test.fail"})
    with pytest.raises(Boom, match="background failure"):
        await communicator.wait()
    assert tasks_left(before) == set()


@pytest.mark.asyncio
async def test_stop_consumer_from_a_start_task_stops_cleanly(
    layer_setting: str, tasks_left: Any
) -> None:
    before = asyncio.all_tasks()
    communicator = ApplicationCommunicator(Background.as_asgi(events=[]), SCOPE)
    await communicator.send_input({"type": "test.stop_later"})
    await communicator.wait()
    assert communicator.future.result() is None
    assert tasks_left(before) == set()


@pytest.mark.asyncio
async def test_start_task_failure_waits_for_the_running_handler(layer_setting: str) -> None:
    """A background failure never cuts a handler off half-way."""
    log: list[str] = []

    class Careful(AsyncConsumer):
        async def fail_soon(self) -> None:
            await asyncio.sleep(0.01)
            raise Boom("late")

        async def test_work(self, message: dict[str, Any]) -> None:
            self.start_task(self.fail_soon())
            log.append("handler start")
            await asyncio.sleep(0.1)
            log.append("handler end")

    communicator = ApplicationCommunicator(Careful.as_asgi(), SCOPE)
    await communicator.send_input({"type": "test.work"})
    with pytest.raises(Boom, match="late"):
        await communicator.wait()
    assert log == ["handler start", "handler end"]


# -- the channel layer ----------------------------------------------------------------


class LayerUser(AsyncConsumer):
    """Reports its channel name, echoes layer events back to the client."""

    log: list[str] = []

    async def test_whoami(self, message: dict[str, Any]) -> None:
        await self.send(
            {
                "type": "me",
                "channel_name": getattr(self, "channel_name", None),
                "has_layer": self.channel_layer is not None,
            }
        )

    async def test_slow(self, message: dict[str, Any]) -> None:
        self.log.append("slow start")
        await self.send({"type": "slow started"})
        await asyncio.sleep(0.05)
        self.log.append("slow end")
        await self.send({"type": "slow done"})

    async def layer_event(self, message: dict[str, Any]) -> None:
        self.log.append("layer start")
        await asyncio.sleep(0)
        self.log.append("layer end")
        await self.send({"type": "from layer", "payload": message["payload"]})

    async def layer_stop(self, message: dict[str, Any]) -> None:
        raise StopConsumer()

    async def layer_explode(self, message: dict[str, Any]) -> None:
        raise Boom("layer handler failure")


async def whoami(communicator: ApplicationCommunicator) -> dict[str, Any]:
    await communicator.send_input({"type": "test.whoami"})
    answer: dict[str, Any] = await communicator.receive_output()
    return answer


@pytest.mark.asyncio
async def test_each_instance_gets_its_own_channel_name(
    layer: InMemoryChannelLayer, stop: Any
) -> None:
    first = ApplicationCommunicator(LayerUser.as_asgi(log=[]), SCOPE)
    second = ApplicationCommunicator(LayerUser.as_asgi(log=[]), SCOPE)
    name_1 = (await whoami(first))["channel_name"]
    name_2 = (await whoami(second))["channel_name"]
    assert name_1 != name_2
    for name in (name_1, name_2):
        assert name.startswith("specific.")
        assert "!" in name
    await stop(first)
    await stop(second)


@pytest.mark.asyncio
async def test_without_a_layer_there_is_no_channel_name(settings: Any, stop: Any) -> None:
    settings.CHANNEL_LAYERS = {}
    communicator = ApplicationCommunicator(LayerUser.as_asgi(log=[]), SCOPE)
    assert await whoami(communicator) == {"type": "me", "channel_name": None, "has_layer": False}
    await stop(communicator)


@pytest.mark.asyncio
async def test_layer_events_arrive_while_the_client_is_silent(
    layer: InMemoryChannelLayer,
) -> None:
    communicator = ApplicationCommunicator(LayerUser.as_asgi(log=[]), SCOPE)
    channel_name = (await whoami(communicator))["channel_name"]
    await layer.send(channel_name, {"type": "layer.event", "payload": "ping"})
    assert await communicator.receive_output() == {"type": "from layer", "payload": "ping"}
    await layer.send(channel_name, {"type": "layer.stop"})
    await communicator.wait()


@pytest.mark.asyncio
async def test_layer_and_client_handlers_never_overlap(
    layer: InMemoryChannelLayer, stop: Any
) -> None:
    log: list[str] = []
    communicator = ApplicationCommunicator(LayerUser.as_asgi(log=log), SCOPE)
    channel_name = (await whoami(communicator))["channel_name"]
    await communicator.send_input({"type": "test.slow"})
    assert await communicator.receive_output() == {"type": "slow started"}
    # The client's handler is running: a layer event must wait for it.
    await layer.send(channel_name, {"type": "layer.event", "payload": 1})
    assert await communicator.receive_output() == {"type": "slow done"}
    assert await communicator.receive_output() == {"type": "from layer", "payload": 1}
    assert log == ["slow start", "slow end", "layer start", "layer end"]
    await stop(communicator)


@pytest.mark.asyncio
async def test_stop_consumer_from_a_layer_event(
    layer: InMemoryChannelLayer, tasks_left: Any
) -> None:
    before = asyncio.all_tasks()
    communicator = ApplicationCommunicator(LayerUser.as_asgi(log=[]), SCOPE)
    channel_name = (await whoami(communicator))["channel_name"]
    await layer.send(channel_name, {"type": "layer.stop"})
    await communicator.wait()
    assert communicator.future.result() is None
    assert tasks_left(before) == set()


@pytest.mark.asyncio
async def test_an_exception_in_a_layer_handler_stops_the_instance(
    layer: InMemoryChannelLayer,
    tasks_left: Any,
) -> None:
    before = asyncio.all_tasks()
    communicator = ApplicationCommunicator(LayerUser.as_asgi(log=[]), SCOPE)
    channel_name = (await whoami(communicator))["channel_name"]
    await layer.send(channel_name, {"type": "layer.explode"})
    with pytest.raises(Boom, match="layer handler failure"):
        await communicator.wait()
    assert tasks_left(before) == set()


@pytest.mark.asyncio
async def test_a_layer_event_without_a_handler_stops_the_instance(
    layer: InMemoryChannelLayer,
) -> None:
    communicator = ApplicationCommunicator(LayerUser.as_asgi(log=[]), SCOPE)
    channel_name = (await whoami(communicator))["channel_name"]
    await layer.send(channel_name, {"type": "chat.message"})
    with pytest.raises(ValueError, match=r"'chat\.message'.*LayerUser"):
        await communicator.wait()


class BrokenReceiveLayer(InMemoryChannelLayer):
    """A layer whose receive() fails, as a lost connection to a server would."""

    async def receive(self, channel: str) -> dict[str, Any]:
        await asyncio.sleep(0)
        raise ConnectionError("layer went away")


@pytest.mark.asyncio
async def test_a_failing_layer_receive_stops_the_instance(settings: Any, tasks_left: Any) -> None:
    settings.CHANNEL_LAYERS = {"default": IN_MEMORY}
    channel_layers.set("default", BrokenReceiveLayer())
    before = asyncio.all_tasks()
    communicator = ApplicationCommunicator(LayerUser.as_asgi(log=[]), SCOPE)
    await communicator.send_input({"type": "test.whoami"})
    with pytest.raises(ConnectionError, match="layer went away"):
        await communicator.wait()
    assert tasks_left(before) == set()


@pytest.mark.asyncio
async def test_channel_layer_alias_picks_another_layer(stop: Any) -> None:
    class OtherAlias(LayerUser):
        channel_layer_alias = "other"

    with override_settings(CHANNEL_LAYERS={"default": IN_MEMORY, "other": IN_MEMORY}):
        default, other = get_channel_layer(), get_channel_layer("other")
        assert default is not None
        assert other is not None
        assert default is not other
        communicator = ApplicationCommunicator(OtherAlias.as_asgi(log=[]), SCOPE)
        channel_name = (await whoami(communicator))["channel_name"]
        # Sent on the other layer, the event arrives ...
        await other.send(channel_name, {"type": "layer.event", "payload": "via other"})
        assert await communicator.receive_output() == {
            "type": "from layer",
            "payload": "via other",
        }
        # ... while the default layer has nobody listening on that name.
        await default.send(channel_name, {"type": "layer.event", "payload": "via default"})
        assert await communicator.receive_nothing(timeout=0.05)
        await stop(communicator)


@pytest.mark.asyncio
async def test_an_unconfigured_alias_means_no_layer(settings: Any, stop: Any) -> None:
    settings.CHANNEL_LAYERS = {"default": IN_MEMORY}

    class Missing(LayerUser):
        channel_layer_alias = "not-configured"

    communicator = ApplicationCommunicator(Missing.as_asgi(log=[]), SCOPE)
    assert (await whoami(communicator))["has_layer"] is False
    await stop(communicator)


@pytest.mark.asyncio
async def test_channel_layer_alias_as_an_initkwarg() -> None:
    with override_settings(CHANNEL_LAYERS={"default": IN_MEMORY, "other": IN_MEMORY}):
        communicator = ApplicationCommunicator(
            LayerUser.as_asgi(log=[], channel_layer_alias="other"), SCOPE
        )
        channel_name = (await whoami(communicator))["channel_name"]
        other = get_channel_layer("other")
        assert other is not None
        await other.send(channel_name, {"type": "layer.stop"})
        await communicator.wait()


# -- SyncConsumer ----------------------------------------------------------------------


@pytest.mark.asyncio
async def test_sync_handlers_run_outside_the_event_loop_thread(
    layer_setting: str, stop: Any
) -> None:
    class WhereAmI(SyncConsumer):
        def test_where(self, message: dict[str, Any]) -> None:
            self.send({"type": "here", "thread": threading.get_ident()})

    communicator = ApplicationCommunicator(WhereAmI.as_asgi(), SCOPE)
    await communicator.send_input({"type": "test.where"})
    answer = await communicator.receive_output()
    assert answer["thread"] != threading.get_ident()
    await stop(communicator)


@pytest.mark.asyncio
async def test_sync_consumer_receives_layer_events(layer: InMemoryChannelLayer, stop: Any) -> None:
    class SyncLayerUser(SyncConsumer):
        def test_whoami(self, message: dict[str, Any]) -> None:
            self.send({"type": "me", "channel_name": self.channel_name})

        def layer_event(self, message: dict[str, Any]) -> None:
            self.send({"type": "from layer", "payload": message["payload"]})

    communicator = ApplicationCommunicator(SyncLayerUser.as_asgi(), SCOPE)
    channel_name = (await whoami(communicator))["channel_name"]
    await layer.send(channel_name, {"type": "layer.event", "payload": [1, 2]})
    assert await communicator.receive_output() == {"type": "from layer", "payload": [1, 2]}
    await stop(communicator)


@pytest.mark.django_db(transaction=True)
@pytest.mark.asyncio
async def test_sync_handler_queries_the_database_and_closes_its_connection(
    layer_setting: str,
) -> None:
    connections_used: list[Any] = []

    class Accounts(SyncConsumer):
        def test_signup(self, message: dict[str, Any]) -> None:
            User.objects.create_user(username=message["username"])
            # The wrapper of this thread's connection, not the per-thread proxy.
            connections_used.append(connections["default"])
            self.send({"type": "users", "count": User.objects.count()})

        def test_stop(self, message: dict[str, Any]) -> None:
            raise StopConsumer()

    communicator = ApplicationCommunicator(Accounts.as_asgi(), SCOPE)
    await communicator.send_input({"type": "test.signup", "username": "ada"})
    assert await communicator.receive_output() == {"type": "users", "count": 1}
    await communicator.send_input({"type": "test.signup", "username": "grace"})
    assert await communicator.receive_output() == {"type": "users", "count": 2}
    await communicator.send_input({"type": "test.stop"})
    await communicator.wait()
    # CONN_MAX_AGE is 0: the connection the handler opened was closed after it.
    assert connections_used
    assert all(conn.connection is None for conn in connections_used)
    # (database_sync_to_async, so this check leaves no connection open either.)
    assert await database_sync_to_async(User.objects.filter(username="grace").exists)()


class SignUp(SyncConsumer):
    """Creates users from client and layer events, answering with the user count."""

    def test_whoami(self, message: dict[str, Any]) -> None:
        self.send({"type": "me", "channel_name": self.channel_name})

    def layer_signup(self, message: dict[str, Any]) -> None:
        User.objects.create_user(username=message["username"])
        self.send({"type": "users", "count": User.objects.count()})


class AsyncSignUp(AsyncConsumer):
    async def test_whoami(self, message: dict[str, Any]) -> None:
        await self.send({"type": "me", "channel_name": self.channel_name})

    async def layer_signup(self, message: dict[str, Any]) -> None:
        count = await self.create_and_count(message["username"])
        await self.send({"type": "users", "count": count})

    @database_sync_to_async
    def create_and_count(self, username: str) -> int:
        User.objects.create_user(username=username)
        return User.objects.count()


@override_settings(CHANNEL_LAYERS={"default": IN_MEMORY})
class ConsumersInATestCase(TestCase):
    """Handlers run for layer events use the TestCase's transaction, and leave it open."""

    @classmethod
    def setUpTestData(cls) -> None:
        User.objects.create_user(username="from-setup")

    async def check(self, consumer: type[AsyncConsumer]) -> None:
        layer = get_channel_layer()
        assert layer is not None
        communicator = ApplicationCommunicator(consumer.as_asgi(), SCOPE)
        channel_name = (await whoami(communicator))["channel_name"]
        for count, username in enumerate(["ada", "grace"], start=2):
            await layer.send(channel_name, {"type": "layer.signup", "username": username})
            assert await communicator.receive_output() == {"type": "users", "count": count}
        # (A TestCase gets no fixtures: the conftest's stop(), written out.)
        communicator.future.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await communicator.future
        # The test's own queries still work, in the same transaction.
        assert await User.objects.filter(username__in=["ada", "grace"]).acount() == 2

    async def test_sync_consumer(self) -> None:
        await self.check(SignUp)

    async def test_async_consumer(self) -> None:
        await self.check(AsyncSignUp)


@pytest.mark.asyncio
async def test_a_sync_handler_still_running_after_cancellation_sends_nothing(
    layer_setting: str,
    tasks_left: Any,
) -> None:
    """The thread of a cancelled sync handler cannot be stopped; what it sends later
    must not start a task or reach the client once the instance has gone."""
    entered = threading.Event()
    finished = threading.Event()

    class Slow(SyncConsumer):
        def test_slow(self, message: dict[str, Any]) -> None:
            entered.set()
            time.sleep(0.05)
            self.send({"type": "too late"})
            finished.set()

    before = asyncio.all_tasks()
    communicator = ApplicationCommunicator(Slow.as_asgi(), SCOPE)
    await communicator.send_input({"type": "test.slow"})
    await asyncio.to_thread(entered.wait, 1)
    communicator.future.cancel()
    with pytest.raises(asyncio.CancelledError):
        await communicator.future
    assert tasks_left(before) == set()
    await asyncio.to_thread(finished.wait, 1)
    await asyncio.sleep(0.01)
    assert tasks_left(before) == set()
    assert communicator.output_queue.empty()


@pytest.mark.asyncio
async def test_a_handler_awaiting_its_failing_start_task_does_not_hang(
    layer_setting: str,
) -> None:
    log: list[str] = []

    class Awaiting(AsyncConsumer):
        async def fail(self) -> None:
            await asyncio.sleep(0)
            raise Boom("child failed")

        async def test_work(self, message: dict[str, Any]) -> None:
            await self.start_task(self.fail())
            log.append("after the task")

    communicator = ApplicationCommunicator(Awaiting.as_asgi(), SCOPE)
    await communicator.send_input({"type": "test.work"})
    with pytest.raises(Boom, match="child failed"):
        await communicator.wait(timeout=1)


# -- a turn of the event loop between two events -----------------------------------------
#
# Channels reads each next event through the event loop, so a task a handler
# schedules runs before the next event is handled, even when that event is
# already waiting. Libraries rely on it: a subscription set up by such a task
# must be in place before the client's next message.


class Spawner(AsyncConsumer):
    """``spawn`` schedules a task that records; ``report`` sends what was recorded."""

    log: list[str] = []

    async def record(self, what: str) -> None:
        self.log.append(what)

    async def test_spawn(self, message: dict[str, Any]) -> None:
        coroutine = self.record(f"task of {message['n']}")
        if message.get("how") == "create_task":
            self.task = asyncio.get_running_loop().create_task(coroutine)
        else:
            self.task = asyncio.ensure_future(coroutine)

    async def test_report(self, message: dict[str, Any]) -> None:
        self.log.append("report")
        await self.send({"type": "log", "log": list(self.log)})

    async def test_whoami(self, message: dict[str, Any]) -> None:
        await self.send({"type": "me", "channel_name": self.channel_name})

    layer_spawn = test_spawn
    layer_report = test_report


@pytest.mark.parametrize("how", ["ensure_future", "create_task"])
@pytest.mark.asyncio
async def test_a_task_a_handler_schedules_runs_before_the_next_queued_event(
    layer_setting: str, how: str, stop: Any
) -> None:
    communicator = ApplicationCommunicator(Spawner.as_asgi(log=[]), SCOPE)
    # Both events are queued before the instance has even started.
    await communicator.send_input({"type": "test.spawn", "n": 1, "how": how})
    await communicator.send_input({"type": "test.report"})
    assert await communicator.receive_output() == {"type": "log", "log": ["task of 1", "report"]}
    await stop(communicator)


@pytest.mark.asyncio
async def test_every_queued_event_gives_the_loop_a_turn(layer_setting: str, stop: Any) -> None:
    communicator = ApplicationCommunicator(Spawner.as_asgi(log=[]), SCOPE)
    for n in range(3):
        await communicator.send_input({"type": "test.spawn", "n": n})
    await communicator.send_input({"type": "test.report"})
    answer = await communicator.receive_output()
    assert answer["log"] == ["task of 0", "task of 1", "task of 2", "report"]
    await stop(communicator)


@pytest.mark.asyncio
async def test_layer_events_give_the_loop_a_turn_too(
    layer: InMemoryChannelLayer, stop: Any
) -> None:
    log: list[str] = []
    communicator = ApplicationCommunicator(Spawner.as_asgi(log=log), SCOPE)
    channel_name = (await whoami(communicator))["channel_name"]
    # Both are in the channel before the instance's reader wakes up.
    await layer.send(channel_name, {"type": "layer.spawn", "n": 1})
    await layer.send(channel_name, {"type": "layer.report"})
    answer = await communicator.receive_output()
    assert answer["log"] == ["task of 1", "report"]
    await stop(communicator)


class SelfFeeding(AsyncConsumer):
    """Keeps sending itself layer events, up to *limit*, then reports."""

    limit = 100_000
    count = 0

    async def test_start(self, message: dict[str, Any]) -> None:
        assert self.channel_layer is not None
        await self.channel_layer.send(self.channel_name, {"type": "layer.again"})

    async def layer_again(self, message: dict[str, Any]) -> None:
        assert self.channel_layer is not None
        self.count += 1
        if self.count < self.limit:
            await self.channel_layer.send(self.channel_name, {"type": "layer.again"})
        else:
            await self.send({"type": "done"})


@pytest.mark.asyncio
async def test_an_instance_feeding_itself_events_does_not_hold_the_loop(
    layer: InMemoryChannelLayer,
    stop: Any,
) -> None:
    busy = ApplicationCommunicator(SelfFeeding.as_asgi(), SCOPE)
    await busy.send_input({"type": "test.start"})
    # Each of its events is already waiting when the previous one is done;
    # another connection is still served in the meantime.
    other = ApplicationCommunicator(Greeter.as_asgi(), SCOPE)
    await other.send_input({"type": "test.ask"})
    assert await other.receive_output() == {"type": "test.answer", "greeting": "hello"}
    assert busy.output_queue.empty(), "the busy instance ran all its events first"
    await stop(busy)
    await stop(other)


# -- after the client has gone ------------------------------------------------------------


class AsyncBurst(AsyncConsumer):
    log: list[str] = []

    async def test_burst(self, message: dict[str, Any]) -> None:
        for n in range(3):
            await self.send({"type": "test.frame", "n": n})
        self.log.append("burst sent")

    async def test_stop(self, message: dict[str, Any]) -> None:
        self.log.append("stop")
        raise StopConsumer()


class SyncBurst(SyncConsumer):
    log: list[str] = []

    def test_burst(self, message: dict[str, Any]) -> None:
        for n in range(3):
            self.send({"type": "test.frame", "n": n})
        self.log.append("burst sent")

    def test_stop(self, message: dict[str, Any]) -> None:
        self.log.append("stop")
        raise StopConsumer()


@pytest.mark.parametrize("cls", [AsyncBurst, SyncBurst], ids=["async", "sync"])
@pytest.mark.asyncio
async def test_sends_after_the_client_has_gone_are_dropped_and_the_instance_goes_on(
    cls: type[AsyncBurst], layer_setting: str, caplog: pytest.LogCaptureFixture, leaving_client: Any
) -> None:
    caplog.set_level("DEBUG", logger="channels.consumer")
    log: list[str] = []
    server = leaving_client(cls.as_asgi(log=log))
    communicator = ApplicationCommunicator(server, SCOPE)
    await communicator.send_input({"type": "test.burst"})
    assert [(await communicator.receive_output())["n"] for _ in range(3)] == [0, 1, 2]

    server.leave()
    await communicator.send_input({"type": "test.burst"})
    await server.refused_one.wait()
    # The server's disconnect event (here: any next event) is still dispatched.
    await communicator.send_input({"type": "test.stop"})
    await communicator.wait()
    assert log == ["burst sent", "burst sent", "stop"]
    # The first refusal was enough: later sends never reached the server.
    assert server.refused == [{"type": "test.frame", "n": 0}]
    assert communicator.output_queue.empty()
    dropped = [r for r in caplog.records if r.name == "channels.consumer"]
    assert len(dropped) == 1
    assert dropped[0].levelname == "DEBUG"
    assert cls.__qualname__ in dropped[0].getMessage()
    assert "ClientGone" in dropped[0].getMessage()


class SendDeadline(TimeoutError):
    """A TimeoutError around a send: an OSError, but not one about a closed connection."""


@pytest.mark.parametrize("error", [RuntimeError, ValueError, SendDeadline])
@pytest.mark.parametrize("cls", [AsyncBurst, SyncBurst], ids=["async", "sync"])
@pytest.mark.asyncio
async def test_other_errors_from_the_server_send_still_end_the_instance(
    cls: type[AsyncBurst], error: type[Exception], layer_setting: str, leaving_client: Any
) -> None:
    server = leaving_client(cls.as_asgi(log=[]), error=error)
    server.leave()
    communicator = ApplicationCommunicator(server, SCOPE)
    await communicator.send_input({"type": "test.burst"})
    with pytest.raises(error, match=r"Cannot send 'test\.frame'"):
        await communicator.wait()
