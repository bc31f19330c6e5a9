// The inbox socket: live messages, conversation changes, typing, receipts and presence.
// Reconnects by itself and tells the server which threads it holds and how far, so nothing
// missed while it was away is lost (see docs/protocol.md).

export class InboxSocket extends EventTarget {
  constructor(token, cursors) {
    super();
    this.token = token;
    this.cursors = cursors; // () => {conversation_id: {seq, epoch}}
    this.ws = null;
    this.closed = false;
    this.retry = 0;
    this.connected = false;
  }

  open() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/ws/inbox`);
    this.ws = ws;
    ws.addEventListener("open", () => {
      ws.send(JSON.stringify({ type: "hello", token: this.token, cursors: this.cursors() }));
    });
    ws.addEventListener("message", (event) => {
      let frame;
      try { frame = JSON.parse(event.data); } catch { return; }
      if (frame.type === "welcome") {
        this.retry = 0;
        this.connected = true;
        this.dispatchEvent(new CustomEvent("status", { detail: "online" }));
      }
      this.dispatchEvent(new CustomEvent(frame.type, { detail: frame }));
    });
    ws.addEventListener("close", (event) => {
      this.connected = false;
      this.dispatchEvent(new CustomEvent("status", { detail: "offline" }));
      if (this.closed) return;
      if (event.code === 4401) {
        this.dispatchEvent(new CustomEvent("unauthorized"));
        return;
      }
      const delay = Math.min(10000, 300 * 2 ** this.retry++) * (0.5 + Math.random() / 2);
      setTimeout(() => { if (!this.closed) this.open(); }, delay);
    });
  }

  send(frame) {
    if (this.ws && this.ws.readyState === WebSocket.OPEN && this.connected) {
      this.ws.send(JSON.stringify(frame));
      return true;
    }
    return false;
  }

  close() {
    this.closed = true;
    if (this.ws) this.ws.close(1000);
  }
}
