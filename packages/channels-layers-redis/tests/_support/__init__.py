"""What the channels_redis tests stand on: real Redis servers and the tools around them.

* ``servers``: one ``redis-server`` child process on a free port (start, kill,
  freeze, thaw, ``redis-cli``), and a short temporary directory for them;
* ``sentinel``: a master, its replica and a Sentinel watching them;
* ``cluster``: a three-master Redis Cluster;
* ``tls``: a throwaway CA and a server that speaks TLS only;
* ``layers``: what the tests do with layers beside the one under test (a
  sender on another thread, the check that nothing logged an error).

``conftest.py`` loads this folder by path under a name of its own
(``--import-mode=importlib`` puts no test folder on ``sys.path``), so the
modules import each other relatively and nothing from the tests.
"""
