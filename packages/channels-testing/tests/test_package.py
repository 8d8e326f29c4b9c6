"""channels_testing as a package: its exports, and that it needs neither Django nor Channels."""

from __future__ import annotations

import subprocess
import sys
import textwrap

import asgiref.testing

import channels_testing


def test_exports() -> None:
    assert channels_testing.__all__ == [
        "ApplicationCommunicator",
        "ChannelsLiveServerTestCase",
        "HttpCommunicator",
        "WebsocketCommunicator",
        "__version__",
    ]
    # ChannelsLiveServerTestCase is imported on first use (it needs Django and
    # channels-server); the others are there at once.
    for name in channels_testing.__all__:
        if name != "ChannelsLiveServerTestCase":
            assert name in vars(channels_testing)
    assert isinstance(channels_testing.__version__, str)


def test_application_communicator_is_asgirefs() -> None:
    assert channels_testing.ApplicationCommunicator is asgiref.testing.ApplicationCommunicator
    assert issubclass(channels_testing.HttpCommunicator, asgiref.testing.ApplicationCommunicator)
    assert issubclass(
        channels_testing.WebsocketCommunicator, asgiref.testing.ApplicationCommunicator
    )


def test_works_without_django_or_channels() -> None:
    """Import and drive a WebSocket app in a fresh interpreter where Django and Channels
    cannot be imported at all."""
    code = textwrap.dedent(
        """
        import asyncio
        import sys
        from importlib.abc import MetaPathFinder

        class Blocker(MetaPathFinder):
            def find_spec(self, fullname, path=None, target=None):
                if fullname.split(".")[0] in ("django", "channels"):
                    raise ModuleNotFoundError(f"blocked {fullname}", name=fullname)
                return None

        sys.meta_path.insert(0, Blocker())

        from channels_testing import HttpCommunicator, WebsocketCommunicator

        async def app(scope, receive, send):
            if scope["type"] == "http":
                await receive()
                await send({"type": "http.response.start", "status": 200})
                await send({"type": "http.response.body", "body": b"fine"})
                return
            await receive()
            await send({"type": "websocket.accept"})
            message = await receive()
            await send({"type": "websocket.send", "text": message["text"].upper()})
            await receive()

        async def main():
            response = await HttpCommunicator(app, "GET", "/").get_response()
            communicator = WebsocketCommunicator(app, "/")
            assert await communicator.connect() == (True, None)
            await communicator.send_to(text_data="ok")
            text = await communicator.receive_from()
            await communicator.disconnect()
            print(response["body"].decode(), text)

        asyncio.run(main())
        assert not any(name.split(".")[0] in ("django", "channels") for name in sys.modules)
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=30, check=False
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "fine OK"
