from django.http import HttpRequest, HttpResponse
from django.urls import path

PAGE = """<!doctype html>
<html lang="en">
<head><meta charset="utf-8"><title>Channels echo</title></head>
<body>
<h1>Echo</h1>
<p id="status">connecting…</p>
<form id="form"><input id="text" autocomplete="off" autofocus><button>Send</button></form>
<pre id="log"></pre>
<script>
const log = document.getElementById("log");
const socket = new WebSocket(`ws://${location.host}/ws/echo/`);
socket.onopen = () => { document.getElementById("status").textContent = "connected"; };
socket.onclose = () => { document.getElementById("status").textContent = "disconnected"; };
socket.onmessage = (event) => {
  const data = JSON.parse(event.data);
  if ("connected" in data) {
    document.getElementById("status").textContent = `connected (${data.connected} online)`;
  } else {
    log.textContent += data.echo + "\\n";
  }
};
document.getElementById("form").onsubmit = (event) => {
  event.preventDefault();
  const input = document.getElementById("text");
  socket.send(JSON.stringify({text: input.value}));
  input.value = "";
};
</script>
</body>
</html>
"""


def index(request: HttpRequest) -> HttpResponse:
    return HttpResponse(PAGE)


urlpatterns = [path("", index)]
