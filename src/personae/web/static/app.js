// Personae dashboard: the few helpers every page's script uses. Pages change things
// only through the JSON API (/v1), with the session cookie and the page's CSRF token.
"use strict";
(function () {
  const csrf = () => document.querySelector('meta[name="csrf-token"]')?.content || "";

  class ApiError extends Error {
    constructor(status, body) {
      const error = (body && body.error) || {};
      super(error.message || `request failed (${status})`);
      this.status = status;
      this.code = error.code || "error";
      this.details = error.details || {};
    }
  }

  function headers(extra, json) {
    const h = { "X-CSRF-Token": csrf(), Accept: "application/json", ...(extra || {}) };
    if (json) h["Content-Type"] = "application/json";
    return h;
  }

  // fetch() a /v1 path; JSON in and out. Throws ApiError with the API's message.
  async function api(method, path, body, options) {
    const opts = options || {};
    const isForm = body instanceof FormData || body instanceof Blob;
    const response = await fetch(path, {
      method, credentials: "same-origin", signal: opts.signal,
      headers: headers(opts.headers, body !== undefined && !isForm),
      body: body === undefined ? undefined : (isForm ? body : JSON.stringify(body)),
    });
    if (opts.raw) {
      if (!response.ok) throw new ApiError(response.status, await response.json().catch(() => null));
      return response;
    }
    const text = await response.text();
    const data = text ? JSON.parse(text) : null;
    if (!response.ok) throw new ApiError(response.status, data);
    return data;
  }

  // POST and read Server-Sent Events: onEvent(object) for each JSON "data:" payload.
  async function stream(path, body, onEvent, options) {
    const response = await api("POST", path, body,
      { ...(options || {}), raw: true, headers: { Accept: "text/event-stream" } });
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    let buffer = "";
    for (;;) {
      const { value, done } = await reader.read();
      if (done) break;
      buffer += decoder.decode(value, { stream: true });
      let cut;
      while ((cut = buffer.search(/\r?\n\r?\n/)) >= 0) {
        const block = buffer.slice(0, cut);
        buffer = buffer.slice(cut).replace(/^\r?\n\r?\n/, "");
        const data = block.split(/\r?\n/).filter((l) => l.startsWith("data:"))
          .map((l) => l.slice(5).trimStart()).join("\n");
        if (data) onEvent(JSON.parse(data));
      }
    }
  }

  // Build an element; strings become text nodes (never HTML).
  function el(tag, attrs, ...children) {
    const node = document.createElement(tag);
    for (const [key, value] of Object.entries(attrs || {})) {
      if (value === false || value === null || value === undefined) continue;
      if (key === "class") node.className = value;
      else if (key === "text") node.textContent = value;
      else if (key.startsWith("on")) node.addEventListener(key.slice(2), value);
      else node.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat()) {
      if (child === null || child === undefined || child === false) continue;
      node.append(child instanceof Node ? child : document.createTextNode(String(child)));
    }
    return node;
  }

  function toast(message, kind) {
    const box = document.getElementById("toasts");
    if (!box) return;
    const item = el("div", { class: `toast ${kind || ""}`, role: kind === "error" ? "alert" : null }, message);
    box.append(item);
    setTimeout(() => item.remove(), kind === "error" ? 9000 : 4000);
  }

  // Put an API validation error next to its fields: details.errors = [{path, message}];
  // a field is found by data-field="path" (or by its name). Returns the unplaced messages.
  function showErrors(form, error) {
    clearErrors(form);
    const issues = (error.details && error.details.errors) || [];
    const left = [];
    for (const issue of issues) {
      const root = String(issue.path || "").split(/[.[]/)[0];
      const field = form.querySelector(`[data-field="${CSS.escape(issue.path)}"]`) ||
        form.querySelector(`[data-field="${CSS.escape(root)}"]`) ||
        form.querySelector(`[name="${CSS.escape(root)}"]`);
      if (!field) { left.push(issue); continue; }
      const id = `${field.id || root}-error`;
      let slot = document.getElementById(id);
      if (!slot) {
        slot = el("p", { class: "field-error", id, "data-generated": "1" });
        field.insertAdjacentElement("afterend", slot);
      }
      slot.hidden = false;
      slot.textContent = issue.message;
      field.setAttribute("aria-invalid", "true");
      describedBy(field, (ids) => {
        if (ids.includes(id)) return ids; // linked already (by the page, or an earlier issue)
        field.dataset.errorId = id;
        return [...ids, id];
      });
    }
    if (!issues.length) left.push({ path: "", message: error.message });
    return left;
  }

  // A field keeps the descriptions it had (its hint): an error's id is added to its
  // aria-describedby list, and only that id is taken out again.
  function describedBy(field, change) {
    const ids = change((field.getAttribute("aria-describedby") || "").split(/\s+/).filter(Boolean));
    if (ids.length) field.setAttribute("aria-describedby", ids.join(" "));
    else field.removeAttribute("aria-describedby");
  }

  function clearErrors(form) {
    form.querySelectorAll("[aria-invalid]").forEach((f) => f.removeAttribute("aria-invalid"));
    form.querySelectorAll("[data-error-id]").forEach((f) => {
      const id = f.dataset.errorId;
      describedBy(f, (ids) => ids.filter((other) => other !== id));
      delete f.dataset.errorId;
    });
    form.querySelectorAll(".field-error").forEach((e) => { e.hidden = true; e.textContent = ""; });
  }

  // Data a page handed to its script: <script type="application/json" id="...">.
  function data(id) {
    const node = document.getElementById(id);
    return node ? JSON.parse(node.textContent) : null;
  }

  function setupTheme() {
    const saved = localStorage.getItem("personae-theme");
    if (saved) document.documentElement.dataset.theme = saved;
    document.querySelectorAll("[data-theme-toggle]").forEach((button) => {
      button.addEventListener("click", () => {
        const dark = document.documentElement.dataset.theme
          ? document.documentElement.dataset.theme === "dark"
          : matchMedia("(prefers-color-scheme: dark)").matches;
        const next = dark ? "light" : "dark";
        document.documentElement.dataset.theme = next;
        localStorage.setItem("personae-theme", next);
      });
    });
  }

  window.Personae = { api, stream, el, toast, showErrors, clearErrors, data, ApiError, csrf };
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setupTheme);
  else setupTheme();
})();
