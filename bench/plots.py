"""Draw the plots and tables of ``docs/performance.rst`` from the benchmarks' JSON.

    python bench/plots.py                      # bench/results/ -> docs/_static/performance/
    python bench/plots.py --results DIR --output DIR

It reads ``server.json`` (``bench/server.py --json``) and ``redis_layer.json``
(``bench/redis_layer.py --json``) and writes, for each file it finds:

* ``server-throughput.svg`` and ``server-idle-memory.svg``,
* ``redis-layer-rates.svg`` and ``redis-layer-latency.svg``,

and one ``performance.inc``: the figures with their captions (the machine, the
versions, the date and the command of the run, all read from the JSON) and the
tables of numbers, which ``docs/performance.rst`` includes. No number is
written anywhere but here, from the JSON. It runs no benchmark.

``nox -s bench_plots`` runs it with the locked matplotlib. The SVGs are
deterministic (fixed hash salt, text kept as text, no date in the metadata),
so drawing them again from the same JSON changes no file.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("svg")

import matplotlib.pyplot as plt

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

# Same input, same bytes: the ids in the SVG come from this salt, text stays
# text (no glyph paths that change with the font cache), no creation date.
matplotlib.rcParams.update(
    {
        "svg.hashsalt": "channels-bench-plots",
        "svg.fonttype": "none",
        "font.family": "DejaVu Sans",
        "font.size": 9,
        "axes.spines.top": False,
        "axes.spines.right": False,
    }
)
SAVE_OPTIONS: dict[str, Any] = {"format": "svg", "metadata": {"Date": None}, "bbox_inches": "tight"}

#: Order and colours of the servers (ours in blues, the others in warm colours).
SERVER_STYLE = {
    "ours": ("channels-server", "#1f5fa8"),
    "ours-fast": ("channels-server[fast]", "#6fa8dc"),
    "daphne": ("Daphne", "#c0392b"),
    "daphne-original": ("Daphne + Channels + channels_redis (PyPI)", "#8e44ad"),
    "uvicorn": ("uvicorn (pure Python)", "#e69138"),
    "uvicorn-fast": ("uvicorn[standard]", "#f1c232"),
}
THROUGHPUT_ROWS = {
    "hello": "hello world (HTTP, wrk, 100 connections)",
    "django": "Django view (HTTP, wrk, 100 connections)",
    "ws-raw": "WebSocket echo, raw ASGI (100 clients)",
    "ws-consumer": "WebSocket echo, AsyncWebsocketConsumer (100 clients)",
}
IDLE_ROWS = {
    "idle-1000": "1,000 idle WebSockets, no channel layer",
    "idle-5000": "5,000 idle WebSockets, no channel layer",
    "idle-1000-redis": "1,000 idle WebSockets, Redis channel layer",
    "idle-5000-redis": "5,000 idle WebSockets, Redis channel layer",
}
#: The ratios the server table gives: (ours, theirs).
SERVER_RATIOS = [("ours", "daphne"), ("ours", "uvicorn"), ("ours-fast", "uvicorn-fast")]
#: For the idle rows: the original stack is what a project moving here runs today.
IDLE_RATIOS = [("ours", "daphne-original"), ("ours", "daphne"), ("ours", "uvicorn")]
LAYER_TITLES = {
    "core": "RedisChannelLayer",
    "pubsub": "RedisPubSubChannelLayer",
    "inmemory": "InMemoryChannelLayer",
}
OURS_COLOUR, ORIGINAL_COLOUR = "#1f5fa8", "#c0392b"
#: What ``bench/redis_layer.py``'s row metrics are called on the page.
METRIC_NAMES = {
    "serial.rate": "serial send then receive",
    "sequential.rate": "one sequential sender, 50 unreceived",
    "inflight.rate": "50 round trips in flight",
    "serial.p50_ms": "serial send then receive, p50",
    "sequential.p50_ms": "one send of a sequential sender, p50",
    "inflight.p50_ms": "50 in flight, p50",
    "group_add.mean_ms": "group_add, mean per member",
    "group_send.1.p50_ms": "group_send to 1 until received, p50",
    "group_send.100.p50_ms": "group_send to 100 until all received, p50",
    "group_send.1000.p50_ms": "group_send to 1,000 until all received, p50",
}
RATE_METRICS = ["serial.rate", "sequential.rate", "inflight.rate"]
LATENCY_METRICS = [name for name in METRIC_NAMES if name not in RATE_METRICS]


# -- reading the runs -------------------------------------------------------------------------


def load(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def machine_text(machine: dict[str, Any]) -> str:
    cpus = machine.get("cpus", "?")
    text = f"{machine.get('cpu', '?')}, {cpus} CPUs, {machine.get('system', '?')}"
    text += f", Python {machine.get('python', '?')}"
    redis = machine.get("redis_server") or machine.get("tools", {}).get("redis-server")
    if redis:
        # bench/server.py keeps redis-server's banner ("Redis server v=7.0.15 sha=...").
        version = next((word[2:] for word in redis.split() if word.startswith("v=")), redis)
        text += f", Redis {version}"
    return text


def server_versions_text(data: dict[str, Any]) -> str:
    """One phrase per server: the distribution that serves, and what runs behind it."""
    parts = []
    for name in servers_in(data):
        found = data.get("versions", {}).get(name, {})
        if name.startswith("ours"):
            what = f"channels-server {found.get('channels-server', '?')}"
            if name == "ours-fast":
                what += f" with uvloop {found.get('uvloop', '?')}"
            behind = f"channels-core {found.get('channels-core', '?')}"
        elif name.startswith("uvicorn"):
            what = f"uvicorn {found.get('uvicorn', '?')}"
            behind = f"channels-core {found.get('channels-core', '?')}"
        elif name == "daphne-original":
            what = f"Daphne {found.get('daphne', '?')}"
            behind = (
                f"Channels {found.get('channels', '?')}, "
                f"channels_redis {found.get('channels-redis', '?')}"
            )
        else:
            what = f"Daphne {found.get('daphne', '?')}"
            behind = f"channels-core {found.get('channels-core', '?')}"
        django = found.get("django")
        if django:
            behind += f", Django {django}"
        parts.append(f"{SERVER_STYLE.get(name, (name,))[0]}: {what} ({behind})")
    return "; ".join(parts)


def layer_versions_text(data: dict[str, Any]) -> str:
    parts = []
    for kind, layer in data["layers"].items():
        versions = layer.get("versions", {})
        ours = "channels-core" if kind == "inmemory" else "channels-layers-redis"
        theirs = "Channels" if kind == "inmemory" else "channels_redis"
        parts.append(
            f"{LAYER_TITLES.get(kind, kind)}: {ours} {versions.get('ours', '?')} "
            f"against {theirs} {versions.get('original', '?')}"
        )
    return "; ".join(parts)


def servers_in(data: dict[str, Any]) -> list[str]:
    names = list(data.get("options", {}).get("servers") or data["results"])
    return [name for name in SERVER_STYLE if name in names] + [
        name for name in names if name not in SERVER_STYLE and name != "no-server"
    ]


def rows_in(data: dict[str, Any], kinds: dict[str, str]) -> list[str]:
    ran = set(data.get("options", {}).get("rows") or [])
    for by_row in data["results"].values():
        ran |= set(by_row)
    return [row for row in kinds if row in ran]


def server_value(data: dict[str, Any], server: str, row: str) -> float | None:
    result = data["results"].get(server, {}).get(row)
    if not result or "error" in result:
        return None
    key = "kib_per_socket" if row in IDLE_ROWS else "rate"
    value = result.get(key)
    return None if value is None else float(value)


def server_command(data: dict[str, Any]) -> str:
    """The command that reproduces the run, from the options it recorded."""
    options = data.get("options", {})
    command = "python bench/server.py"
    if data.get("quick"):
        command += " --quick"
    servers = options.get("servers")
    if servers and sorted(servers) != sorted(SERVER_STYLE):
        command += " --servers " + ",".join(servers)
    rows = options.get("rows")
    if rows and sorted(rows) != sorted([*THROUGHPUT_ROWS, *IDLE_ROWS]):
        command += " --rows " + ",".join(rows)
    if options.get("layer"):
        command += f" --layer {options['layer']}"
    if options.get("duration") not in (None, 10.0) and not data.get("quick"):
        command += f" --duration {options['duration']:g}"
    return command + " --json bench/results/server.json"


def layer_command(data: dict[str, Any]) -> str:
    command = "python bench/redis_layer.py"
    if data.get("quick"):
        command += " --quick"
    rounds = {layer.get("rounds") for layer in data["layers"].values()}
    if rounds != {3}:
        command += " --rounds " + ",".join(str(number) for number in sorted(rounds))
    layers = list(data["layers"])
    if layers != ["core", "pubsub", "inmemory"]:
        command += " --layers " + ",".join(layers)
    return command + " --json bench/results/redis_layer.json"


def run_text(data: dict[str, Any], command: str) -> str:
    minutes = data.get("seconds", 0) / 60
    quick = " A ``--quick`` smoke run: not a measurement to quote." if data.get("quick") else ""
    return f"Run {data['date']} ({minutes:.0f} min): ``{command}``.{quick}"


# -- numbers as text -------------------------------------------------------------------------

MISSING = "\N{EN DASH}"
TIMES = "\N{MULTIPLICATION SIGN}"


def rate_text(value: float | None) -> str:
    return MISSING if value is None else f"{value:,.0f}/s"


def ms_text(value: float | None) -> str:
    if value is None:
        return MISSING
    if value >= 10:
        return f"{value:,.1f} ms"
    if value >= 0.1:
        return f"{value:.2f} ms"
    return f"{value * 1000:,.1f} µs"


def ratio_text(value: float | None) -> str:
    return MISSING if value is None else f"{value:.2f}{TIMES}"


def rounds_text(layer: dict[str, Any]) -> str:
    rounds = layer.get("rounds", 0)
    if rounds == 1:
        return "one round"
    return f"median of {rounds} rounds, their range as whiskers"


def layer_row(layer: dict[str, Any], metric: str) -> dict[str, Any] | None:
    for row in layer["rows"]:
        if row["metric"] == metric:
            return row  # type: ignore[no-any-return]
    return None


# -- figures -----------------------------------------------------------------------------------


def footer(figure: Any, text: str) -> None:
    figure.text(0.0, -0.01, text, ha="left", va="top", fontsize=7, color="#555555", wrap=True)


def bar_labels(axes: Any, bars: Any, texts: list[str]) -> None:
    for bar, text in zip(bars, texts, strict=True):
        axes.annotate(
            text,
            (bar.get_width(), bar.get_y() + bar.get_height() / 2),
            xytext=(3, 0),
            textcoords="offset points",
            va="center",
            fontsize=7,
        )


def server_figure(data: dict[str, Any], rows: dict[str, str], unit: str, path: Path) -> bool:
    present = rows_in(data, rows)
    servers = servers_in(data)
    if not present:
        return False
    figure, axes_list = plt.subplots(
        len(present), 1, figsize=(8, 0.35 * len(servers) * len(present) + 0.9 * len(present))
    )
    axes_list = [axes_list] if len(present) == 1 else list(axes_list)
    for axes, row in zip(axes_list, present, strict=True):
        shown = [name for name in servers if server_value(data, name, row) is not None]
        values = [server_value(data, name, row) or 0.0 for name in shown]
        positions = list(range(len(shown)))[::-1]
        bars = axes.barh(
            positions,
            values,
            color=[SERVER_STYLE.get(name, (name, "#999999"))[1] for name in shown],
            height=0.7,
        )
        axes.set_yticks(positions, [SERVER_STYLE.get(name, (name,))[0] for name in shown])
        texts = [f"{value:.1f} KiB" if unit == "KiB" else f"{value:,.0f}/s" for value in values]
        bar_labels(axes, bars, texts)
        axes.set_title(rows[row], loc="left", fontsize=9, fontweight="bold")
        axes.set_xlim(0, max(values or [1]) * 1.25)
        axes.set_xlabel(
            "KiB of server RSS per idle WebSocket (lower is better)"
            if unit == "KiB"
            else "requests or messages per second (higher is better)"
        )
    figure.tight_layout()
    footer(
        figure,
        f"{machine_text(data['machine'])}. {data['date']}. Server on CPU 0, load on CPU 1.",
    )
    figure.savefig(path, **SAVE_OPTIONS)
    plt.close(figure)
    return True


def layer_figure(data: dict[str, Any], metrics: list[str], path: Path) -> bool:
    layers = [kind for kind in data["layers"] if data["layers"][kind].get("rows")]
    if not layers:
        return False
    latency = metrics is LATENCY_METRICS
    per_layer = 0.5 * len(metrics) + 1.0
    figure, axes_list = plt.subplots(len(layers), 1, figsize=(8, per_layer * len(layers)))
    axes_list = [axes_list] if len(layers) == 1 else list(axes_list)
    for axes, kind in zip(axes_list, layers, strict=True):
        layer = data["layers"][kind]
        rows = [row for metric in metrics if (row := layer_row(layer, metric)) is not None]
        positions = list(range(len(rows)))[::-1]
        height = 0.38
        versions = layer.get("versions", {})
        theirs = "Channels" if kind == "inmemory" else "channels_redis"
        for offset, side, colour, name in (
            (height / 2, "ours", OURS_COLOUR, f"ours {versions.get('ours', '?')}"),
            (-height / 2, "original", ORIGINAL_COLOUR, f"{theirs} {versions.get('original', '?')}"),
        ):
            medians = [row[side]["median"] for row in rows]
            low = [row[side]["median"] - row[side]["min"] for row in rows]
            high = [row[side]["max"] - row[side]["median"] for row in rows]
            bars = axes.barh(
                [position + offset for position in positions],
                medians,
                height=height,
                color=colour,
                label=name,
                xerr=[low, high],
                error_kw={"elinewidth": 0.8, "capsize": 2, "ecolor": "#333333"},
            )
            bar_labels(axes, bars, [ms_text(v) if latency else f"{v:,.0f}/s" for v in medians])
        axes.set_yticks(
            positions,
            [f"{METRIC_NAMES[row['metric']]} ({ratio_text(row['ratio'])})" for row in rows],
        )
        axes.set_title(
            f"{LAYER_TITLES.get(kind, kind)}: {rounds_text(layer)}",
            loc="left",
            fontsize=9,
            fontweight="bold",
        )
        if latency:
            axes.set_xscale("log")
            axes.set_xlabel("milliseconds, log scale (lower is better)")
            top = max(row[side]["max"] for row in rows for side in ("ours", "original"))
            axes.set_xlim(right=top * 4)
        else:
            axes.set_xlabel("messages per second (higher is better)")
            top = max(row[side]["max"] for row in rows for side in ("ours", "original"))
            axes.set_xlim(0, top * 1.3)
        axes.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0), fontsize=7, frameon=False)
    figure.tight_layout()
    footer(
        figure,
        f"{machine_text(data['machine'])}. {data['date']}. Layer on CPU 0, Redis on CPU 1. "
        "In brackets: ours against the original, above 1 when ours is better.",
    )
    figure.savefig(path, **SAVE_OPTIONS)
    plt.close(figure)
    return True


# -- the generated reStructuredText ---------------------------------------------------------


def list_table(header: list[str], body: list[list[str]], widths: list[int] | None = None) -> str:
    lines = [".. list-table::", "   :header-rows: 1"]
    if widths:
        lines.append("   :widths: " + " ".join(str(width) for width in widths))
    lines.append("")
    for row in [header, *body]:
        lines.append(f"   * - {row[0]}")
        lines.extend(f"     - {cell}" for cell in row[1:])
    return "\n".join(lines) + "\n"


def figure_rst(name: str, alt: str, caption: str) -> str:
    return (
        f".. figure:: /_static/performance/{name}\n"
        f"   :alt: {alt}\n"
        "   :width: 100%\n\n"
        f"   {caption}\n"
    )


def server_section(data: dict[str, Any], output: Path) -> list[str]:
    parts = []
    command = server_command(data)
    versions = server_versions_text(data)
    servers = servers_in(data)
    throughput = rows_in(data, THROUGHPUT_ROWS)
    if server_figure(data, THROUGHPUT_ROWS, "rate", output / "server-throughput.svg"):
        parts.append(
            figure_rst(
                "server-throughput.svg",
                "Requests or messages per second for each server and row",
                "Throughput of each server, one fresh server process per row. "
                f"{machine_text(data['machine'])}. {versions}. {run_text(data, command)}",
            )
        )
        header = ["row", *(SERVER_STYLE.get(name, (name,))[0] for name in servers)]
        header += [f"``{ours}`` / ``{theirs}``" for ours, theirs in SERVER_RATIOS]
        body = []
        for row in throughput:
            cells = [f"``{row}``"]
            cells += [rate_text(server_value(data, name, row)) for name in servers]
            for ours, theirs in SERVER_RATIOS:
                mine, other = server_value(data, ours, row), server_value(data, theirs, row)
                cells.append(ratio_text(mine / other if mine and other else None))
            body.append(cells)
        parts.append(list_table(header, body))
        ceiling = server_value(data, "no-server", "django")
        if "django" in throughput and ceiling:
            parts.append(
                "The ``django`` row's ceiling: the same Django application driven in-process, "
                f"with no server and no sockets, on the server's CPU: {rate_text(ceiling)}.\n"
            )
    idle = rows_in(data, IDLE_ROWS)
    left_out = [row for row in [*THROUGHPUT_ROWS, *IDLE_ROWS] if row not in throughput + idle]
    if left_out:
        parts.append(
            "This run left out the rows "
            + ", ".join(f"``{row}``" for row in left_out)
            + ": ``bench/server.py`` without ``--rows`` runs them too.\n"
        )
    if server_figure(data, IDLE_ROWS, "KiB", output / "server-idle-memory.svg"):
        parts.append(
            figure_rst(
                "server-idle-memory.svg",
                "Server memory per idle WebSocket for each server, with and without a layer",
                "Growth of the server's resident memory per open, idle WebSocket on an "
                "``AsyncWebsocketConsumer`` (with the Redis layer: each consumer has a channel "
                "and waits on it). "
                f"{machine_text(data['machine'])}. {versions}. {run_text(data, command)}",
            )
        )
        header = ["row", *(SERVER_STYLE.get(name, (name,))[0] for name in servers)]
        header += [f"``{theirs}`` / ``{ours}``" for ours, theirs in IDLE_RATIOS]
        body = []
        for row in idle:
            cells = [f"``{row}``"]
            for name in servers:
                value = server_value(data, name, row)
                cells.append(MISSING if value is None else f"{value:.1f} KiB")
            for ours, theirs in IDLE_RATIOS:
                mine, other = server_value(data, ours, row), server_value(data, theirs, row)
                cells.append(ratio_text(other / mine if mine and other else None))
            body.append(cells)
        parts.append(list_table(header, body))
    return parts


def layer_section(data: dict[str, Any], output: Path) -> list[str]:
    parts = []
    command = layer_command(data)
    where = f"{machine_text(data['machine'])}. {layer_versions_text(data)}."
    if layer_figure(data, RATE_METRICS, output / "redis-layer-rates.svg"):
        parts.append(
            figure_rst(
                "redis-layer-rates.svg",
                "Messages per second of our layers and the original ones",
                "Rates of each layer against the original of the same import path. "
                f"{where} {run_text(data, command)}",
            )
        )
    if layer_figure(data, LATENCY_METRICS, output / "redis-layer-latency.svg"):
        parts.append(
            figure_rst(
                "redis-layer-latency.svg",
                "Median latencies of our layers and the original ones",
                "Median (p50) latencies of the same runs, and the mean time of one "
                f"``group_add``. {where} {run_text(data, command)}",
            )
        )
    for kind, layer in data["layers"].items():
        body = []
        for row in layer["rows"]:
            latency = row["unit"] == "ms"
            value = ms_text if latency else rate_text
            cells = [row["label"].strip() if not row["label"].startswith(" ") else
                     "   " + row["label"].strip()]  # fmt: skip
            for side in ("ours", "original"):
                numbers = row[side]
                if row["unit"] == "us":
                    cells.append(f"{numbers['median']:,.1f} µs")
                else:
                    cells.append(value(numbers["median"]))
            cells.append(ratio_text(row.get("ratio")))
            body.append(cells)
        for cells in body:
            # An indented label belongs to the row above; say so in the table.
            if cells[0].startswith("   "):
                cells[0] = "↳ " + cells[0].strip()
        versions = layer.get("versions", {})
        theirs = "Channels" if kind == "inmemory" else "channels_redis"
        parts.append(
            f"**{LAYER_TITLES.get(kind, kind)}** ({rounds_text(layer).split(',')[0]}; "
            "a ratio above 1 means ours is better)\n\n"
            + list_table(
                [
                    "row",
                    f"ours {versions.get('ours', '?')}",
                    f"{theirs} {versions.get('original', '?')}",
                    "ratio",
                ],
                body,
                [50, 17, 17, 16],
            )
        )
    return parts


def generated_rst(
    server: dict[str, Any] | None, layers: dict[str, Any] | None, output: Path
) -> str:
    sections = [
        "..\n   Generated by bench/plots.py (nox -s bench_plots) from bench/results/*.json.\n"
        "   Do not edit: run the benchmarks and the session again.\n"
    ]
    sections.append("Servers\n-------\n")
    if server is None:
        sections.append("No ``bench/results/server.json`` yet.\n")
    else:
        sections.extend(server_section(server, output))
    sections.append("Channel layers\n--------------\n")
    if layers is None:
        sections.append("No ``bench/results/redis_layer.json`` yet.\n")
    else:
        sections.extend(layer_section(layers, output))
    return "\n".join(sections)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--results", type=Path, default=HERE / "results")
    parser.add_argument("--output", type=Path, default=ROOT / "docs" / "_static" / "performance")
    arguments = parser.parse_args()
    arguments.output.mkdir(parents=True, exist_ok=True)
    server = load(arguments.results / "server.json")
    layers = load(arguments.results / "redis_layer.json")
    if server is None and layers is None:
        print(f"no server.json or redis_layer.json in {arguments.results}", file=sys.stderr)
        return 1
    text = generated_rst(server, layers, arguments.output)
    (arguments.output / "performance.inc").write_text(text)
    for path in sorted(arguments.output.iterdir()):
        print(path.relative_to(ROOT) if path.is_relative_to(ROOT) else path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
