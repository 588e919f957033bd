// Chat page: start a session, send over the session's WebSocket with the reply
// streaming in, switch persona, stop a reply, rate replies. Where the socket cannot be
// opened (a proxy that refuses upgrades) the page uses the same API over HTTP for the
// rest of its life: turns stream as server-sent events, Stop aborts the request.
// Everything goes through the /v1 API; messages are built as DOM (text, never HTML),
// like chat/_message.html.
"use strict";
(function () {
  const P = window.Personae;
  const OPEN_TIMEOUT_MS = 8000; // a socket neither open nor refused by then counts as refused
  const state = { socket: null, opening: null, pending: null, streaming: false,
    http: false, abort: null };
  let page = null;

  // Show a reply's text as Markdown. The server sends history as text marked
  // data-markdown="source" (readable without scripts); rendered, it says "rendered".
  function renderReply(node, text) {
    node.replaceChildren(...P.markdown(text));
    node.classList.add("markdown");
    node.setAttribute("data-markdown", "rendered");
  }

  function speakerName(m) {
    return m.role === "user" ? "You" : (page.names[m.persona_id] || m.persona_id);
  }

  function statusNote(m) {
    if (m.status === "interrupted") {
      return [P.el("span", { class: "badge interrupted" }, "Interrupted"), " ",
        P.el("span", { class: "status-text" }, "The reply was cut short; the text saved up to then is kept.")];
    }
    if (m.status === "failed") {
      const why = (m.meta && m.meta.error && m.meta.error.message) || "The reply could not be written.";
      return [P.el("span", { class: "badge failed" }, "Failed"), " ",
        P.el("span", { class: "status-text" }, why)];
    }
    return [];
  }

  function usedItems(m) {
    const out = [];
    for (const [key, label] of [["knowledge", "Knowledge used"], ["lore", "Lore used"]]) {
      const items = (m.meta && m.meta[key]) || [];
      if (!items.length) continue;
      out.push(P.el("div", { class: `used ${key}` },
        P.el("span", { class: "muted" }, `${label}:`), " ",
        P.el("ul", { class: "used-list" },
          items.map((item) => P.el("li", {}, item.label || `item ${item.index}`)))));
    }
    return out;
  }

  // Only a complete reply to the user is the persona's answer: a greeting answers
  // nobody, and a cut or failed reply is not what the persona meant to say.
  function rateable(m) {
    return m.role === "assistant" && m.status === "complete" && !(m.meta && m.meta.greeting);
  }

  function ratingButtons(chosen) {
    const thumb = (rating, label, mark, word) => P.el("button", {
      type: "button", class: "thumb", "data-rating": rating, title: label,
      "aria-label": label, "aria-pressed": chosen === rating ? "true" : "false" },
      P.el("span", { "aria-hidden": "true" }, mark), ` ${word}`);
    return P.el("div", { class: "rating", role: "group", "aria-label": "Rate this reply" },
      thumb("up", "Good reply", "▲", "Good"), " ", thumb("down", "Bad reply", "▼", "Bad"));
  }

  function replyContent(text) {
    const node = P.el("div", { class: "content" });
    renderReply(node, text);
    return node;
  }

  function renderMessage(m) {
    if (m.role === "event") { // a note the session keeps, such as a switch
      return P.el("li", { class: "message event", "data-message-id": m.id, "data-status": m.status },
        P.el("div", { class: "content" }, m.content));
    }
    const assistant = m.role === "assistant";
    return P.el("li", {
      class: `message ${m.role} status-${m.status}`, "data-message-id": m.id, "data-status": m.status },
      P.el("p", { class: "meta" }, P.el("span", { class: "speaker" }, speakerName(m)), " ",
        m.meta && m.meta.greeting ? [P.el("span", { class: "muted" }, "(greeting)"), " "] : null,
        statusNote(m)),
      assistant ? replyContent(m.content) : P.el("div", { class: "content" }, m.content),
      assistant && m.meta && m.meta.finish_reason === "length"
        ? P.el("p", { class: "cut-note" }, "Cut off at the reply length limit") : null,
      assistant ? usedItems(m) : null,
      rateable(m) ? ratingButtons(null) : null);
  }

  function list() { return document.getElementById("messages"); }

  function announce(text) {
    const status = document.getElementById("chat-status");
    if (status) status.textContent = text;
  }

  function setStreaming(on) {
    state.streaming = on;
    document.getElementById("send").disabled = on;
    document.getElementById("stop").disabled = !on;
  }

  // The reply being written: a placeholder message whose text grows with each delta.
  function pendingReply() {
    if (!state.pending) {
      const content = P.el("div", { class: "content" });
      const item = P.el("li", { class: "message assistant status-streaming", "aria-busy": "true" },
        P.el("p", { class: "meta" },
          P.el("span", { class: "speaker" }, page.names[page.persona_id] || page.persona_id)),
        content);
      list().append(item);
      state.pending = { item, content };
    }
    return state.pending;
  }

  function finishReply(message, error) {
    const pending = state.pending;
    state.pending = null;
    setStreaming(false);
    let shown = null;
    const partial = pending ? pending.content.textContent : "";
    if (message) shown = renderMessage(message);
    else if (error && partial) {  // the connection dropped mid-reply: keep what was shown
      shown = renderMessage({ id: "", role: "assistant", status: "interrupted", content: partial,
        persona_id: page.persona_id, meta: {} });
      shown.append(P.el("p", { class: "form-error" },
        `The connection was lost (${error.message}); reload to see what the server kept.`));
    } else if (error) {
      shown = renderMessage({ id: "", role: "assistant", status: "failed", content: "",
        persona_id: page.persona_id, meta: { error } });
    }
    if (pending && shown) pending.item.replaceWith(shown);
    else if (pending) pending.item.remove();
    else if (shown) list().append(shown);
    if (shown) shown.scrollIntoView({ block: "nearest" });
    announce(message ? `Reply ${message.status}`
      : (error ? `Reply failed: ${error.message}` : "Reply stopped"));
  }

  function onSwitched(event) {
    page.persona_id = event.persona_id;
    page.names[event.persona_id] = event.name;
    document.getElementById("current-persona").textContent = event.name;
    P.toast(`Switched to ${event.name}`);
  }

  function onEvent(event) {
    switch (event.type) {
      case "message":
        list().append(renderMessage(event.message));
        break;
      case "delta":
        pendingReply().content.append(event.text);
        break;
      case "done":
        finishReply(event.message, null);
        break;
      case "interrupted":
        finishReply(event.message, null);
        break;
      case "error":
        if (state.streaming || "message" in event) finishReply(event.message, event.error);
        else P.toast(event.error.message, "error");
        break;
      case "persona_switched":
        onSwitched(event);
        break;
      default:
        break;
    }
  }

  // The session's socket, opened on first use and again after it closes.
  function socket() {
    if (state.socket && state.socket.readyState === WebSocket.OPEN) return Promise.resolve(state.socket);
    if (state.opening) return state.opening;
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/v1/sessions/${encodeURIComponent(page.session_id)}/ws`);
    state.opening = new Promise((resolve, reject) => {
      const timer = setTimeout(() => ws.close(), OPEN_TIMEOUT_MS);
      ws.addEventListener("message", (message) => {
        const event = JSON.parse(message.data);
        if (event.type === "ready") {
          clearTimeout(timer);
          state.socket = ws; state.opening = null; resolve(ws);
        } else onEvent(event);
      });
      ws.addEventListener("close", (closed) => {
        clearTimeout(timer);
        state.socket = null;
        if (state.opening) { // never ready: nothing was sent on it
          state.opening = null;
          reject(new Error(closed.reason || "the chat connection closed"));
        } else if (state.streaming) finishReply(null, { message: closed.reason || "the connection closed" });
      });
    });
    return state.opening;
  }

  // Over the socket while it can be opened; once it could not, over HTTP for good.
  async function send(payload) {
    if (!state.http) {
      try {
        (await socket()).send(JSON.stringify(payload));
        return true;
      } catch (error) {
        state.http = true;
      }
    }
    return sendOverHttp(payload);
  }

  const sessionPath = () => `/v1/sessions/${encodeURIComponent(page.session_id)}`;

  async function sendOverHttp(payload) {
    if (payload.type === "message") { streamTurn(payload.content); return true; }
    if (payload.type === "interrupt") { if (state.abort) state.abort.abort(); return true; }
    try {
      const switched = await P.api("POST", `${sessionPath()}/switch`, { persona_id: payload.persona_id });
      switched.events.forEach((event) => onEvent(event));
      return true;
    } catch (error) {
      P.toast(error.message, "error");
      return false;
    }
  }

  // One turn as server-sent events: the same events the socket sends, in order.
  async function streamTurn(content) {
    const abort = new AbortController();
    state.abort = abort;
    let asked = null; // the user's saved message: the reply comes after it
    const seen = (event) => {
      if (event.type === "message" && event.message.role === "user") asked = event.message.id;
      onEvent(event);
    };
    try {
      await P.stream(`${sessionPath()}/messages`, { content, stream: true }, seen, { signal: abort.signal });
      if (state.streaming) finishReply(null, { message: "the reply ended early" });
    } catch (error) {
      if (!state.streaming) return;
      if (abort.signal.aborted) finishReply(await stoppedReply(asked), null);
      else finishReply(null, { message: error.message || String(error) });
    } finally {
      if (state.abort === abort) state.abort = null;
    }
  }

  // Stopping closes the request; the server then saves the reply as interrupted. Show
  // what it saved (the next turn waits for that), or what had arrived if it is slow.
  async function stoppedReply(asked) {
    for (let tries = 0; asked !== null && tries < 15; tries += 1) {
      try {
        const saved = (await P.api("GET", `${sessionPath()}/messages`)).data
          .find((m) => m.role === "assistant" && m.id > asked);
        if (saved && saved.status !== "streaming") return saved;
      } catch (error) {
        break;
      }
      await new Promise((resolve) => setTimeout(resolve, 200));
    }
    const partial = state.pending ? state.pending.content.textContent : "";
    return { id: "", role: "assistant", status: "interrupted", content: partial,
      persona_id: page.persona_id, meta: {} };
  }

  async function onCompose(form, event) {
    event.preventDefault();
    const input = form.querySelector("textarea");
    const content = input.value.trim();
    if (!content || state.streaming) return;
    setStreaming(true);
    announce("Sending");
    if (await send({ type: "message", content })) input.value = "";
    else setStreaming(false);
  }

  async function onRate(button) {
    const item = button.closest(".message");
    const id = item && item.dataset.messageId;
    if (!id) return;
    const path = `/v1/sessions/${encodeURIComponent(page.session_id)}/messages/${id}/rating`;
    const taking = button.getAttribute("aria-pressed") === "true";
    try {
      if (taking) await P.api("DELETE", path);
      else await P.api("POST", path, { rating: button.dataset.rating });
    } catch (error) {
      P.toast(error.message, "error");
      return;
    }
    item.querySelectorAll(".thumb").forEach((thumb) => {
      thumb.setAttribute("aria-pressed", !taking && thumb === button ? "true" : "false");
    });
    announce(taking ? "Rating removed" : "Rated");
  }

  async function startChat(form, event) {
    event.preventDefault();
    const personaId = form.querySelector("select").value;
    try {
      const opened = await P.api("POST", "/v1/sessions", { persona_id: personaId });
      location.assign(`/chat/${encodeURIComponent(opened.session.id)}`);
    } catch (error) {
      P.toast(error.message, "error");
    }
  }

  function setup() {
    const newChat = document.getElementById("new-chat");
    if (newChat && newChat.querySelector("select")) newChat.addEventListener("submit", (e) => startChat(newChat, e));
    page = P.data("chat-data");
    if (!page) return;
    const composer = document.getElementById("composer");
    if (composer) {
      composer.addEventListener("submit", (e) => onCompose(composer, e));
      composer.querySelector("textarea").addEventListener("keydown", (e) => {
        if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); composer.requestSubmit(); }
      });
      document.getElementById("stop").addEventListener("click", () => send({ type: "interrupt" }));
    }
    const switcher = document.getElementById("switch-form");
    if (switcher) {
      switcher.addEventListener("submit", (e) => {
        e.preventDefault();
        send({ type: "switch", persona_id: switcher.querySelector("select").value });
      });
    }
    list().querySelectorAll('[data-markdown="source"]').forEach((node) => renderReply(node, node.textContent));
    list().addEventListener("click", (e) => {
      const thumb = e.target.closest(".thumb");
      if (thumb) onRate(thumb);
    });
    const last = list().lastElementChild;
    if (last) last.scrollIntoView({ block: "nearest" });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
