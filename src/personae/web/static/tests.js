// Persona tests: start a run through the API, follow its server-sent progress events
// with a live progress bar, and show its pass rate in the list of runs once it ends.
"use strict";
(function () {
  const P = window.Personae;
  const $ = (id) => document.getElementById(id);
  const BADGES = { completed: "ok", failed: "failed", cancelled: "warn" };

  const badge = (status) => P.el("span", { class: `badge ${BADGES[status] || ""}` }, status);
  const modelOf = (run) => [run.provider, run.model].filter(Boolean).join(":") || "the persona's own";

  function passRate(run) {
    const s = run.summary;
    if (!s) return "–";
    if (s.pass_rate === null) return "all skipped";
    return `${Math.round(s.pass_rate * 100)}% (${s.passed}/${s.passed + s.failed} cases)`;
  }

  function runRow(run) {
    return P.el("tr", { "data-run": run.id },
      P.el("td", {}, P.el("a", { href: `/tests/${run.id}` }, run.suite)),
      P.el("td", {}, run.persona_id), P.el("td", {}, String(run.persona_version)),
      P.el("td", {}, modelOf(run)), P.el("td", { "data-cell": "status" }, badge(run.status)),
      P.el("td", { "data-cell": "rate" }, passRate(run)),
      P.el("td", {}, P.el("time", { datetime: run.created_at },
        run.created_at.slice(0, 16).replace("T", " "))));
  }

  function showRow(run) {
    const row = runRow(run);
    const old = document.querySelector(`#runs-body tr[data-run="${CSS.escape(run.id)}"]`);
    if (old) old.replaceWith(row);
    else $("runs-body").prepend(row);
    $("runs-empty").hidden = true;
  }

  // Follow a run's events until it ends; onProgress(data) on each, resolves with the last.
  function follow(runId, onProgress) {
    return new Promise((resolve) => {
      const source = new EventSource(`/v1/test-runs/${encodeURIComponent(runId)}/events`);
      const end = (data) => { source.close(); resolve(data); };
      source.addEventListener("progress", (e) => onProgress(JSON.parse(e.data)));
      source.addEventListener("done", (e) => end(JSON.parse(e.data)));
      source.addEventListener("error", (e) => {
        if (e.data) end({ status: "failed", error: JSON.parse(e.data).message });
        else if (source.readyState === EventSource.CLOSED) end({ status: "failed", error: "the event stream closed" });
      });
    });
  }

  function setBar(bar, data) {
    bar.hidden = false;
    bar.max = Math.max(data.total, 1);
    bar.value = data.done;
  }

  function runBody(form) {
    const body = { suite_yaml: form.elements.suite_yaml.value };
    if (form.elements.repeat.value) body.repeat = Number(form.elements.repeat.value);
    if (form.elements.model.value.trim()) body.model = form.elements.model.value.trim();
    return body;
  }

  async function startRun(form) {
    const message = $("run-message");
    const bar = $("run-progress");
    const button = $("run-button");
    P.clearErrors(form);
    message.classList.remove("form-error");
    button.disabled = true;
    try {
      const path = `/v1/personas/${form.dataset.persona}/tests/run`;
      const run = await P.api("POST", path, runBody(form));
      showRow(run);
      setBar(bar, run.progress);
      message.textContent = `Queued: 0 of ${run.progress.total} repetitions.`;
      const last = await follow(run.id, (data) => {
        setBar(bar, data);
        message.textContent = `${data.status}: ${data.done} of ${data.total} repetitions.`;
      });
      const ended = await P.api("GET", `/v1/test-runs/${encodeURIComponent(run.id)}`);
      showRow(ended);
      message.replaceChildren(`${ended.status}${last.error ? `: ${last.error}` : ""}. Pass rate: ${passRate(ended)}. `,
        P.el("a", { href: `/tests/${ended.id}` }, "See each case"));
    } catch (error) {
      const left = error instanceof P.ApiError ? P.showErrors(form, error) : [error];
      message.textContent = left.length ? `Not started: ${left.map((i) => i.message).join(" ")}` : "Not started: see the fields above.";
      message.classList.add("form-error");
      bar.hidden = true;
    } finally {
      button.disabled = false;
    }
  }

  function setupIndex() {
    const chooser = $("persona-form");
    $("test-persona").addEventListener("change", () => { if ($("test-persona").value) chooser.submit(); });
    const form = $("run-form");
    if (form) form.addEventListener("submit", (event) => { event.preventDefault(); startRun(form); });
  }

  function setupRun(state) {
    if (state.finished) return;
    const bar = $("follow-progress");
    follow(state.run, (data) => {
      setBar(bar, data);
      $("follow-message").textContent = `${data.status}: ${data.done} of ${data.total} repetitions`;
      $("run-status").replaceChildren(badge(data.status));
    }).then(() => window.location.reload());
  }

  function start() {
    if ($("persona-form")) setupIndex();
    const state = P.data("test-run");
    if (state) setupRun(state);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
