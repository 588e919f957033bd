// Panels: start an evaluation through /v1/evaluations, follow its progress events, rerun
// failed cells. The pages render the results themselves; this script only changes data
// through the API and reloads the page when the evaluation's state changes.
"use strict";
(function () {
  const P = window.Personae;

  function fieldError(form, path, message) {
    P.showErrors(form, { message, details: { errors: [{ path, message }] } });
  }

  // Where an API error belongs: next to the field it names, else above the form.
  function showApiError(form, error) {
    const field = error.details && typeof error.details.field === "string" ? error.details.field : null;
    const shaped = field && !(error.details.errors || []).length
      ? { message: error.message, details: { errors: [{ path: field, message: error.message }] } }
      : error;
    const left = P.showErrors(form, shaped);
    const banner = document.getElementById("evaluation-form-error");
    banner.hidden = !left.length;
    banner.textContent = left.map((issue) => issue.path ? `${issue.path}: ${issue.message}` : issue.message).join(" ");
  }

  // The form as the API's multipart upload; only the chosen source's fields are enabled.
  function formBody(form) {
    const body = new FormData(form);
    body.delete("source");
    const file = form.elements.file.files[0];
    if (file) body.delete("content");
    else body.delete("file");
    return body;
  }

  function chooseSource(form) {
    const panel = form.querySelector('input[name="source"][value="panel"]').checked;
    document.getElementById("choose-personas").disabled = panel;
    const select = document.getElementById("evaluation-panel");
    if (select) select.disabled = !panel;
  }

  async function start(form, event) {
    event.preventDefault();
    P.clearErrors(form);
    document.getElementById("evaluation-form-error").hidden = true;
    const limit = Number(form.dataset.uploadLimit);
    const file = form.elements.file.files[0];
    if (file && file.size > limit) {
      fieldError(form, "file", `the file is larger than ${limit.toLocaleString("en")} bytes`);
      return;
    }
    if (!file && !form.elements.content.value.trim()) {  // said here, not in the API's words
      fieldError(form, "content", "Paste a transcript or choose a file");
      form.elements.content.focus();
      return;
    }
    const button = form.querySelector('button[type="submit"]');
    const status = document.getElementById("evaluation-form-status");
    button.disabled = true;
    status.textContent = "Starting…";
    try {
      const created = await P.api("POST", "/v1/evaluations", formBody(form));
      status.textContent = "Started.";
      window.location.assign(`/panels/${encodeURIComponent(created.id)}`);
    } catch (error) {
      status.textContent = "";
      button.disabled = false;
      if (error instanceof P.ApiError) showApiError(form, error);
      else showApiError(form, { message: String(error), details: {} });
    }
  }

  function setupForm(form) {
    form.querySelectorAll('input[name="source"]').forEach((radio) =>
      radio.addEventListener("change", () => chooseSource(form)));
    chooseSource(form);
    form.addEventListener("submit", (event) => start(form, event));
  }

  function showProgress(progress) {
    const bar = document.getElementById("evaluation-progress");
    bar.max = Math.max(progress.total, 1);
    bar.value = progress.finished;
    const cells = progress.cells;
    document.getElementById("progress-text").textContent =
      `${progress.finished} of ${progress.total} cells finished ` +
      `(${cells.done} scored, ${cells.failed} failed${cells.cancelled ? `, ${cells.cancelled} cancelled` : ""})` +
      (progress.status === "running" ? "." : `: ${progress.status}.`);
  }

  // Progress events until done, then the page again (it renders the cards). If the
  // stream cannot be opened, ask for the progress now and then instead.
  function follow(id) {
    const base = `/v1/evaluations/${encodeURIComponent(id)}`;
    const finish = (progress) => { showProgress(progress); window.location.reload(); };
    const poll = async () => {
      try {
        const found = await P.api("GET", base);
        if (found.status !== "running") return finish(found.progress);
        showProgress(found.progress);
      } catch (error) { P.toast(error.message, "error"); }
      setTimeout(poll, 2000);
    };
    if (!window.EventSource) { poll(); return; }
    const events = new EventSource(`${base}/events`);
    events.addEventListener("progress", (event) => showProgress(JSON.parse(event.data)));
    events.addEventListener("done", (event) => { events.close(); finish(JSON.parse(event.data)); });
    events.addEventListener("error", (event) => {
      if (event.data) {  // the evaluation went away while we watched
        events.close();
        P.toast(JSON.parse(event.data).message, "error");
      } else if (events.readyState === EventSource.CLOSED) {
        poll();
      }
    });
  }

  async function act(button, path, body) {
    button.disabled = true;
    try {
      await P.api("POST", path, body);
      window.location.reload();
    } catch (error) {
      button.disabled = false;
      P.toast(error.message, "error");
    }
  }

  function setupEvaluation(info) {
    const base = `/v1/evaluations/${encodeURIComponent(info.id)}`;
    if (info.status === "running") follow(info.id);
    const cancel = document.getElementById("cancel-evaluation");
    if (cancel) cancel.addEventListener("click", () => act(cancel, `${base}/cancel`));
    const rerun = document.getElementById("rerun-failed");
    if (rerun) {
      rerun.addEventListener("click", () => {
        const cancelled = document.getElementById("rerun-cancelled");
        act(rerun, `${base}/rerun`, { include_cancelled: Boolean(cancelled && cancelled.checked) });
      });
    }
  }

  function setup() {
    const form = document.getElementById("evaluation-form");
    if (form) setupForm(form);
    const info = P.data("panel-evaluation");
    if (info) setupEvaluation(info);
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
