"""What the channels-server tests stand on: real servers, clients, parsers and applications.

* ``django_project``: the Django settings, URLconf and ASGI application of
  the runserver and live-server tests;
* ``servers``: a real :class:`~channels_server.Server` on 127.0.0.1 (port 0),
  the event loops the tests run on, free ports and socket paths;
* ``http_client``: raw-socket helpers, and an independent parser (an h11
  client) for what the server sends back;
* ``websocket_client``: an independent WebSocket client (autobahn);
* ``pairs``: in-memory client/server pairs for the sans-IO engines;
* ``strategies``: the hypothesis strategies for request lines, headers and bodies;
* ``fuzz_strategies``: the live fuzz's hostile requests and frames, whole cases;
* ``apps``: small ASGI applications the tests serve.

``conftest.py`` loads this folder by path under a name of its own
(``--import-mode=importlib`` puts no test folder on ``sys.path``) and hands
these to the tests as fixtures; the modules import nothing from the tests.
"""
