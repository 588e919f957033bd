// Admin pages: every change goes through the JSON API (users, roles, keys); the page
// then shows what the API answered. A new key's secret lives only in this page's
// memory and its one read-only field: it is never written into a page by the server.
"use strict";
(function () {
  const P = () => window.Personae;

  function showFormError(slot, error) {
    if (!slot) return;
    slot.textContent = error ? error.message : "";
    slot.hidden = !error;
  }

  // -- users -------------------------------------------------------------------
  async function patchUser(button) {
    const name = button.dataset.name;
    const action = button.dataset.action;
    const row = button.closest("tr");
    const body = action === "role"
      ? { role: row.querySelector("[data-role-select]").value }
      : { disabled: action === "disable" };
    const slot = document.querySelector("[data-users-error]");
    button.disabled = true;
    try {
      await P().api("PATCH", `/v1/users/${encodeURIComponent(name)}`, body);
      location.reload();
    } catch (error) {
      showFormError(slot, error);
      button.disabled = false;
    }
  }

  function nameError(form, message) {
    const field = form.elements.name;
    const slot = document.getElementById(`${field.id}-error`);
    slot.textContent = message;
    slot.hidden = false;
    field.setAttribute("aria-invalid", "true");
    field.setAttribute("aria-describedby", `${field.id}-hint ${slot.id}`);
  }

  function setupUsers() {
    document.querySelectorAll("button[data-action]").forEach((button) => {
      button.addEventListener("click", () => patchUser(button));
    });
    const form = document.getElementById("create-user");
    if (!form) return;
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const slot = form.querySelector("[data-form-error]");
      P().clearErrors(form);
      showFormError(slot, null);
      const body = { name: form.elements.name.value.trim(), role: form.elements.role.value };
      try {
        await P().api("POST", "/v1/users", body);
        location.reload();
      } catch (error) {
        // The name is the form's only free field: an error naming no field is about it.
        const left = P().showErrors(form, error);
        if (left.length && error.status < 500 && error.status !== 403) {
          nameError(form, left.map((i) => i.message).join("; "));
        } else if (left.length) {
          showFormError(slot, { message: left.map((i) => i.message).join("; ") });
        }
      }
    });
  }

  // -- keys --------------------------------------------------------------------
  function keyRow(key) {
    const el = P().el;
    return el("tr", { "data-key": key.id },
      el("th", { scope: "row" }, key.name),
      el("td", {}, el("code", {}, `${key.prefix}…`)),
      el("td", {}, el("span", { class: "badge ok", "data-status": "" }, "active")),
      el("td", {}, el("time", { datetime: key.created_at }, key.created_at.slice(0, 16).replace("T", " "))),
      el("td", {}, el("span", { class: "muted" }, "role's defaults")),
      el("td", {}, revokeButton(key.id, key.name)));
  }

  function revokeButton(id, label) {
    const button = P().el("button", { type: "button", class: "danger", "data-revoke": id,
      "data-label": label }, "Revoke");
    button.addEventListener("click", () => revoke(button));
    return button;
  }

  async function revoke(button) {
    const label = button.dataset.label;
    if (!confirm(`Revoke the key "${label}"? Anything using it stops working at once.`)) return;
    const slot = document.querySelector("[data-keys-error]");
    button.disabled = true;
    try {
      await P().api("DELETE", `/v1/keys/${encodeURIComponent(button.dataset.revoke)}`);
      const status = button.closest("tr").querySelector("[data-status]");
      status.textContent = "revoked";
      status.className = "badge failed";
      P().toast(`Key "${label}" revoked.`);
      button.remove();
      showFormError(slot, null);
    } catch (error) {
      showFormError(slot, error);
      button.disabled = false;
    }
  }

  function showNewKey(token) {
    const box = document.getElementById("new-key");
    const field = document.getElementById("new-key-value");
    field.value = token;
    box.hidden = false;
    field.focus();
    field.select();
  }

  function setupKeys() {
    document.querySelectorAll("button[data-revoke]").forEach((button) => {
      button.addEventListener("click", () => revoke(button));
    });
    document.querySelectorAll("button[data-copy]").forEach((button) => {
      button.addEventListener("click", async () => {
        const field = document.getElementById(button.dataset.copy);
        field.select();
        try {
          await navigator.clipboard.writeText(field.value);
          P().toast("Copied.");
        } catch (_) {
          P().toast("Select the key and copy it (Ctrl+C).");
        }
      });
    });
    const form = document.getElementById("create-key");
    if (!form) return;
    const user = P().data("admin-user");
    form.addEventListener("submit", async (event) => {
      event.preventDefault();
      const slot = form.querySelector("[data-form-error]");
      showFormError(slot, null);
      const name = form.elements.name.value.trim() || "default";
      try {
        const key = await P().api("POST", `/v1/users/${encodeURIComponent(user)}/keys`, { name });
        document.querySelector("#key-rows [data-empty]")?.remove();
        document.getElementById("key-rows").append(keyRow(key));
        showNewKey(key.token);
      } catch (error) {
        const left = P().showErrors(form, error);
        if (left.length) showFormError(slot, { message: left.map((i) => i.message).join("; ") });
      }
    });
  }

  function setup() {
    setupUsers();
    setupKeys();
  }

  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", setup);
  else setup();
})();
