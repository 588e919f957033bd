// A safe subset of Markdown for replies, as DOM built from text nodes (never HTML):
// fenced code, headings, lists, paragraphs; inline code, bold, italic, and links to
// http(s) only. Anything else (HTML included) stays text, exactly as written.
// Exposed as Personae.markdown(text) -> an array of block elements.
"use strict";
(function () {
  const P = window.Personae;
  const INLINE = new RegExp([
    /`(?<code>[^`\n]+)`/, /\[(?<label>[^\]\n]+)\]\((?<href>[^()\s]*(?:\([^()\s]*\)[^()\s]*)*)\)/,
    /\*\*(?<strong>\S(?:[\s\S]*?\S)?)\*\*/, /(?<![\w_])__(?<strong2>\S(?:[\s\S]*?\S)?)__(?![\w_])/,
    /\*(?<em>[^*\s](?:[^*]*?[^*\s])?)\*/, /(?<![\w_])_(?<em2>[^_\s](?:[^_]*?[^_\s])?)_(?![\w_])/,
  ].map((r) => r.source).join("|"), "g");

  function safeHref(href) {
    try {
      const url = new URL(href);
      return url.protocol === "https:" || url.protocol === "http:" ? url.href : null;
    } catch (error) {
      return null;
    }
  }

  function inline(text) {
    const out = [];
    let at = 0;
    for (const match of text.matchAll(INLINE)) {
      const g = match.groups;
      const href = g.href !== undefined ? safeHref(g.href) : null;
      if (g.label !== undefined && !href) continue; // not a link we make: left as text
      out.push(text.slice(at, match.index));
      at = match.index + match[0].length;
      if (g.code !== undefined) out.push(P.el("code", {}, g.code));
      else if (href) out.push(P.el("a", { href, rel: "noopener noreferrer nofollow", target: "_blank" }, inline(g.label)));
      else if ((g.strong ?? g.strong2) !== undefined) out.push(P.el("strong", {}, inline(g.strong ?? g.strong2)));
      else out.push(P.el("em", {}, inline(g.em ?? g.em2)));
    }
    out.push(text.slice(at));
    return out.filter((part) => part !== "");
  }

  const FENCE = /^\s{0,3}(`{3,}|~{3,})\s*([\w+-]*)/;
  const HEADING = /^\s{0,3}(#{1,6})\s+(.*?)\s*#*\s*$/;
  const ITEM = /^\s{0,3}(?:([-*+])|(\d{1,9})[.)])\s+(.*)$/;

  function lines(parts) { // a paragraph's or item's lines, with their line breaks kept
    return parts.flatMap((line, i) => (i ? [P.el("br"), ...inline(line)] : inline(line)));
  }

  function markdown(text) {
    const rows = text.replace(/\r\n?/g, "\n").split("\n");
    const blocks = [];
    let list = null; // the open list: { node, ordered, item }
    for (let i = 0; i < rows.length; i += 1) {
      const row = rows[i];
      const fence = FENCE.exec(row);
      const heading = HEADING.exec(row);
      const item = ITEM.exec(row);
      if (fence) {
        const code = [];
        for (i += 1; i < rows.length && !rows[i].trim().startsWith(fence[1]); i += 1) code.push(rows[i]);
        blocks.push(P.el("pre", { tabindex: "0" },
          P.el("code", { "data-language": fence[2] || null }, code.join("\n"))));
      } else if (heading && heading[2]) {
        blocks.push(P.el(`h${Math.min(heading[1].length + 2, 6)}`, {}, inline(heading[2])));
      } else if (item) {
        const ordered = item[2] !== undefined;
        if (!list || list.ordered !== ordered) {
          list = { ordered, node: P.el(ordered ? "ol" : "ul", { start: ordered && item[2] !== "1" ? item[2] : null }) };
          blocks.push(list.node);
        }
        list.item = [item[3]];
        list.node.append(P.el("li", {}, lines(list.item)));
        continue;
      } else if (list && /^\s+\S/.test(row)) { // an item's next line
        list.item.push(row.trim());
        list.node.lastElementChild.replaceChildren(...lines(list.item));
        continue;
      } else if (row.trim()) {
        const para = [row];
        while (i + 1 < rows.length && rows[i + 1].trim() && !FENCE.test(rows[i + 1])
          && !HEADING.test(rows[i + 1]) && !ITEM.test(rows[i + 1])) para.push(rows[(i += 1)]);
        blocks.push(P.el("p", {}, lines(para)));
      }
      list = null;
    }
    return blocks;
  }

  P.markdown = markdown;
})();
