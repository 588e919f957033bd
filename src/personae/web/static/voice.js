// Voice call page: the microphone as PCM16 frames to the session's voice socket
// (/v1/sessions/{id}/voice), the reply's PCM16 audio played as it arrives, barge-in
// (speech over the reply stops playback and tells the socket), a transcript of both
// sides and the latency of each stage the socket reports per turn.
"use strict";
(function () {
  const P = window.Personae;
  const STAGES = [
    ["end_of_speech_to_transcript_ms", "Speech recognition"],
    ["transcript_to_first_token_ms", "First token"],
    ["first_token_to_first_audio_ms", "First audio"],
    ["end_of_speech_to_first_audio_ms", "End of speech to first audio"],
  ];
  const call = { ws: null, ctx: null, stream: null, nodes: [], sources: new Set(), playhead: 0,
    rate: 22050, ready: false, reply: null, user: null, lastReply: null };
  let page = null;

  const $ = (id) => document.getElementById(id);
  const status = (text) => { $("call-status").textContent = text; };
  const warn = (text) => $("call-warnings").append(P.el("li", { class: "note" }, text));
  const nameOf = (id) => page.names[id] || id;

  function line(role, speaker, text) {
    const content = P.el("div", { class: "content" }, text);
    const meta = P.el("p", { class: "meta" }, P.el("span", { class: "speaker" }, speaker));
    const item = P.el("li", { class: `message ${role}` }, meta, content);
    item.meta = meta;
    item.content = content;
    $("transcript").append(item);
    item.scrollIntoView({ block: "nearest" });
    return item;
  }

  function mark(item, kind, text) {
    if (!item || item.querySelector(".badge")) return;
    item.classList.add(`status-${kind}`);
    item.meta.append(" ", P.el("span", { class: `badge ${kind}` },
      kind === "failed" ? "Failed" : "Interrupted"), " ", P.el("span", { class: "status-text" }, text));
  }

  // -- playback -------------------------------------------------------------------
  function play(data) {
    if (!call.ctx || !data.byteLength) return;
    const pcm = new Int16Array(data);
    const buffer = call.ctx.createBuffer(1, pcm.length, call.rate);
    const samples = buffer.getChannelData(0);
    for (let i = 0; i < pcm.length; i += 1) samples[i] = pcm[i] / 0x8000;
    const source = call.ctx.createBufferSource();
    source.buffer = buffer;
    source.connect(call.ctx.destination);
    const at = Math.max(call.ctx.currentTime + 0.03, call.playhead);
    source.start(at);
    call.playhead = at + buffer.duration;
    call.sources.add(source);
    source.addEventListener("ended", () => call.sources.delete(source));
  }

  const playing = () => call.ctx !== null && call.playhead > call.ctx.currentTime;

  function stopPlayback() {
    for (const source of call.sources) {
      try { source.stop(); } catch (error) { /* not started yet */ }
    }
    call.sources.clear();
    call.playhead = 0;
  }

  // -- what the socket says ---------------------------------------------------------
  function finishReply(event) {
    const saved = event.message;
    let item = call.reply;
    call.reply = null;
    if (!item && saved) item = line("assistant", nameOf(saved.persona_id), saved.content);
    if (!item && event.type === "error") item = line("assistant", nameOf(page.persona_id), "");
    if (event.type === "interrupted") mark(item || call.lastReply, "interrupted", "Stopped when you spoke.");
    if (event.type === "error") mark(item, "failed", event.error.message);
    if (item) call.lastReply = item;
    status("Listening: speak when you are ready.");
  }

  function showTimings(event) {
    const target = call.lastReply;
    if (!target) return;
    const ms = (v) => (typeof v === "number" ? `${Math.round(v)} ms` : "not measured");
    const list = P.el("dl", { class: "latency", "aria-label": "Latency of this turn" },
      STAGES.flatMap(([key, label]) => [P.el("dt", {}, label), P.el("dd", {}, ms(event[key]))]));
    target.querySelector(".latency")?.remove();
    target.append(list);
  }

  function onUserMessage(message) {
    if (call.user) { call.user.dataset.messageId = message.id; call.user = null; }
    else line("user", "You", message.content);
  }

  function onSpeech(event) {
    if (event.type === "speech_started") {
      status("Hearing you…");
      if (playing()) { stopPlayback(); send({ type: "interrupt" }); }
    } else status("Recognising…");
  }

  function onReady(event) {
    call.ready = true;
    call.rate = (event.voice && event.voice.sample_rate) || call.rate;
    (event.warnings || []).forEach(warn);
    const voice = event.voice || {};
    $("call-voice").textContent = `Heard by ${voice.recogniser || "no recogniser"}; ` +
      `spoken by ${voice.synthesiser ? `${voice.synthesiser} (${voice.voice_id || "default voice"})` : "no synthesiser"}.`;
    status("Listening: speak when you are ready.");
    if (call.switchTo) send({ type: "switch", persona_id: call.switchTo });
    call.switchTo = null;
  }

  function onSwitched(event) {
    page.persona_id = event.persona_id;
    page.names[event.persona_id] = event.name;
  }

  function eventLine(text) {
    $("transcript").append(P.el("li", { class: "message event" }, P.el("div", { class: "content" }, text)));
  }

  const HANDLERS = {
    ready: onReady,
    speech_started: onSpeech,
    speech_stopped: onSpeech,
    transcript: (e) => {
      if (!e.text.trim()) { status("Nothing was heard; try again."); return; }
      call.user = line("user", "You", e.text);
      status("Thinking…");
    },
    message: (e) => {
      const m = e.message;
      if (m.role === "user") onUserMessage(m);
      else if (m.role === "event") eventLine(m.content);
      else line("assistant", nameOf(m.persona_id), m.content);
    },
    delta: (e) => {
      if (!call.reply) call.reply = line("assistant", nameOf(page.persona_id), "");
      call.reply.content.append(e.text);
    },
    done: finishReply,
    interrupted: finishReply,
    error: (e) => (call.reply || "message" in e ? finishReply(e) : warn(e.error.message)),
    audio_start: (e) => { call.rate = e.sample_rate || call.rate; status("Speaking…"); },
    timings: showTimings,
    persona_switched: onSwitched,
    warning: (e) => warn(e.message),
  };

  function onSocketMessage(message) {
    if (typeof message.data !== "string") { play(message.data); return; }
    const event = JSON.parse(message.data);
    const handler = HANDLERS[event.type];
    if (handler) handler(event);
  }

  function send(payload) {
    if (call.ws && call.ws.readyState === WebSocket.OPEN) call.ws.send(JSON.stringify(payload));
  }

  // -- the call -------------------------------------------------------------------
  async function openMicrophone() {
    call.stream = await navigator.mediaDevices.getUserMedia({ audio: {
      channelCount: 1, echoCancellation: true, noiseSuppression: false, autoGainControl: false } });
    const source = call.ctx.createMediaStreamSource(call.stream);
    const mute = call.ctx.createGain();
    mute.gain.value = 0;
    mute.connect(call.ctx.destination);
    const forward = (buffer) => {
      if (call.ready && call.ws && call.ws.readyState === WebSocket.OPEN) call.ws.send(buffer);
    };
    let node;
    if (call.ctx.audioWorklet) {
      await call.ctx.audioWorklet.addModule(`/static/voice-capture.js?v=${page.version || ""}`);
      node = new AudioWorkletNode(call.ctx, "pcm-capture");
      node.port.onmessage = (e) => forward(e.data);
    } else { // no worklet (an insecure origin): the older script processor
      node = call.ctx.createScriptProcessor(2048, 1, 1);
      node.onaudioprocess = (e) => forward(toPcm16(e.inputBuffer.getChannelData(0)));
    }
    source.connect(node);
    node.connect(mute);
    call.nodes = [source, node, mute];
  }

  function toPcm16(samples) {
    const out = new Int16Array(samples.length);
    for (let i = 0; i < samples.length; i += 1) {
      const s = Math.max(-1, Math.min(1, samples[i]));
      out[i] = s < 0 ? s * 0x8000 : s * 0x7fff;
    }
    return out.buffer;
  }

  function openSocket() {
    const scheme = location.protocol === "https:" ? "wss" : "ws";
    const ws = new WebSocket(`${scheme}://${location.host}/v1/sessions/${encodeURIComponent(page.session_id)}/voice`);
    ws.binaryType = "arraybuffer";
    ws.addEventListener("open", () => ws.send(JSON.stringify(
      { type: "start", format: "pcm16", sample_rate: call.ctx.sampleRate })));
    ws.addEventListener("message", onSocketMessage);
    ws.addEventListener("close", (closed) => {
      if (call.ws === ws) hangUp(closed.reason ? `Call ended: ${closed.reason}` : "Call ended.");
    });
    call.ws = ws;
  }

  // The call's new session at the top of the session list, as the current one (the
  // list is chat/_sessions.html's; keep the two alike).
  function listSession(session) {
    const box = document.querySelector(".session-list");
    if (!box) return;
    box.querySelectorAll("[aria-current]").forEach((link) => link.removeAttribute("aria-current"));
    let items = box.querySelector("ul");
    if (!items) {
      box.querySelector("p.muted")?.remove();
      items = P.el("ul");
      box.append(items);
    }
    const turns = session.turns || 0;
    const when = String(session.last_active_at || "");
    items.prepend(P.el("li", {},
      P.el("a", { href: `/voice/${encodeURIComponent(session.id)}`, "aria-current": "page" },
        nameOf(session.persona_id)), " ",
      P.el("span", { class: "muted session-facts" }, `${turns} turn${turns === 1 ? "" : "s"} · `,
        P.el("time", { datetime: when }, when.slice(0, 16).replace("T", " ")))));
    const count = box.querySelector("#sessions-title .muted");
    const shown = count ? parseInt(count.textContent.replace(/[()]/g, ""), 10) : NaN;
    if (count && !Number.isNaN(shown)) count.textContent = `(${shown + 1})`;
  }

  async function openSession(personaId) {
    if (page.session_id) {
      if (personaId !== page.persona_id) call.switchTo = personaId;
      return;
    }
    const opened = await P.api("POST", "/v1/sessions", { persona_id: personaId });
    page.session_id = opened.session.id;
    page.persona_id = opened.session.persona_id;
    history.replaceState(null, "", `/voice/${encodeURIComponent(page.session_id)}`);
    listSession(opened.session);
    for (const event of opened.events) {
      if (event.type === "message") line("assistant", nameOf(event.message.persona_id), event.message.content);
    }
  }

  async function startCall(event) {
    event.preventDefault();
    if (call.ws) return;
    $("call-start").disabled = true;
    $("hang-up").disabled = false;
    status("Connecting…");
    call.ctx = new AudioContext(); // made now, while the click still allows sound
    try {
      await openSession($("call-persona").value);
      await openMicrophone();
      openSocket();
    } catch (error) {
      P.toast(error.message || String(error), "error");
      hangUp(`Could not start the call: ${error.message || error}`);
    }
  }

  function hangUp(message) {
    const ws = call.ws;
    call.ws = null;
    call.ready = false;
    if (ws && ws.readyState <= WebSocket.OPEN) ws.close(1000, "hung up");
    stopPlayback();
    call.nodes.forEach((node) => node.disconnect());
    call.nodes = [];
    if (call.stream) call.stream.getTracks().forEach((track) => track.stop());
    call.stream = null;
    if (call.ctx) call.ctx.close();
    call.ctx = null;
    call.reply = null;
    $("call-start").disabled = false;
    $("hang-up").disabled = true;
    status(typeof message === "string" ? message : "Call ended.");
  }

  function setup() {
    page = P.data("voice-data");
    const form = $("call-form");
    if (!page || !form) return;
    form.addEventListener("submit", startCall);
    $("hang-up").addEventListener("click", () => hangUp("Call ended."));
    window.addEventListener("pagehide", () => { if (call.ws) hangUp(); });
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
