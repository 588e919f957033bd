// Writing studio: build a writing persona from samples (progress from the API's event
// stream), and the draft desk: a live limit meter counted by the API's validate, the
// validation and style report, optimise and draft streamed from the API.
"use strict";
(function () {
  const P = window.Personae;
  const $ = (id) => document.getElementById(id);
  const STAGES = { measuring: 10, storing: 90, stored: 100, unchanged: 100 };

  // -- building ---------------------------------------------------------------------

  function progressValue(event) {
    if (event.stage === "synthesising" && event.attempt && event.of) {
      return 20 + Math.round((60 * (event.attempt - 1)) / event.of);
    }
    return STAGES[event.stage] ?? 50;
  }

  const nameOf = (persona) => persona.definition.display_name || persona.definition.name;

  // A failed synthesis keeps each attempt's reason ("attempt 3: <why>"): the badge's title
  // lists them all, and the last one, which the model was told and still did not fix, shows.
  function synthesisBadge(synthesis) {
    const status = synthesis.status;
    const kind = status === "ok" ? "ok" : status === "failed" ? "failed" : "warn";
    const failed = status === "failed" && synthesis.errors.length > 0;
    const badge = P.el("span", { class: `badge ${kind}`,
                                 title: failed ? synthesis.errors.join("\n") : null },
                       `voice synthesis: ${status}`);
    if (!failed) return [badge];
    const last = synthesis.errors[synthesis.errors.length - 1].replace(/^attempt \d+: /, "");
    return [badge, P.el("span", { class: "synthesis-why" }, `Why: ${last}`)];
  }

  function personaCard(persona) {
    const block = persona.definition.writing;
    return P.el("li", { class: "card writing-card" },
      P.el("h3", {}, P.el("a", { href: `/writing/${persona.id}` }, nameOf(persona))),
      P.el("p", { class: "muted" },
        `${persona.id} · version ${persona.version} · ${block.fingerprint.language}`),
      P.el("p", { class: "row" },
        P.el("span", { class: "badge" },
          `${block.samples.count} samples, ${block.samples.words} words`),
        P.el("span", { class: "badge" }, `confidence: ${block.fingerprint.confidence.level}`),
        ...synthesisBadge(block.synthesis)));
  }

  async function collectSamples(form) {
    const samples = [];
    form.querySelectorAll("textarea.sample").forEach((box) => {
      if (box.value.trim()) samples.push({ text: box.value });
    });
    const maxBytes = 4 * Number(form.dataset.maxChars);
    for (const file of filesOf(form)) {
      if (file.size > maxBytes) throw new Error(`${file.name} is larger than ${maxBytes} bytes`);
      samples.push({ text: await file.text(), title: file.name.slice(0, 200) });
    }
    return samples;
  }

  const chosenFiles = new WeakMap();
  const filesOf = (form) => chosenFiles.get(form) || [];

  function showFiles(form, files) {
    chosenFiles.set(form, files);
    $("file-list").replaceChildren(...files.map((f) => P.el("li", {}, f.name)));
  }

  function setupFiles(form) {
    const input = $("sample-files");
    input.addEventListener("change", () => showFiles(form, [...input.files]));
    const zone = $("sample-drop");
    zone.addEventListener("dragover", (e) => { e.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (e) => {
      e.preventDefault();
      zone.classList.remove("over");
      showFiles(form, [...filesOf(form), ...e.dataTransfer.files]);
    });
  }

  function addSampleBox(form) {
    const boxes = $("sample-boxes");
    const number = boxes.querySelectorAll("textarea").length + 1;
    if (number > Number(form.dataset.maxSamples)) return;
    const id = `sample-${number}`;
    const box = P.el("textarea", { id, class: "sample", rows: "4",
                                   maxlength: form.dataset.maxChars });
    boxes.append(P.el("label", { for: id }, `Sample ${number}`), box);
    box.focus();
  }

  async function build(form) {
    const bar = $("build-progress");
    const message = $("build-message");
    const button = $("build-button");
    P.clearErrors(form);
    message.classList.remove("form-error");
    const say = (text, failed) => {
      message.textContent = text;
      message.classList.toggle("form-error", Boolean(failed));
    };
    let persona = null;
    let failure = null;
    button.disabled = true;
    try {
      const body = { name: form.elements.name.value.trim(), samples: await collectSamples(form) };
      if (form.elements.audience.value.trim()) body.audience = form.elements.audience.value.trim();
      bar.hidden = false;
      bar.value = 0;
      say("Starting…");
      await P.stream("/v1/writing/personas", body, (data) => {
        if (data.stage) { bar.value = progressValue(data); say(data.message); }
        else if (data.definition) persona = data;
        else if (data.code) failure = data;
      });
    } catch (error) {
      failure = error;
      if (error instanceof P.ApiError) {
        const left = P.showErrors(form, error);
        failure = left.length ? { message: left.map((i) => i.message).join(" ") } : null;
      }
    } finally {
      button.disabled = false;
    }
    if (persona) {
      bar.value = 100;
      $("writing-list").prepend(personaCard(persona));
      $("writing-empty").hidden = true;
      say("");
      message.append("Built ", P.el("a", { href: `/writing/${persona.id}` }, nameOf(persona)),
                     ` (version ${persona.version}).`);
      form.reset();
      showFiles(form, []);
    } else {
      bar.hidden = true;
      say(failure ? `Not built: ${failure.message}` : "Not built: see the fields above.", true);
    }
  }

  function setupBuild(form) {
    setupFiles(form);
    $("add-sample").addEventListener("click", () => addSampleBox(form));
    form.addEventListener("submit", (event) => { event.preventDefault(); build(form); });
  }

  // -- the draft desk ---------------------------------------------------------------

  function deviationRow(d) {
    return P.el("tr", {},
      P.el("th", { scope: "row" }, d.name.replaceAll("_", " ")),
      P.el("td", {}, `${round(d.draft)} ${d.unit}`),
      P.el("td", {}, `${round(d.samples)} ${d.unit}`),
      P.el("td", { class: d.notable ? "notable" : "" }, d.explanation));
  }

  const round = (x) => (x === null || x === undefined ? "–" : Math.round(x * 100) / 100);

  function styleTable(style) {
    const d = style.distance;
    const rows = [
      P.el("tr", {}, P.el("th", { scope: "row" }, "score"),
        P.el("td", { colspan: "2" }, style.score === null ? "not comparable" : `${round(style.score)}/100`),
        P.el("td", {}, style.explanation)),
      P.el("tr", {}, P.el("th", { scope: "row" }, "style distance"),
        P.el("td", {}, `${round(d.value)} (${d.verdict})`),
        P.el("td", {}, `typical ${round(d.typical)}`), P.el("td", {}, d.explanation)),
      deviationRow(style.sentence_length), ...style.punctuation.map(deviationRow),
    ];
    if (style.go_to_used.length) rows.push(wordsRow("their go-to words used", style.go_to_used));
    if (style.avoided_used.length) rows.push(wordsRow("words they never use", style.avoided_used));
    return P.el("div", { class: "table-wrap" }, P.el("table", { class: "style-table" },
      P.el("caption", {}, "Style report"),
      P.el("thead", {}, P.el("tr", {}, P.el("th", { scope: "col" }, "measure"),
        P.el("th", { scope: "col" }, "draft"), P.el("th", { scope: "col" }, "samples"),
        P.el("th", { scope: "col" }, "what it means"))),
      P.el("tbody", {}, rows)));
  }

  const wordsRow = (label, words) => P.el("tr", {}, P.el("th", { scope: "row" }, label),
    P.el("td", { colspan: "3" }, words.join(", ")));

  function meterList(meters) {
    return P.el("ul", { class: "meters stack" }, meters.map((m) => P.el("li", { class: "meter-row" },
      P.el("span", { class: "meter-name" }, `${m.name.replaceAll("_", " ")}${m.hard ? "" : " (guide)"}`),
      P.el("meter", { min: "0", max: String(m.limit), value: String(Math.min(m.used, m.limit)),
                      high: String(m.limit * 0.9), optimum: "0",
                      "aria-label": `${m.name} ${m.shown}` }),
      P.el("span", { class: m.used > m.limit ? "count over" : "count" }, m.shown))));
  }

  function renderReport(report) {
    const parts = [P.el("p", { class: `badge ${report.meets_limits ? "ok" : "failed"}` },
      report.meets_limits ? "within the platform's limits" : "breaks the platform's rules")];
    if (report.violations.length) {
      parts.push(P.el("ul", { class: "violations" },
        report.violations.map((v) => P.el("li", { class: "form-error" }, v.message))));
    }
    parts.push(meterList(report.meters));
    report.warnings.forEach((w) => parts.push(P.el("p", { class: "note" }, w)));
    if (report.style) parts.push(styleTable(report.style));
    $("report").replaceChildren(...parts);
  }

  function makeDesk(desk) {
    const platform = () => desk.platforms.find((p) => p.id === $("draft-platform").value);
    const text = $("draft-text");
    const status = $("draft-status");
    let timer = null;
    let pending = null;

    function setMeter(used, limit) {
      const meter = $("draft-meter");
      meter.max = limit;
      meter.high = limit * 0.9;
      meter.value = Math.min(used, limit);
      $("draft-count").textContent = `${used}/${limit}`;
      $("draft-count").classList.toggle("over", used > limit);
    }

    async function validate() {
      const spec = platform();
      if (!text.value.trim()) { setMeter(0, spec.limit); return null; }
      pending?.abort();
      pending = new AbortController();
      const body = { persona: desk.persona, text: text.value };
      if (spec.title && $("draft-title-text").value) body.title = $("draft-title-text").value;
      try {
        const report = await P.api("POST", `/v1/writing/${spec.id}/validate`, body,
                                   { signal: pending.signal });
        const main = report.meters.find((m) => m.name === spec.field);
        if (main) setMeter(main.used, main.limit);
        renderReport(report);
        status.textContent = "";
        return report;
      } catch (error) {
        if (error.name !== "AbortError") status.textContent = error.message;
        return null;
      }
    }

    const soon = () => { clearTimeout(timer); timer = setTimeout(validate, 350); };
    return { platform, validate, soon, setMeter, status };
  }

  async function rewrite(desk, view, path, body) {
    const box = $("attempt");
    const out = $("attempt-text");
    box.hidden = false;
    out.textContent = "";
    $("attempt-reason").textContent = "";
    let done = null;
    let failure = null;
    view.status.textContent = "Writing…";
    try {
      await P.stream(path, { persona: desk.persona, stream: true, ...body }, (data) => {
        if ("best" in data) done = data;
        else if (data.code) failure = data;
        else if ("report" in data) $("attempt-reason").textContent = `attempt ${data.number} scored`;
        else if ("text" in data) out.textContent += data.text;
        else if ("number" in data) { out.textContent = ""; $("attempt-title").textContent = `Attempt ${data.number}`; }
      });
    } catch (error) { failure = error; }
    if (done) {
      $("attempt-title").textContent = `Best attempt (${done.best})`;
      out.textContent = done.text;
      $("attempt-reason").textContent = done.reason;
      renderReport(done.report);
      view.status.textContent = done.meets_limits ? "Done." : "Done, but it still breaks a rule.";
    } else {
      view.status.textContent = `Not written: ${failure ? failure.message : "no result"}`;
    }
  }

  function setupDesk(desk) {
    const view = makeDesk(desk);
    const text = $("draft-text");
    const pick = () => {
      const spec = view.platform();
      $("title-row").hidden = !spec.title;
      view.setMeter(0, spec.limit);
      view.validate();
    };
    $("draft-platform").addEventListener("change", pick);
    text.addEventListener("input", view.soon);
    $("draft-title-text").addEventListener("input", view.soon);
    $("validate-button").addEventListener("click", view.validate);
    $("optimize-button").addEventListener("click", () => {
      if (!text.value.trim()) { view.status.textContent = "Write or paste a draft first."; return; }
      rewrite(desk, view, `/v1/writing/${view.platform().id}/optimize`, { text: text.value });
    });
    $("write-button").addEventListener("click", () => {
      const topic = $("draft-topic").value.trim();
      if (!topic) { view.status.textContent = "Give a topic first."; return; }
      rewrite(desk, view, `/v1/writing/${view.platform().id}/draft`, { topic });
    });
    $("use-attempt").addEventListener("click", () => {
      text.value = $("attempt-text").textContent;
      view.validate();
      text.focus();
    });
    pick();
  }

  function start() {
    const form = $("build-form");
    if (form) setupBuild(form);
    const desk = P.data("writing-desk");
    if (desk) setupDesk(desk);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
