// Personae dashboard: the persona gallery's import and the persona editor. Every change
// goes through the JSON API (/v1/personas); the page is then reloaded from the server.
"use strict";
(function () {
  const P = window.Personae;
  const el = (...args) => P.el(...args);

  // -- the gallery's import: drop a file on the zone, or choose it and press Import --

  function setupImport() {
    const form = document.getElementById("import-form");
    if (!form) return;
    const input = document.getElementById("import-file");
    const zone = form.querySelector("[data-dropzone]");
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (input.files.length) importFile(input.files[0]);
      else showImport([el("p", { class: "form-error" }, "Choose a file to import first.")]);
    });
    zone.addEventListener("dragover", (event) => { event.preventDefault(); zone.classList.add("over"); });
    zone.addEventListener("dragleave", () => zone.classList.remove("over"));
    zone.addEventListener("drop", (event) => {
      event.preventDefault();
      zone.classList.remove("over");
      const file = event.dataTransfer && event.dataTransfer.files[0];
      if (file) importFile(file);
    });
  }

  function showImport(children) {
    document.getElementById("import-result").replaceChildren(...children);
  }

  async function importFile(file) {
    const body = new FormData();
    body.append("file", file, file.name);
    body.append("visibility", document.getElementById("import-visibility").value);
    showImport([el("p", {}, `Importing ${file.name}…`)]);
    try {
      const result = await P.api("POST", "/v1/personas/import", body);
      showImport(importReport(result, file.name));
    } catch (error) {
      showImport([el("p", { class: "form-error", role: "alert" },
        `${file.name} was not imported: ${error.message}`)]);
    }
  }

  function importReport(result, filename) {
    const links = result.data.map((p) => el("li", {},
      el("a", { href: `/personas/${p.id}` }, p.definition.display_name || p.definition.name)));
    const warnings = result.warnings || [];
    return [el("div", { class: "note stack", id: "import-report" },
      el("p", {}, `Imported ${filename} (${result.source_format}): `,
        `${result.count} persona${result.count === 1 ? "" : "s"}.`),
      el("ul", { class: "imported" }, links),
      warnings.length
        ? [el("h3", {}, "Warnings"), el("ul", { class: "warnings" }, warnings.map((w) => el("li", {}, w)))]
        : el("p", {}, "No warnings."),
      el("p", {}, el("a", { href: "/?sort=newest" }, "Show the gallery, newest first")))];
  }

  // -- the editor's definition form --

  function setPath(target, path, value) {
    let node = target;
    for (const part of path.slice(0, -1)) {
      if (typeof node[part] !== "object" || node[part] === null) node[part] = {};
      node = node[part];
    }
    const last = path[path.length - 1];
    if (value === null) delete node[last];
    else node[last] = value;
  }

  function fieldValue(input) {
    const raw = input.value;
    if (input.dataset.kind === "lines") return listOrNull(raw.split("\n"));
    if (input.dataset.kind === "list") return listOrNull(raw.split(","));
    if (input.type === "number") return raw.trim() === "" ? null : Number(raw);
    return raw.trim() === "" ? null : raw;
  }

  function listOrNull(parts) {
    const items = parts.map((s) => s.trim()).filter(Boolean);
    return items.length ? items : null;
  }

  // The trait blocks in their order; those whose kind is a list or mapping parse as
  // JSON (issues say where not).
  function collectTraits(form, issues) {
    const traits = {};
    for (const block of form.querySelectorAll("[data-trait]")) {
      const name = block.querySelector("[data-trait-name]").value.trim();
      const area = block.querySelector("[data-trait-text]");
      const text = area.value;
      if (!name && !text.trim()) continue;
      area.dataset.field = `traits.${name}`;
      if (!name) { issues.push({ path: area.dataset.field, message: "a block needs a name" }); continue; }
      if (name in traits) issues.push({ path: area.dataset.field, message: `two blocks are named "${name}"` });
      if (block.querySelector("[data-trait-kind]").value === "json") {
        try { traits[name] = JSON.parse(text); } catch (error) {
          issues.push({ path: area.dataset.field, message: `not valid JSON: ${error.message}` });
        }
      } else traits[name] = text;
    }
    return traits;
  }

  function collect(form, base, issues) {
    const definition = structuredClone(base || {});
    for (const input of form.querySelectorAll("[data-def]")) {
      setPath(definition, input.dataset.def.split("."), fieldValue(input));
    }
    const traits = collectTraits(form, issues);
    if (Object.keys(traits).length) definition.traits = traits;
    else delete definition.traits;
    return definition;
  }

  // A new block is a copy of the page's template block (so its markup is the server's),
  // its ids made unique.
  let traitCount = 0;
  function addTrait(list, template) {
    traitCount += 1;
    const block = template.content.firstElementChild.cloneNode(true);
    for (const node of [block, ...block.querySelectorAll("*")]) {
      for (const attr of ["id", "for", "aria-describedby"]) {
        const value = node.getAttribute(attr);
        if (value) node.setAttribute(attr, value.replace(/-new$/, `-new-${traitCount}`));
      }
    }
    list.append(block);
    block.querySelector("[data-trait-name]").focus();
  }

  // The chosen kind's hint, and a code font for JSON.
  function showKind(block) {
    const choice = block.querySelector("[data-trait-kind]");
    const area = block.querySelector("[data-trait-text]");
    const json = choice.value === "json";
    area.classList.toggle("code", json);
    area.rows = json ? 5 : 3;
    block.querySelector("[data-trait-hint]").textContent = choice.selectedOptions[0].dataset.hint;
  }

  function setupTraits(form) {
    const list = form.querySelector("#trait-list");
    const add = form.querySelector("[data-add-trait]");
    const template = form.querySelector("#trait-template");
    if (!list || !add || !template) return;
    add.addEventListener("click", () => addTrait(list, template));
    list.addEventListener("change", (event) => {
      if (event.target.matches("[data-trait-kind]")) showKind(event.target.closest("[data-trait]"));
    });
    list.addEventListener("click", (event) => {
      const button = event.target.closest("[data-remove-trait]");
      if (!button) return;
      button.closest("[data-trait]").remove();
      add.focus();
    });
  }

  // The API derives a missing id from the name; a form without an id field tells an id
  // problem at the name instead, and not at all when the name has its own error.
  function idAsName(form, error) {
    const issues = (error.details && error.details.errors) || [];
    if (form.querySelector('[data-field="id"]') || !issues.some((i) => i.path === "id")) return error;
    const named = issues.some((i) => i.path === "name");
    const errors = issues.flatMap((i) => i.path !== "id" ? [i]
      : named ? [] : [{ ...i, path: "name", message: `gives no usable id (${i.message})` }]);
    return { status: error.status, local: error.local, message: error.message,
             details: { ...error.details, errors } };
  }

  // Errors next to their fields; the rest listed in the form's own error box.
  function showProblems(form, error) {
    const box = form.querySelector(".form-error[role=alert]");
    const left = error.status === 422 || error.local ? P.showErrors(form, idAsName(form, error))
      : (P.clearErrors(form), [{ path: "", message: error.message }]);
    describeTraits(form);
    if (!box) return;
    box.replaceChildren(...left.map((issue) =>
      el("p", {}, issue.path ? `${issue.path}: ${issue.message}` : issue.message)));
    box.hidden = !left.length;
    const first = form.querySelector("[aria-invalid=true]");
    if (first) first.focus();
  }

  function clearProblems(form) {
    P.clearErrors(form);
    const box = form.querySelector(".form-error[role=alert]");
    if (box) { box.hidden = true; box.replaceChildren(); }
    describeTraits(form);
  }

  // A block's text stays described by its kind's hint, after its error when it has one.
  function describeTraits(form) {
    for (const block of form.querySelectorAll("[data-trait]")) {
      const area = block.querySelector("[data-trait-text]");
      const error = area.getAttribute("aria-invalid") === "true" ? `${area.id}-error ` : "";
      area.setAttribute("aria-describedby", error + block.querySelector("[data-trait-hint]").id);
    }
  }

  function localError(issues) {
    return { local: true, message: "Some fields need attention.", details: { errors: issues } };
  }

  function savedAt(record, persona) {
    if (persona.version && record.version === persona.version) {
      P.toast("Nothing changed, so no new version was saved.");
      return;
    }
    location.assign(`/personas/${record.id}?saved=${record.version}`);
  }

  async function submitForm(form, persona) {
    clearProblems(form);
    const issues = [];
    const definition = collect(form, persona.definition, issues);
    if (issues.length) { showProblems(form, localError(issues)); return; }
    const note = form.querySelector("[data-note]").value.trim();
    const visibility = form.querySelector("[name=visibility]");
    const body = { definition, note };
    if (visibility) body.visibility = visibility.value;
    try {
      const record = persona.new
        ? await P.api("POST", "/v1/personas", body)
        : await P.api("PUT", `/v1/personas/${persona.id}`, { ...body, base_version: persona.version });
      savedAt(record, persona);
    } catch (error) { showProblems(form, error); }
  }

  async function submitYaml(form, persona) {
    clearProblems(form);
    const body = { definition_yaml: form.querySelector("textarea").value, base_version: persona.version,
      note: form.querySelector("[data-note]").value.trim() };
    try {
      savedAt(await P.api("PUT", `/v1/personas/${persona.id}`, body), persona);
    } catch (error) { showProblems(form, error); }
  }

  // -- actions: archive, restore, roll back --

  async function act(path, body, persona) {
    try {
      const record = await P.api("POST", `/v1/personas/${persona.id}/${path}`, body);
      location.assign(`/personas/${record.id}?saved=${record.version}`);
    } catch (error) { P.toast(error.message, "error"); }
  }

  function setupActions(persona) {
    document.querySelectorAll("[data-status-action]").forEach((button) => {
      button.addEventListener("click", () => act(button.dataset.statusAction,
        { base_version: persona.version }, persona));
    });
    document.querySelectorAll("[data-rollback]").forEach((button) => {
      button.addEventListener("click", () => act("rollback",
        { version: Number(button.dataset.rollback), base_version: persona.version }, persona));
    });
  }

  // -- tabs (arrow keys move between them) --

  function setupTabs() {
    const list = document.querySelector("[data-tabs]");
    if (!list) return;
    const tabs = [...list.querySelectorAll("[role=tab]")];
    const select = (tab, focus) => {
      for (const each of tabs) {
        const on = each === tab;
        each.setAttribute("aria-selected", String(on));
        each.tabIndex = on ? 0 : -1;
        document.getElementById(each.getAttribute("aria-controls")).hidden = !on;
      }
      if (focus) tab.focus();
    };
    tabs.forEach((tab, index) => {
      tab.addEventListener("click", () => select(tab, false));
      tab.addEventListener("keydown", (event) => {
        const step = { ArrowRight: 1, ArrowLeft: -1 }[event.key];
        if (step) select(tabs[(index + step + tabs.length) % tabs.length], true);
      });
    });
    const diff = document.getElementById("diff");
    const wanted = location.hash.replace("#", "") ||
      (diff && diff.dataset.diffAsked === "yes" ? "history" : "form");
    select(document.getElementById(`tab-${wanted}`) || tabs[0], false);
  }

  function setupEditor() {
    const persona = P.data("persona-data");
    if (!persona) return;
    const form = document.querySelector("[data-persona-form]");
    if (form && persona.can_edit) {
      setupTraits(form);
      form.addEventListener("submit", (event) => { event.preventDefault(); submitForm(form, persona); });
    }
    const yaml = document.querySelector("[data-yaml-form]");
    if (yaml && persona.can_edit) {
      yaml.addEventListener("submit", (event) => { event.preventDefault(); submitYaml(yaml, persona); });
    }
    setupActions(persona);
    setupTabs();
  }

  function start() { setupImport(); setupEditor(); }
  if (document.readyState === "loading") document.addEventListener("DOMContentLoaded", start);
  else start();
})();
