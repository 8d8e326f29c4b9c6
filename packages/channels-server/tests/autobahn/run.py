"""Run the Autobahn|Testsuite fuzzing client against channels-server.

Usage (the ``autobahn`` nox session runs this)::

    python packages/channels-server/tests/autobahn/run.py [--python2 PATH] [--cases 1.* ...]

What it does:

1. finds a Python 2.7 (``~/.pyenv/versions/2.7.18/bin/python`` unless told
   otherwise), installs ``virtualenv<20.22`` into it (the last release that can
   make a 2.7 environment) and makes a virtualenv with ``autobahntestsuite`` in
   it, once, under ``~/.cache/channels-server/autobahn-py27``;
2. starts channels-server with the echo application of ``echo.py`` on a free
   port (on asyncio's loop unless ``--loop uvloop``; ``--http h11`` or
   ``--http httptools`` picks the HTTP parser that reads the handshake);
3. runs ``wstest -m fuzzingclient`` on the cases of groups 1 to 13 (12 and
   13 are permessage-deflate, RFC 7692: the server offers it by default);
4. reads ``index.json`` of the report, prints how many cases ended in each
   behaviour, lists every FAILED case, and exits 1 if there is any.

Exit status: 0 no FAILED case; 1 some FAILED case (or the server died);
2 no Python 2.7 (said plainly on standard error); 3 the suite could not be
installed or run.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import select
import signal
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_PYTHON2 = Path.home() / ".pyenv" / "versions" / "2.7.18" / "bin" / "python"
DEFAULT_VENV = Path.home() / ".cache" / "channels-server" / "autobahn-py27"
DEFAULT_CASES = [f"{group}.*" for group in range(1, 14)]
# Group 9 sends messages of up to 16 MiB.
MESSAGE_LIMIT = str(64 * 1024 * 1024)


def say(message: str) -> None:
    print(f"autobahn: {message}", flush=True)


def ensure_wstest(python2: Path, venv: Path) -> Path:
    wstest = venv / "bin" / "wstest"
    if wstest.exists():
        return wstest
    say(f"installing virtualenv<20.22 into {python2}")
    subprocess.run(
        [str(python2), "-m", "pip", "install", "--quiet", "virtualenv<20.22"], check=True
    )
    say(f"creating {venv}")
    venv.parent.mkdir(parents=True, exist_ok=True)
    subprocess.run([str(python2), "-m", "virtualenv", str(venv)], check=True)
    say("installing autobahntestsuite")
    subprocess.run(
        [str(venv / "bin" / "pip"), "install", "--quiet", "autobahntestsuite"], check=True
    )
    if not wstest.exists():
        raise RuntimeError(f"autobahntestsuite installed no wstest at {wstest}")
    return wstest


def start_server(loop: str, http: str) -> tuple[subprocess.Popen[bytes], int]:
    command = [
        sys.executable,
        "-m",
        "channels_server",
        "--port",
        "0",
        "--loop",
        loop,
        "--http",
        http,
        "--lifespan",
        "off",
        "-v",
        "0",
        "--websocket-max-message-size",
        MESSAGE_LIMIT,
        "--websocket-max-frame-size",
        MESSAGE_LIMIT,
        # Cases 9.3.1 and 9.4.1 send 4 MiB in 64-byte fragments.
        "--websocket-max-fragments",
        str(1 << 20),
        "echo:application",
    ]
    process = subprocess.Popen(command, cwd=HERE, stdout=subprocess.PIPE)
    assert process.stdout is not None
    ready, _, _ = select.select([process.stdout], [], [], 30)
    line = process.stdout.readline().decode() if ready else ""
    match = re.search(r"Listening on http://127\.0\.0\.1:(\d+)", line)
    if not match:
        process.kill()
        raise RuntimeError(f"channels-server did not start (printed {line!r})")
    return process, int(match.group(1))


def summarise(index_file: Path, agent: str) -> int:
    results = json.loads(index_file.read_text())[agent]
    behaviours = Counter(result["behavior"] for result in results.values())
    closes = Counter(result["behaviorClose"] for result in results.values())
    say(f"{len(results)} cases")
    for behaviour in ("OK", "NON-STRICT", "INFORMATIONAL", "UNIMPLEMENTED", "FAILED"):
        say(
            f"  {behaviour:<14}{behaviours.get(behaviour, 0):>5}"
            f"   (close: {closes.get(behaviour, 0)})"
        )

    def case_key(case: str) -> list[int]:
        return [int(part) for part in case.split(".")]

    failed = sorted(
        (
            case
            for case, result in results.items()
            if "FAILED" in (result["behavior"], result["behaviorClose"])
        ),
        key=case_key,
    )
    for case in failed:
        say(
            f"  FAILED {case}: {results[case]['behavior']} / close {results[case]['behaviorClose']}"
        )
    return 1 if failed else 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--python2", type=Path, default=Path(os.environ.get("AUTOBAHN_PYTHON2", DEFAULT_PYTHON2))
    )
    parser.add_argument("--venv", type=Path, default=DEFAULT_VENV)
    parser.add_argument("--cases", nargs="+", default=DEFAULT_CASES)
    parser.add_argument("--loop", choices=("asyncio", "uvloop"), default="asyncio")
    parser.add_argument("--http", choices=("auto", "h11", "httptools"), default="auto")
    parser.add_argument("--reports", type=Path, default=None, help="keep the HTML report here")
    arguments = parser.parse_args(argv)

    if not arguments.python2.exists():
        print(
            f"autobahn: no Python 2.7 at {arguments.python2}: the Autobahn|Testsuite needs one "
            "(install 2.7.18 with pyenv, or pass --python2 / set AUTOBAHN_PYTHON2). "
            "Nothing was run.",
            file=sys.stderr,
        )
        return 2
    try:
        wstest = ensure_wstest(arguments.python2, arguments.venv)
    except (subprocess.CalledProcessError, RuntimeError) as exc:
        print(f"autobahn: could not install the Autobahn|Testsuite: {exc}", file=sys.stderr)
        return 3

    reports = arguments.reports or Path(tempfile.mkdtemp(prefix="autobahn-reports-"))
    server, port = start_server(arguments.loop, arguments.http)
    agent = "channels-server"
    try:
        with tempfile.TemporaryDirectory(prefix="autobahn-spec-") as spec_dir:
            spec = Path(spec_dir) / "fuzzingclient.json"
            spec.write_text(
                json.dumps(
                    {
                        "outdir": str(reports),
                        "servers": [{"agent": agent, "url": f"ws://127.0.0.1:{port}"}],
                        "cases": arguments.cases,
                        "exclude-cases": [],
                        "exclude-agent-cases": {},
                    }
                )
            )
            say(f"running wstest on cases {' '.join(arguments.cases)} against port {port}")
            started = time.monotonic()
            result = subprocess.run(
                [str(wstest), "-m", "fuzzingclient", "-s", str(spec)],
                cwd=spec_dir,
                stdout=subprocess.DEVNULL,
                check=False,
            )
            say(
                f"wstest finished in {time.monotonic() - started:.0f}s "
                f"with status {result.returncode}"
            )
        if server.poll() is not None:
            say(f"channels-server died during the run (status {server.returncode})")
            return 1
        index_file = reports / "index.json"
        if not index_file.exists():
            print(f"autobahn: wstest wrote no report at {index_file}", file=sys.stderr)
            return 3
        status = summarise(index_file, agent)
        say(f"report: {reports / 'index.html'}")
        return status
    finally:
        if server.poll() is None:
            server.send_signal(signal.SIGTERM)
            try:
                server.wait(timeout=15)
            except subprocess.TimeoutExpired:
                server.kill()


if __name__ == "__main__":
    sys.exit(main())
