// The room page: one WebSocket to /ws/chat/<room>/, a log and an input.
//
// The server sends {"type": "chat", "user": ..., "message": ...} for every
// message posted in the room, and {"type": "error", "error": ...} when it
// refuses something; a refused room name also closes the socket with code
// 4400 and the reason as the close reason.
(function () {
  "use strict";

  const script = document.currentScript;
  const closeInvalidRoom = Number(script.dataset.closeInvalidRoom);
  const roomName = JSON.parse(document.getElementById("room-name").textContent);
  const log = document.getElementById("chat-log");
  const input = document.getElementById("chat-message-input");
  const submit = document.getElementById("chat-message-submit");
  const status = document.getElementById("chat-status");

  // Tests wait on data-state: connecting, open, closed or refused.
  function setStatus(state, text) {
    status.dataset.state = state;
    status.textContent = text;
    status.classList.toggle("error", state === "closed" || state === "refused");
  }

  function append(line) {
    log.value += line + "\n";
    log.scrollTop = log.scrollHeight;
  }

  // encodeURIComponent: room names may hold spaces, "?", "#", "%" or any
  // script; the server decodes the path back to the name.
  const scheme = window.location.protocol === "https:" ? "wss://" : "ws://";
  const socket = new WebSocket(
    scheme + window.location.host + "/ws/chat/" + encodeURIComponent(roomName) + "/"
  );
  let refusal = null;

  socket.addEventListener("open", function () {
    setStatus("open", "Connected.");
  });

  socket.addEventListener("message", function (event) {
    const data = JSON.parse(event.data);
    if (data.type === "chat") {
      append(data.user + ": " + data.message);
    } else if (data.type === "error") {
      refusal = data.error;
      setStatus(socket.readyState === WebSocket.OPEN ? "open" : "closed", data.error);
    }
  });

  socket.addEventListener("close", function (event) {
    input.disabled = true;
    submit.disabled = true;
    if (event.code === closeInvalidRoom) {
      setStatus("refused", event.reason || refusal || "This room name cannot be used.");
    } else {
      setStatus("closed", "Disconnected (code " + event.code + "). Reload the page to reconnect.");
    }
  });

  input.focus();
  input.addEventListener("keydown", function (event) {
    if (event.key === "Enter") {
      event.preventDefault();
      submit.click();
    }
  });

  submit.addEventListener("click", function () {
    const message = input.value;
    if (!message.trim()) {
      return;
    }
    if (socket.readyState !== WebSocket.OPEN) {
      // Keep what was typed; it can be sent once connected.
      setStatus(status.dataset.state, "Not connected yet: your message was not sent.");
      return;
    }
    socket.send(JSON.stringify({ message: message }));
    input.value = "";
  });
})();
