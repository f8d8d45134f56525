/*! Lotse chat widget. One script tag:
 *   <script src="https://lotse.example/widget.js" data-api="https://lotse.example" defer></script>
 * Options (data-…): api, lang (de|en), position (right|left), color, logo, title, greeting,
 * mode (widget|kiosk), idle (kiosk: seconds until reset), campaign-param (the page address parameter
 * that carries a campaign code, default c), feedback (a service's id: a one-to-five-star rating of
 * it in place of the tag, instead of the chat), suggestions (present: the suggestion box in place of
 * the tag, instead of the chat), survey (a survey's id: the survey in place of the tag; with channel
 * web|link|kiosk, and lang de|en|ls).
 * Everything lives in a shadow root: the host page's CSS cannot reach it, and it leaves no
 * globals. Text from the assistant, staff or citizens is only ever set as text, never as HTML;
 * links come only from a reply's sources. */
(() => {
  "use strict";
  const script = document.currentScript;
  if (!script || script.dataset.lotseMounted) return;
  script.dataset.lotseMounted = "1";
  const opt = script.dataset;
  const API = (opt.api || new URL(script.src, location.href).origin).replace(/\/$/, "");
  const COLOR = /^#[0-9a-fA-F]{3,8}$/.test(opt.color || "") ? opt.color : "#004f9f";
  // data-feedback="SERVICE-ID": a rating of that service, in place of the script tag, instead
  // of the chat (a page that wants both has two tags).
  if (opt.feedback) { rating(); return; }
  // data-suggestions: the suggestion box (Verbesserungsvorschlag), in place of the tag.
  if ("suggestions" in opt) { suggestionBox(); return; }
  // data-survey="ID": a survey of the feedback plug-in, in place of the tag.
  if (opt.survey) { survey(); return; }
  const KIOSK = opt.mode === "kiosk";
  const IDLE = Math.max(5, Number(opt.idle || 120)) * 1000;
  const STORE = "lotse.conversation." + API;
  const storage = KIOSK ? sessionStorage : localStorage;

  const T = {
    de: {
      open: "Chat mit Lotse öffnen", close: "Chat schließen", title: opt.title || "Lotse – Ihre Stadtverwaltung",
      input: "Ihre Frage", send: "Senden", human: "Mit einem Menschen sprechen", searching: "Lotse sucht …",
      staffTyping: "schreibt …", plain: "Einfache Sprache", newChat: "Neues Gespräch", del: "Gespräch löschen",
      sources: "Quellen", asOf: "Stand", privacy: "Bitte geben Sie keine sensiblen Daten ein. Das Gespräch wird nur so lange gespeichert wie nötig; Sie können es jederzeit löschen.",
      staff: "Mitarbeiterin/Mitarbeiter", you: "Sie", bot: "Lotse", deleted: "Das Gespräch wurde gelöscht.", notDeleted: "Das Gespräch konnte gerade nicht gelöscht werden. Bitte versuchen Sie es gleich noch einmal.",
      cbTitle: "Rückruf oder E-Mail", cbPhone: "Telefon", cbEmail: "E-Mail", cbContact: "Telefonnummer oder E-Mail-Adresse",
      cbName: "Name (freiwillig)", cbSend: "Rückruf anfordern", error: "Das hat leider nicht geklappt. Bitte versuchen Sie es noch einmal.",
      lang: "Sprache", offline: "Keine Verbindung zum Server.", qr: "QR-Code zum Mitnehmen",
      consent_required: "Bitte bestätigen Sie Ihr Einverständnis.", invalid_contact: "Bitte prüfen Sie die Telefonnummer oder E-Mail-Adresse.",
      helped: "Hat Ihnen das geholfen?", yes: "Ja", no: "Nein", why: "Was hat nicht gepasst? (bitte eine Antwort wählen)", wrong: "Die Auskunft ist falsch", outdated: "Die Auskunft ist veraltet", unclear: "Ich verstehe die Antwort nicht", not_sought: "Das habe ich nicht gesucht", other: "Etwas anderes",
      comment: "Anmerkung (freiwillig, bitte ohne persönliche Daten)", voteSend: "Rückmeldung senden", thanks: "Danke für Ihre Rückmeldung.",
      surveyInvite: "Wie war Ihr Gespräch? Sagen Sie es uns in einer kurzen Umfrage (öffnet ein neues Fenster):",
      rate_limited: "Zu viele Anfragen. Bitte warten Sie einen Moment.", busy: "Gerade werden viele Fragen beantwortet. Bitte senden Sie Ihre gleich noch einmal.", conversation_full: "Dieses Gespräch ist sehr lang geworden. Bitte beginnen Sie ein neues.", message_too_long: "Die Nachricht ist zu lang.",
    },
    en: {
      open: "Open chat with Lotse", close: "Close chat", title: opt.title || "Lotse – your city administration",
      input: "Your question", send: "Send", human: "Talk to a person", searching: "Lotse is searching …",
      staffTyping: "is typing …", plain: "Plain language", newChat: "New conversation", del: "Delete conversation",
      sources: "Sources", asOf: "As of", privacy: "Please do not enter sensitive data. The conversation is kept only as long as needed; you can delete it at any time.",
      staff: "Staff", you: "You", bot: "Lotse", deleted: "The conversation has been deleted.", notDeleted: "The conversation could not be deleted just now. Please try again in a moment.",
      cbTitle: "Callback or e-mail", cbPhone: "Phone", cbEmail: "E-mail", cbContact: "Phone number or e-mail address",
      cbName: "Name (optional)", cbSend: "Request a callback", error: "Sorry, that did not work. Please try again.",
      lang: "Language", offline: "No connection to the server.", qr: "QR code to take along",
      consent_required: "Please confirm your consent.", invalid_contact: "Please check the phone number or e-mail address.",
      helped: "Did this help you?", yes: "Yes", no: "No", why: "What was not right? (please choose one)", wrong: "The information is wrong", outdated: "The information is out of date", unclear: "I do not understand the answer", not_sought: "It is not what I was looking for", other: "Something else",
      comment: "Comment (optional, please no personal data)", voteSend: "Send feedback", thanks: "Thank you for your feedback.",
      surveyInvite: "How was your conversation? Tell us in a short survey (opens a new window):",
      rate_limited: "Too many requests. Please wait a moment.", busy: "Many questions are being answered right now. Please send yours again in a moment.", conversation_full: "This conversation has become very long. Please start a new one.", message_too_long: "The message is too long.",
    },
  };

  // The browser keeps only what resuming needs (the id, the language, the last event seen,
  // the answers voted on), never what was said: a reload fetches the lines from the server.
  const KEPT = ["id", "lang", "langChosen", "plain", "plugins", "lastEvent", "handoff", "voted"];
  let state = { id: null, lang: opt.lang === "en" ? "en" : "de", plain: false, ...load(), items: [] };
  let es = null;
  let pending = null; // the reply being streamed
  let idleTimer = null;
  const t = (k) => T[state.lang][k];

  function load() {
    try {
      const s = JSON.parse(storage.getItem(STORE) || "null") || {};
      // An older widget kept the lines too: those go at once.
      if ("items" in s) { delete s.items; storage.setItem(STORE, JSON.stringify(s)); }
      return Object.fromEntries(KEPT.filter((k) => k in s).map((k) => [k, s[k]]));
    } catch (_) { return {}; }
  }
  function save() {
    try { storage.setItem(STORE, JSON.stringify(Object.fromEntries(KEPT.filter((k) => k in state).map((k) => [k, state[k]])))); } catch (_) { /* full or blocked */ }
  }

  // --- DOM --------------------------------------------------------------------------------
  // A custom element as host, reset inline with !important: page rules (even `* {…
  // !important}`) neither hide it nor leak inherited styles into the shadow root.
  const host = document.createElement("lotse-widget");
  host.style.setProperty("all", "initial", "important");
  const root = host.attachShadow({ mode: "open" });
  const h = (tag, attrs, ...children) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (k.startsWith("on")) e.addEventListener(k.slice(2), v);
      else if (v !== false && v != null) e.setAttribute(k, v === true ? "" : v);
    }
    for (const c of children) e.append(c instanceof Node ? c : document.createTextNode(String(c)));
    return e;
  };

  const css = `
:host{all:initial}
*{box-sizing:border-box}
.root{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a1a1a;position:fixed;bottom:16px;${opt.position === "left" ? "left" : "right"}:16px;z-index:2147483000}
.kiosk .root,.root.kiosk{position:fixed;inset:0;font-size:24px}
button,input,textarea{font:inherit;color:inherit}
.launcher{background:var(--c);color:#fff;border:0;border-radius:28px;padding:12px 20px;min-height:48px;cursor:pointer;box-shadow:0 2px 8px rgba(0,0,0,.3)}
.panel{display:flex;flex-direction:column;width:min(400px,calc(100vw - 32px));height:min(640px,calc(100vh - 32px));background:#fff;border:1px solid #767676;border-radius:8px;box-shadow:0 4px 24px rgba(0,0,0,.3);overflow:hidden}
.kiosk .panel{width:100%;height:100%;border-radius:0;border:0}
.panel[hidden],.launcher[hidden]{display:none}
header{display:flex;flex-wrap:wrap;align-items:center;gap:6px;padding:8px 12px;background:var(--c);color:#fff}
header h2{font-size:1em;margin:0;flex:1 1 0;min-width:0}
header img{height:28px}
header button,.tools button{background:transparent;color:inherit;border:1px solid currentColor;border-radius:4px;padding:2px 8px;min-height:32px;min-width:32px;cursor:pointer}
header button[aria-pressed=true]{background:#fff;color:var(--c)}
.tools{display:flex;flex-wrap:wrap;gap:6px;align-items:center;padding:6px 12px;border-bottom:1px solid #ddd;font-size:.875em}
.tools button{color:var(--c)}
.tools label{display:flex;gap:4px;align-items:center}
.log{flex:1;overflow-y:auto;padding:12px;margin:0;list-style:none}
.msg{margin:0 0 10px;max-width:90%;padding:8px 12px;border-radius:8px;white-space:pre-wrap;overflow-wrap:anywhere}
.msg .who{display:block;font-size:.8em;font-weight:600;color:#4a4a4a}
.user{margin-left:auto;background:#e6eef8}
.bot{background:#f2f2f2}
.staff{background:#eaf6e6;border-left:4px solid #2b6b1f}
.status{background:#fff8e1;border:1px solid #b58900}
.src{margin:6px 0 0;padding:0;list-style:none;font-size:.875em}
.src a{color:#00407f}
.src img{display:block;width:160px;height:160px;margin-top:4px}
.asof{display:block;font-size:.9em;color:#4a4a4a}
.kiosk .asof{display:inline}
.chips{display:flex;flex-wrap:wrap;gap:6px;margin:0 0 10px}
.chips button,.human{background:#fff;color:var(--c);border:1px solid var(--c);border-radius:16px;padding:4px 12px;min-height:36px;cursor:pointer}
.kiosk .chips button,.kiosk .human{min-height:56px;padding:8px 20px}
.busy{font-style:italic;color:#4a4a4a;padding:0 12px}
form.ask{display:flex;gap:6px;padding:8px 12px;border-top:1px solid #ddd}
form.ask textarea{flex:1;resize:none;border:1px solid #767676;border-radius:4px;padding:6px;min-height:44px}
form.ask button,.cb button{background:var(--c);color:#fff;border:0;border-radius:4px;padding:0 14px;min-height:44px;cursor:pointer}
.foot{display:flex;justify-content:space-between;gap:6px;padding:0 12px 8px}
.privacy{font-size:.75em;color:#4a4a4a;padding:0 12px 6px;margin:0}
.cb{display:grid;gap:6px;margin-top:8px}
.cb input[type=text],.cb input[type=email],.cb input[type=tel]{border:1px solid #767676;border-radius:4px;padding:6px;width:100%}
.cb fieldset{border:0;padding:0;margin:0;display:flex;gap:12px}
.vote{margin-top:6px;font-size:.875em;white-space:normal}
.vote-body{display:flex;flex-wrap:wrap;align-items:center;gap:6px}
.vote p[role=status]{margin:0}
.vote button{background:#fff;color:var(--c);border:1px solid var(--c);border-radius:16px;padding:2px 12px;min-height:36px;cursor:pointer}
.vf{display:grid;gap:6px;width:100%}
.vf fieldset{border:0;padding:0;margin:0;display:grid;gap:4px}
.vf textarea{border:1px solid #767676;border-radius:4px;padding:6px}
.vote .vf button[type=submit]{background:var(--c);color:#fff;border:0;border-radius:4px;min-height:44px}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}
:focus-visible{outline:3px solid #f0a000;outline-offset:2px}
@media (max-width:480px){.root{left:0;right:0;bottom:0}.panel{width:100vw;height:100vh;border-radius:0}}
@media (prefers-reduced-motion:no-preference){.panel{transition:opacity .15s}}
`;
  const style = h("style", {}, css);
  const launcher = h("button", { type: "button", class: "launcher", "aria-expanded": "false", "aria-controls": "lotse-panel", onclick: () => openPanel(true) });
  const titleEl = h("h2", { id: "lotse-title" });
  const langDe = h("button", { type: "button", lang: "de", onclick: () => switchLang("de") }, "DE", h("span", { class: "sr" }, " – Deutsch"));
  const langEn = h("button", { type: "button", lang: "en", onclick: () => switchLang("en") }, "EN", h("span", { class: "sr" }, " – English"));
  const closeBtn = h("button", { type: "button", class: "x", onclick: () => openPanel(false) }, "×");
  const logo = opt.logo && /^https?:|^\//.test(opt.logo) ? h("img", { src: opt.logo, alt: "" }) : null;
  const langGroup = h("span", { role: "group" }, langDe, " ", langEn);
  const header = h("header", {}, ...(logo ? [logo] : []), titleEl, langGroup, ...(KIOSK ? [] : [closeBtn]));
  const plainBox = h("input", { type: "checkbox", id: "lotse-plain", onchange: (e) => { state.plain = e.target.checked; save(); } });
  const plainLabel = h("label", { for: "lotse-plain" });
  const newBtn = h("button", { type: "button", onclick: () => newConversation() });
  const delBtn = h("button", { type: "button", onclick: () => deleteConversation() });
  const tools = h("div", { class: "tools" }, h("label", {}, plainBox, plainLabel), newBtn, delBtn);
  const log = h("div", { class: "log", role: "log", "aria-live": "polite", "aria-relevant": "additions", tabindex: "0" });
  const busy = h("p", { class: "busy", hidden: true, "aria-live": "polite" });
  const input = h("textarea", { id: "lotse-input", rows: "1", maxlength: "2000", autocomplete: "off" });
  const inputLabel = h("label", { for: "lotse-input", class: "sr" });
  const sendBtn = h("button", { type: "submit" });
  const form = h("form", { class: "ask", onsubmit: (e) => { e.preventDefault(); send(input.value); } }, inputLabel, input, sendBtn);
  const humanBtn = h("button", { type: "button", class: "human", onclick: () => send(t("human")) });
  const privacy = h("p", { class: "privacy" });
  const panel = h("div", { class: "panel", id: "lotse-panel", role: "dialog", "aria-labelledby": "lotse-title", hidden: true },
    header, tools, log, busy, form, h("div", { class: "foot" }, humanBtn), privacy);
  const wrap = h("div", { class: "root" + (KIOSK ? " kiosk" : ""), style: `--c:${COLOR}` }, launcher, panel);
  root.append(style, wrap);
  input.addEventListener("keydown", (e) => { if (e.key === "Enter" && !e.shiftKey) { e.preventDefault(); send(input.value); } });
  panel.addEventListener("keydown", (e) => { if (e.key === "Escape" && !KIOSK) { e.stopPropagation(); openPanel(false); } });

  function labels() {
    launcher.textContent = t("open");
    titleEl.textContent = t("title");
    closeBtn.setAttribute("aria-label", t("close"));
    langGroup.setAttribute("aria-label", t("lang"));
    langDe.setAttribute("aria-pressed", String(state.lang === "de"));
    langEn.setAttribute("aria-pressed", String(state.lang === "en"));
    plainLabel.textContent = t("plain");
    plainBox.checked = !!state.plain;
    newBtn.textContent = t("newChat");
    delBtn.textContent = t("del");
    inputLabel.textContent = t("input");
    input.setAttribute("placeholder", t("input"));
    sendBtn.textContent = t("send");
    humanBtn.textContent = t("human");
    privacy.textContent = t("privacy");
    busy.textContent = t("searching");
    panel.setAttribute("lang", state.lang);
  }

  // --- rendering -----------------------------------------------------------------------------
  function safeUrl(u) {
    try { const x = new URL(u); return x.protocol === "https:" || x.protocol === "http:" ? x.href : null; } catch (_) { return null; }
  }

  // "Stand: Juni 2025" from a source's as_of (YYYY-MM-DD), as text; nothing when it is missing or malformed.
  function asOf(s) {
    const m = /^([12]\d{3})-(0[1-9]|1[0-2])-(0[1-9]|[12]\d|3[01])$/.exec(s.as_of || "");
    if (!m) return [];
    const e = h("span", { class: "asof" });
    e.textContent = `${t("asOf")}: ${new Date(Date.UTC(m[1], m[2] - 1, 1)).toLocaleDateString(state.lang, { month: "long", year: "numeric", timeZone: "UTC" })}`;
    return KIOSK ? [" (", e, ")"] : [" ", e];
  }

  function sourcesList(sources) {
    const ul = h("ul", { class: "src", "aria-label": t("sources") });
    for (const s of sources || []) {
      const url = safeUrl(s.url);
      if (KIOSK) {
        // No links leave the terminal: the address as text and a QR code to take it along.
        const li = h("li", {}, s.title, ...asOf(s), `: ${url || ""}`);
        if (url) li.append(h("img", { src: `${API}/api/v1/qr?url=${encodeURIComponent(url)}`, alt: `${t("qr")}: ${s.title}` }));
        ul.append(li);
      } else if (url) {
        ul.append(h("li", {}, h("a", { href: url, target: "_blank", rel: "noopener noreferrer" }, s.title), ...asOf(s)));
      } else {
        ul.append(h("li", {}, s.title, ...asOf(s)));
      }
    }
    return ul;
  }

  function render(item) {
    if (item.kind === "chips") {
      const div = h("div", { class: "chips" });
      for (const c of item.chips) div.append(h("button", { type: "button", onclick: () => send(c) }, c));
      return div;
    }
    const who = { user: t("you"), bot: t("bot"), staff: item.name || t("staff"), status: "" }[item.kind];
    const li = h("div", { class: "msg " + item.kind, "data-kind": item.kind });
    if (who) li.append(h("span", { class: "who" }, who));
    li.append(h("span", { class: "text" }, item.text));
    if (item.sources && item.sources.length) li.append(sourcesList(item.sources));
    if (item.callback) li.append(callbackForm(item.callback));
    if (item.link) li.append(" ", h("a", { href: item.link.href, target: "_blank", rel: "noopener noreferrer" }, item.link.text));
    if (item.vote) li.append(voteForm(item));
    return li;
  }

  // Under an answer (the feedback plug-in): did it help; if not, why, and a comment.
  const REASONS = ["wrong", "outdated", "unclear", "not_sought", "other"];
  function voteForm(item) {
    // The status region is there from the start, so that the thanks is announced; it takes the
    // focus from the button or form that goes.
    const status = h("p", { role: "status", tabindex: "-1" });
    const body = h("div", { class: "vote-body" });
    const box = h("div", { class: "vote" }, body, status);
    const done = (focus) => { body.replaceChildren(); status.textContent = t("thanks"); if (focus) status.focus(); };
    if (item.vote.done) { done(false); return box; }
    const id = "v" + Math.random().toString(36).slice(2);
    const msg = h("p", { role: "alert" });
    const send = async (helpful, reason, comment) => {
      const body = { conversation_id: state.id, turn: item.vote.turn, helpful };
      if (reason) body.reason = reason;
      if (comment) body.comment = comment;
      try {
        await api("/p/feedback/thumbs", { method: "POST", body });
        item.vote.done = true;
        state.voted = [...(state.voted || []), item.vote.turn].slice(-50);
        save();
        done(true);
      } catch (e) { msg.textContent = e.message; }
    };
    const why = () => {
      const radios = REASONS.map((r, i) => h("label", { for: id + i }, h("input", { type: "radio", name: id, id: id + i, value: r, required: true }), " ", t(r)));
      const text = h("textarea", { id: id + "c", maxlength: "500", rows: "2" });
      const f = h("form", { class: "vf" },
        h("fieldset", {}, h("legend", {}, t("why")), ...radios),
        h("label", { for: id + "c" }, t("comment")), text,
        h("button", { type: "submit" }, t("voteSend")), msg);
      f.addEventListener("submit", (e) => {
        e.preventDefault();
        const picked = f.querySelector("input:checked");
        send(false, picked && picked.value, text.value.trim());
      });
      body.replaceChildren(f);
      f.querySelector("input").focus();
    };
    body.append(h("span", { id: id + "q" }, t("helped")),
      h("span", { role: "group", "aria-labelledby": id + "q" },
        h("button", { type: "button", onclick: () => send(true) }, h("span", { "aria-hidden": "true" }, "👍 "), t("yes")),
        h("button", { type: "button", onclick: why }, h("span", { "aria-hidden": "true" }, "👎 "), t("no"))), msg);
    return box;
  }

  function add(item, persist = true) {
    // Only the latest suggestions stay clickable.
    if (item.kind === "chips") log.querySelectorAll(".chips").forEach((c) => c.remove());
    const el = render(item);
    log.append(el);
    log.scrollTop = log.scrollHeight;
    if (persist) state.items.push(item);
    return el;
  }

  function replyItems(reply, turn) {
    // The assistant detected another language: the interface follows, unless the citizen chose.
    if (reply.lang && reply.lang !== state.lang && !state.langChosen) { state.lang = reply.lang; save(); labels(); }
    add({ kind: "bot", text: reply.text, sources: reply.sources || [], ...voteFor(reply.kind, turn) });
    // The reply's text already says where the handoff stands; only the callback form is added.
    if (reply.handoff) handoffStatus({ handoff: reply.handoff, text: null });
    const chips = (reply.suggestions || []).filter((s) => s !== t("human"));
    if (chips.length) add({ kind: "chips", chips });
  }

  // A vote under an answer, where the feedback plug-in is on (done when given before).
  function voteFor(kind, turn) {
    const votable = turn && (state.plugins || []).includes("feedback") && ["answer", "clarify", "out_of_scope"].includes(kind);
    return votable ? { vote: { turn, ...((state.voted || []).includes(turn) ? { done: true } : {}) } } : {};
  }

  // A reloaded page: the conversation's lines from the server, then its events from the last
  // one before them. A conversation the server no longer knows starts afresh.
  // The pending resume (see `send`); settled when there is none.
  let resuming = Promise.resolve();
  // The staff lines shown, by their place in the stored conversation: one that arrives while
  // the lines are read stands in them and comes again as an event after them.
  let staffLines = new Set();
  function newStaffLine(line) {
    if (line == null) return true;
    if (staffLines.has(line)) return false;
    staffLines.add(line);
    return true;
  }
  async function resume() {
    let r;
    try { r = await api(`/api/v1/conversations/${state.id}`); } catch (e) {
      // Forgotten (idle for too long): a fresh start, greeted when the chat is open.
      if (e.status === 404) { reset(!panel.hidden); return; }
      add({ kind: "status", text: t("offline") }, false);
      listen();
      return;
    }
    for (const l of r.lines) {
      if (l.author === "citizen") add({ kind: "user", text: l.text });
      else if (l.author === "staff") { if (newStaffLine(l.line)) add({ kind: "staff", name: l.staff, text: l.text }); }
      else add({ kind: "bot", text: l.text, sources: l.sources || [], ...voteFor(l.kind, l.turn) });
    }
    state.lastEvent = String(r.last_event);
    save();
    listen();
  }

  let lastStatus = "";
  function handoffStatus(ev) {
    const hs = ev.handoff;
    const key = JSON.stringify([hs.state, hs.position, hs.wait_minutes, hs.staff]);
    if (key === lastStatus) return;
    lastStatus = key;
    // Only a new state restarts the kiosk's wait, not a new place in the queue.
    const changed = state.handoff !== hs.state;
    state.handoff = hs.state;
    if (changed) touch();
    if (ev.text) add({ kind: "status", text: ev.text });
    if (hs.state === "callback_offered" && hs.callback) add({ kind: "status", text: t("cbTitle"), callback: hs.callback });
  }

  function callbackForm(offer) {
    const id = "cb" + Math.random().toString(36).slice(2);
    const phone = h("input", { type: "radio", name: id + "k", id: id + "p", value: "phone", checked: true });
    const email = h("input", { type: "radio", name: id + "k", id: id + "e", value: "email" });
    const contact = h("input", { type: "text", id: id + "c", required: true, autocomplete: "tel" });
    const name = h("input", { type: "text", id: id + "n", autocomplete: "name" });
    const consent = h("input", { type: "checkbox", id: id + "o" });
    const msg = h("p", { role: "alert" });
    const f = h("form", { class: "cb", "aria-label": t("cbTitle") },
      h("fieldset", {}, h("legend", { class: "sr" }, t("cbTitle")), h("label", { for: id + "p" }, phone, " ", t("cbPhone")), h("label", { for: id + "e" }, email, " ", t("cbEmail"))),
      h("label", { for: id + "c" }, t("cbContact")), contact,
      h("label", { for: id + "n" }, t("cbName")), name,
      h("label", { for: id + "o" }, consent, " ", offer.consent),
      h("button", { type: "submit" }, t("cbSend")), msg);
    email.addEventListener("change", () => contact.setAttribute("autocomplete", "email"));
    f.addEventListener("submit", async (e) => {
      e.preventDefault();
      const body = { contact_kind: email.checked ? "email" : "phone", contact: contact.value, consent: consent.checked };
      if (name.value.trim()) body.name = name.value.trim();
      try {
        const r = await api(`/api/v1/conversations/${state.id}/callback`, { method: "POST", body });
        f.remove();
        // The events stream says the same; whichever comes first is shown.
        handoffStatus({ handoff: r.handoff, text: r.text });
      } catch (err) { msg.textContent = err.message; }
    });
    return f;
  }

  // --- talking to the server -----------------------------------------------------------------
  async function api(path, { method = "GET", body } = {}) {
    const r = await fetch(API + path, {
      method, headers: body ? { "content-type": "application/json" } : {}, body: body ? JSON.stringify(body) : undefined,
    });
    if (r.status === 204) return {};
    const j = await r.json().catch(() => ({}));
    if (!r.ok) {
      const code = j.error && j.error.code;
      // Known errors in the interface's language; others as a general apology.
      const e = new Error((code && T[state.lang][code]) || t("error"));
      e.status = r.status;
      throw e;
    }
    return j;
  }

  async function ensureConversation() {
    if (state.id) return;
    // A campaign code on the page's address (?c=plakat-bus, from a poster's QR code; the name
    // of the parameter is data-campaign-param) is counted when the city counts it.
    const campaign = (new URLSearchParams(location.search).get(opt.campaignParam || "c") || "").toLowerCase();
    const body = { channel: KIOSK ? "kiosk" : "web", lang: state.lang, ...(/^[a-z0-9-]{1,40}$/.test(campaign) ? { campaign } : {}) };
    const r = await api("/api/v1/conversations", { method: "POST", body });
    // A new conversation: nothing of the last one's votes, events or handoff carries over
    // (its answers are numbered from 1 again).
    state.id = r.id;
    state.voted = [];
    delete state.lastEvent;
    delete state.handoff;
    state.plugins = r.plugins || [];
    save();
    const greeting = opt.greeting && state.lang === "de" ? { ...r.reply, text: opt.greeting } : r.reply;
    replyItems(greeting);
    listen();
  }

  function listen() {
    if (es) es.close();
    if (!state.id) return;
    // After a break, what was missed since the last event seen comes first (the browser sends
    // that number itself when it reconnects; a new EventSource needs it in the address).
    const after = state.lastEvent ? `?last_event_id=${encodeURIComponent(state.lastEvent)}` : "";
    es = new EventSource(`${API}/api/v1/conversations/${state.id}/events${after}`);
    const seen = (e, keep) => { if (e.lastEventId) { state.lastEvent = e.lastEventId; if (keep) save(); } };
    es.addEventListener("facts", (e) => {
      seen(e, false);
      const { reply } = JSON.parse(e.data);
      pending = add({ kind: "bot", text: reply.text, sources: reply.sources }, false);
    });
    es.addEventListener("delta", (e) => {
      seen(e, false);
      const { text } = JSON.parse(e.data);
      if (!pending) return;
      const span = pending.querySelector(".text");
      // The first verified sentence replaces the facts; later ones are appended.
      if (!pending.dataset.streaming) { pending.dataset.streaming = "1"; span.textContent = text; } else span.textContent += " " + text;
    });
    es.addEventListener("reply", (e) => seen(e, true) /* the POST's answer is final and renders it */);
    es.addEventListener("message", (e) => seen(e, true));
    es.addEventListener("staff", (e) => { seen(e, true); touch(); const d = JSON.parse(e.data); staffTyping(false); if (newStaffLine(d.line)) add({ kind: "staff", name: d.name, text: d.text }); });
    es.addEventListener("typing", (e) => { seen(e, false); staffTyping(JSON.parse(e.data).typing); });
    es.addEventListener("handoff", (e) => { seen(e, true); handoffStatus(JSON.parse(e.data)); });
    es.onerror = () => { if (es && es.readyState === EventSource.CLOSED) setTimeout(listen, 3000); };
  }

  function staffTyping(on) {
    busy.textContent = on ? `${t("staff")} ${t("staffTyping")}` : t("searching");
    busy.hidden = !on;
  }

  const message = (text) => ({ text, plain_language: !!state.plain, ...(state.langChosen ? { lang: state.lang } : {}) });

  let sending = false;
  async function send(text) {
    text = String(text || "").trim();
    if (!text || sending) return;
    sending = true;
    input.value = "";
    touch();
    try {
      // A reloaded page draws the conversation's lines first; what is typed meanwhile follows
      // them, on the screen and on the server.
      await resuming;
      await ensureConversation();
      add({ kind: "user", text });
      busy.textContent = t("searching");
      busy.hidden = false;
      let r;
      try {
        r = await api(`/api/v1/conversations/${state.id}/messages`, { method: "POST", body: message(text) });
      } catch (e) {
        if (e.status !== 404) throw e;
        // The server forgot the conversation: start a new one and ask again.
        state.id = null;
        await ensureConversation();
        r = await api(`/api/v1/conversations/${state.id}/messages`, { method: "POST", body: message(text) });
      }
      if (pending) { pending.remove(); pending = null; }
      if (r.reply) replyItems(r.reply, r.turn);
    } catch (e) {
      add({ kind: "status", text: e.message || t("offline") }, false);
    } finally {
      busy.hidden = true;
      sending = false;
      input.focus();
    }
  }

  function switchLang(lang) {
    if (state.lang === lang) return;
    state.lang = lang;
    // From now on the server keeps this language instead of detecting it.
    state.langChosen = true;
    save();
    labels();
  }

  // "Deleted" only when the server says so (or knows the conversation no more); otherwise the
  // conversation stays on screen and the citizen can try again.
  async function deleteConversation() {
    const id = state.id;
    if (id) {
      try { await api(`/api/v1/conversations/${id}`, { method: "DELETE" }); }
      catch (e) { if (e.status !== 404) { add({ kind: "status", text: t("notDeleted") }, false); return; } }
    }
    reset(false);
    add({ kind: "status", text: t("deleted") }, false);
  }

  // A new conversation after one that was answered: the city's survey about conversations
  // (the feedback plug-in's chat_survey), if one runs, is offered once under the new greeting.
  async function newConversation() {
    const answered = !KIOSK && (state.plugins || []).includes("feedback") && state.items.some((i) => i.kind === "bot" && i.vote);
    const lang = state.lang;
    reset(false);
    try { await ensureConversation(); } catch (_) { add({ kind: "status", text: t("offline") }, false); return; }
    if (!answered) return;
    try {
      const r = await fetch(`${API}/p/feedback/chat-survey?lang=${lang}`);
      if (!r.ok) return;
      const sv = await r.json();
      const href = safeUrl(new URL(sv.url, API + "/").href);
      if (href) add({ kind: "status", text: t("surveyInvite"), link: { href, text: sv.title } });
    } catch (_) { /* no survey then */ }
  }

  function reset(greet) {
    if (es) { es.close(); es = null; }
    const lang = KIOSK ? (opt.lang === "en" ? "en" : "de") : state.lang;
    state = { id: null, lang, plain: false, items: [] };
    lastStatus = "";
    staffLines = new Set();
    try { storage.removeItem(STORE); } catch (_) { /* blocked */ }
    log.replaceChildren();
    labels();
    if (greet) ensureConversation().catch(() => add({ kind: "status", text: t("offline") }, false));
  }

  function openPanel(open) {
    panel.hidden = !open;
    launcher.hidden = open;
    launcher.setAttribute("aria-expanded", String(open));
    if (open) {
      ensureConversation().catch(() => add({ kind: "status", text: t("offline") }, false));
      input.focus();
    } else launcher.focus();
    if (!KIOSK) try { sessionStorage.setItem(STORE + ".open", open ? "1" : ""); } catch (_) { /* blocked */ }
  }

  // Kiosk: after inactivity, everything the last visitor saw is cleared. Waiting for a person
  // or talking to one is no inactivity: the place in the queue is kept far longer (and the
  // visitor's own touches or a staff message start the wait again). What the visitor asked
  // the city to do stays with the city: a scheduled callback is not deleted, only the screen.
  function touch() {
    if (!KIOSK) return;
    clearTimeout(idleTimer);
    const withPerson = state.handoff === "queued" || state.handoff === "connected";
    idleTimer = setTimeout(async () => {
      const id = state.id;
      const keep = state.handoff === "callback_scheduled";
      reset(true);
      if (id && !keep) api(`/api/v1/conversations/${id}`, { method: "DELETE" }).catch(() => {});
    }, withPerson ? Math.max(IDLE * 5, 600000) : IDLE);
  }
  if (KIOSK) ["pointerdown", "keydown", "touchstart"].forEach((e) => root.addEventListener(e, touch, { passive: true }));

  function mount() {
    document.body.append(host);
    labels();
    if (state.id) resuming = resume();
    if (KIOSK) { openPanel(true); touch(); } else if (sessionStorage.getItem(STORE + ".open") === "1") openPanel(true);
  }
  if (document.body) mount(); else document.addEventListener("DOMContentLoaded", mount);

  // A form of its own in place of the script tag (the rating, the suggestion box, a survey): a
  // custom element reset as the chat's host is, its shadow root with the forms' common style
  // and `css`, and a text-only element maker. Returns the element, its root, the maker and an
  // id prefix.
  function inPlace(tag, css) {
    const el = (name, attrs = {}, text) => {
      const e = document.createElement(name);
      for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
      if (text !== undefined) e.textContent = text;
      return e;
    };
    const host = document.createElement(tag);
    host.style.setProperty("all", "initial", "important");
    host.style.setProperty("display", "block", "important");
    const root = host.attachShadow({ mode: "open" });
    root.append(el("style", {}, `:host{all:initial;display:block}
form{font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;color:#1a1a1a;display:grid;gap:8px}
legend{font-weight:600;padding:0;margin-bottom:4px}
button{font:inherit;background:${COLOR};color:#fff;border:0;border-radius:4px;min-height:44px;padding:0 16px;cursor:pointer;justify-self:start}
:focus-visible{outline:3px solid #f0a000;outline-offset:2px}
${css}`));
    script.after(host);
    return { host, root, el, id: `${tag}-${Math.random().toString(36).slice(2, 8)}` };
  }

  // A service's rating on a city page: one to five stars (native radio buttons, so keyboard and
  // screen readers work as with any form), an optional comment, one submission per page view.
  function rating() {
    const en = opt.lang === "en";
    const R = en
      ? { legend: "How satisfied are you with this service?", star: (n) => `${n} ${n === 1 ? "star" : "stars"}`, low: "very dissatisfied", high: "very satisfied", comment: "Comment (optional, please no personal data)", send: "Send rating", thanks: "Thank you for your rating.", pick: "Please choose from one to five stars.", error: "Sorry, that did not work. Please try again." }
      : { legend: "Wie zufrieden sind Sie mit dieser Leistung?", star: (n) => `${n} ${n === 1 ? "Stern" : "Sterne"}`, low: "sehr unzufrieden", high: "sehr zufrieden", comment: "Anmerkung (freiwillig, bitte ohne persönliche Daten)", send: "Bewertung senden", thanks: "Danke für Ihre Bewertung.", pick: "Bitte wählen Sie einen bis fünf Sterne.", error: "Das hat leider nicht geklappt. Bitte versuchen Sie es noch einmal." };
    const { root, el, id } = inPlace("lotse-rating", `form{max-width:32em}
fieldset{border:0;padding:0;margin:0}
.stars{display:flex;gap:4px}
input[type=radio]{position:absolute;opacity:0;width:1px;height:1px}
label.star{font-size:32px;line-height:1;color:#767676;cursor:pointer;padding:4px;min-width:44px;min-height:44px;text-align:center}
label.star.on{color:${COLOR}}
input:focus-visible+label{outline:3px solid #f0a000;outline-offset:2px}
.scale{display:flex;justify-content:space-between;font-size:.875em;color:#4a4a4a;max-width:284px}
textarea{font:inherit;border:1px solid #767676;border-radius:4px;padding:6px}
.sr{position:absolute;width:1px;height:1px;overflow:hidden;clip:rect(0 0 0 0);white-space:nowrap}`);
    const form = el("form", { novalidate: "" });
    const set = el("fieldset");
    set.append(el("legend", {}, R.legend));
    const stars = el("div", { class: "stars" });
    const labels = [];
    for (let n = 1; n <= 5; n++) {
      const input = el("input", { type: "radio", name: "stars", value: String(n), id: `${id}-${n}` });
      const label = el("label", { for: `${id}-${n}`, class: "star" });
      label.append(el("span", { "aria-hidden": "true" }, "★"), el("span", { class: "sr" }, R.star(n) + (n === 1 ? `, ${R.low}` : n === 5 ? `, ${R.high}` : "")));
      input.addEventListener("change", () => { labels.forEach((l, i) => l.classList.toggle("on", i < n)); status.textContent = ""; });
      labels.push(label);
      stars.append(input, label);
    }
    const scale = el("div", { class: "scale", "aria-hidden": "true" });
    scale.append(el("span", {}, R.low), el("span", {}, R.high));
    set.append(stars, scale);
    const label = el("label", { for: `${id}-c` }, R.comment);
    const comment = el("textarea", { id: `${id}-c`, rows: "2", maxlength: "500" });
    const send = el("button", { type: "submit" }, R.send);
    const status = el("p", { role: "status" });
    form.append(set, label, comment, send, status);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const chosen = form.querySelector("input[name=stars]:checked");
      if (!chosen) { status.textContent = R.pick; form.querySelector("input[name=stars]").focus(); return; }
      send.disabled = true;
      try {
        const res = await fetch(`${API}/p/feedback/rating`, {
          method: "POST", headers: { "content-type": "application/json" },
          body: JSON.stringify({ service: opt.feedback, stars: Number(chosen.value), comment: comment.value.trim() || null, lang: en ? "en" : "de" }),
        });
        if (!res.ok) throw new Error(String(res.status));
        // The live region stays (a new one may not be announced); the form around it goes,
        // and the focus moves to the thanks (the button it was on is gone).
        for (const e of [set, label, comment, send]) e.remove();
        status.textContent = R.thanks;
        status.setAttribute("tabindex", "-1");
        status.focus();
      } catch (_) {
        status.textContent = R.error;
        send.disabled = false;
      }
    });
    root.append(form);
  }

  // The suggestion box: a topic, the suggestion, and an e-mail address for questions back only
  // with consent. Errors are announced in the live region and the field concerned gets focus.
  function suggestionBox() {
    const en = opt.lang === "en";
    const S = en
      ? { legend: "Your suggestion for the city administration", topic: "Topic", topics: { digital: "Online services", service: "Citizen services", city: "Life in the city", other: "Something else" }, text: "Your suggestion (please no personal data)", email: "E-mail address for questions (optional)", consent: "The city may write to me at this address about my suggestion. The address is used for nothing else and deleted afterwards.", send: "Send suggestion", thanks: "Thank you. Your suggestion has been received.", empty: "Please describe your suggestion.", consentRequired: "Please confirm your consent, or leave the address empty.", invalid: "Please check the e-mail address.", error: "Sorry, that did not work. Please try again." }
      : { legend: "Ihr Vorschlag an die Stadtverwaltung", topic: "Thema", topics: { digital: "Online-Angebote", service: "Bürgerservice", city: "Leben in der Stadt", other: "Etwas anderes" }, text: "Ihr Vorschlag (bitte ohne persönliche Daten)", email: "E-Mail-Adresse für Rückfragen (freiwillig)", consent: "Die Stadt darf mich unter dieser Adresse zu meinem Vorschlag anschreiben. Die Adresse wird für nichts anderes verwendet und danach gelöscht.", send: "Vorschlag senden", thanks: "Danke. Ihr Vorschlag ist eingegangen.", empty: "Bitte beschreiben Sie Ihren Vorschlag.", consentRequired: "Bitte bestätigen Sie Ihr Einverständnis oder lassen Sie die Adresse leer.", invalid: "Bitte prüfen Sie die E-Mail-Adresse.", error: "Das hat leider nicht geklappt. Bitte versuchen Sie es noch einmal." };
    const { root, el, id } = inPlace("lotse-suggestions", `form{max-width:36em}
fieldset{border:0;padding:0;margin:0;display:grid;gap:8px}
select,textarea,input[type=email]{font:inherit;border:1px solid #767676;border-radius:4px;padding:6px;min-height:44px}
.check{display:flex;gap:8px;align-items:flex-start}
.check input{width:24px;height:24px;margin-top:2px}`);
    const form = el("form", { novalidate: "" });
    const set = el("fieldset");
    set.append(el("legend", {}, S.legend));
    const topic = el("select", { id: `${id}-t` });
    for (const [k, v] of Object.entries(S.topics)) topic.append(el("option", { value: k }, v));
    const text = el("textarea", { id: `${id}-x`, rows: "5", maxlength: "2000", required: "" });
    const email = el("input", { type: "email", id: `${id}-e`, autocomplete: "email" });
    const consent = el("input", { type: "checkbox", id: `${id}-c` });
    const check = el("div", { class: "check" });
    check.append(consent, el("label", { for: `${id}-c` }, S.consent));
    set.append(el("label", { for: `${id}-t` }, S.topic), topic, el("label", { for: `${id}-x` }, S.text), text,
      el("label", { for: `${id}-e` }, S.email), email, check);
    const send = el("button", { type: "submit" }, S.send);
    const status = el("p", { role: "status" });
    form.append(set, send, status);
    status.id = `${id}-m`;
    const fail = (message, field) => {
      status.textContent = message;
      if (field) { field.setAttribute("aria-invalid", "true"); field.setAttribute("aria-describedby", status.id); field.focus(); }
    };
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      for (const f of [text, email, consent]) { f.removeAttribute("aria-invalid"); f.removeAttribute("aria-describedby"); }
      const address = email.value.trim();
      if (!text.value.trim()) return fail(S.empty, text);
      if (address && !consent.checked) return fail(S.consentRequired, consent);
      send.disabled = true;
      try {
        const res = await fetch(`${API}/p/feedback/suggestions`, {
          method: "POST", headers: { "content-type": "application/json" },
          body: JSON.stringify({ category: topic.value, text: text.value, email: address || null, consent: consent.checked }),
        });
        if (!res.ok) {
          const code = ((await res.json().catch(() => ({}))).error || {}).code;
          send.disabled = false;
          return code === "invalid_contact" ? fail(S.invalid, email) : code === "invalid_text" ? fail(S.empty, text) : fail(S.error);
        }
        set.remove();
        send.remove();
        status.textContent = S.thanks;
        status.setAttribute("tabindex", "-1");
        status.focus();
      } catch (_) {
        send.disabled = false;
        fail(S.error);
      }
    });
    root.append(form);
  }

  // A survey: one fieldset with its legend per question (a Likert matrix one per statement),
  // native radio buttons, checkboxes and text fields; display conditions re-checked on every
  // change; a missing answer named in the live region, at the question, and focused. One
  // answer per device (a random token kept in this browser); on the kiosk every visitor anew.
  async function survey() {
    const lang = ["en", "ls"].includes(opt.lang) ? opt.lang : "de";
    const channel = ["web", "link", "kiosk", "chat"].includes(opt.channel) ? opt.channel : "web";
    const kiosk = channel === "kiosk";
    const de = { required: "Pflichtfrage", send: "Antworten senden", thanks: "Danke für Ihre Teilnahme.", again: "Neue Teilnahme", done: "Sie haben an dieser Umfrage schon teilgenommen. Danke!", missing: "Bitte beantworten Sie diese Frage.", missingAll: (n) => `Bitte beantworten Sie noch ${n === 1 ? "eine Frage" : n + " Fragen"}.`, wrong: "Diese Antwort passt nicht zur Frage.", none: "Diese Umfrage gibt es nicht.", not_started: "Diese Umfrage hat noch nicht begonnen.", ended: "Diese Umfrage ist beendet.", full: "Diese Umfrage hat genug Antworten. Danke!", error: "Das hat leider nicht geklappt. Bitte versuchen Sie es noch einmal.", yes: "Ja", no: "Nein", low: "sehr schlecht", high: "sehr gut", npsLow: "gar nicht wahrscheinlich", npsHigh: "sehr wahrscheinlich", likert: ["stimme voll zu", "stimme eher zu", "teils, teils", "stimme eher nicht zu", "stimme gar nicht zu"] };
    const U = lang === "en"
      ? { required: "Required", send: "Send answers", thanks: "Thank you for taking part.", again: "New participant", done: "You have taken part in this survey already. Thank you!", missing: "Please answer this question.", missingAll: (n) => `Please answer ${n === 1 ? "one more question" : n + " more questions"}.`, wrong: "This answer does not fit the question.", none: "There is no such survey.", not_started: "This survey has not started yet.", ended: "This survey has ended.", full: "This survey has enough answers. Thank you!", error: "Sorry, that did not work. Please try again.", yes: "Yes", no: "No", low: "very poor", high: "very good", npsLow: "not at all likely", npsHigh: "extremely likely", likert: ["agree fully", "rather agree", "partly", "rather disagree", "disagree fully"] }
      : lang === "ls" ? { ...de, required: "Bitte antworten", thanks: "Danke für Ihre Antworten.", missing: "Bitte antworten Sie hier.", ended: "Die Umfrage ist vorbei.", full: "Wir haben genug Antworten. Danke!" } : de;
    const text = (t) => (t && ((lang !== "de" && t[lang] && t[lang].trim()) || t.de)) || "";
    const { host, root, el, id } = inPlace("lotse-survey", `form{max-width:40em}
fieldset{border:1px solid #d0d0d0;border-radius:6px;padding:12px;margin:0;display:grid;gap:6px;min-width:0}
fieldset fieldset{border:0;padding:0}
legend{padding:0 4px}
.opt{display:flex;gap:8px;align-items:center;min-height:44px}
.opt input{width:24px;height:24px;margin:0;flex:none}
.scale{display:flex;flex-wrap:wrap;gap:4px 12px}
.ends{display:flex;justify-content:space-between;gap:8px;font-size:.875em;color:#4a4a4a}
input[type=text],textarea{font:inherit;border:1px solid #767676;border-radius:4px;padding:6px;min-height:44px;width:100%;box-sizing:border-box}
.req{font-weight:400;color:#4a4a4a;font-size:.875em}
.help{margin:0;color:#4a4a4a;font-size:.875em}
.err{margin:0;color:#b00020;font-weight:600}
h2{font-size:1.25em;margin:8px 0 0}
[hidden]{display:none!important}`);
    const status = el("p", { role: "status" });
    const htmlLang = lang === "en" ? "en" : "de";
    const show = (message) => { root.querySelector("form")?.remove(); const f = el("form", { lang: htmlLang }); f.append(status); root.append(f); status.textContent = message; };
    const DONE = `lotse.survey.${API}.${opt.survey}`;
    let res;
    try { res = await fetch(`${API}/p/feedback/surveys/${encodeURIComponent(opt.survey)}`); } catch (_) { return show(U.error); }
    if (!res.ok) return show(res.status === 404 ? U.none : U.error);
    const { survey: S, open } = await res.json();
    if (open !== "open") return show(U[open] || U.ended);
    if (!kiosk && localStorage.getItem(DONE)) return show(U.done);
    const form = el("form", { novalidate: "", lang: htmlLang });
    if (S.intro) form.append(el("p", {}, text(S.intro)));
    // On the kiosk, a visitor who walks away leaves nothing for the next: after inactivity the
    // form starts afresh.
    if (kiosk) {
      const IDLE_MS = Math.max(5, Number(opt.idle || 120)) * 1000;
      let idle;
      const touch = () => { clearTimeout(idle); idle = setTimeout(() => { if (host.isConnected) { host.remove(); survey(); } }, IDLE_MS); };
      for (const e of ["pointerdown", "keydown", "input"]) form.addEventListener(e, touch);
      touch();
    }
    const blocks = [];
    S.sections.forEach((sec, si) => {
      if (sec.title) form.append(el("h2", {}, text(sec.title)));
      sec.questions.forEach((q, qi) => {
        const qid = `${id}-${si}-${qi}`;
        const set = el("fieldset", { "data-q": q.id });
        const legend = el("legend", { id: `${qid}-l` }, text(q.text));
        if (q.required) legend.append(" ", el("span", { class: "req" }, `(${U.required})`));
        set.append(legend);
        const described = [];
        if (q.help) { set.append(el("p", { class: "help", id: `${qid}-h` }, text(q.help))); described.push(`${qid}-h`); }
        const err = el("p", { class: "err", id: `${qid}-e`, hidden: "" });
        const choice = (type, name, value, label, i) => {
          const box = el("div", { class: "opt" });
          const input = el("input", { type, name, value, id: `${qid}-${i}` });
          box.append(input, el("label", { for: `${qid}-${i}` }, label));
          return box;
        };
        const scale = (name, from, to, low, high) => {
          const row = el("div", { class: "scale" });
          for (let n = from; n <= to; n++) row.append(choice("radio", name, String(n), String(n) + (n === from ? ` (${low})` : n === to ? ` (${high})` : ""), `${name}-${n}`));
          return row;
        };
        if (q.kind === "single" || q.kind === "multiple") q.options.forEach((o, i) => set.append(choice(q.kind === "single" ? "radio" : "checkbox", qid, o.id, text(o.label), i)));
        else if (q.kind === "yes_no") { set.append(choice("radio", qid, "yes", U.yes, "y"), choice("radio", qid, "no", U.no, "n")); }
        else if (q.kind === "rating") set.append(scale(qid, 1, 5, U.low, U.high));
        else if (q.kind === "nps") set.append(scale(qid, 0, 10, U.npsLow, U.npsHigh));
        else if (q.kind === "likert") q.rows.forEach((r, ri) => {
          const sub = el("fieldset", { "data-row": r.id });
          sub.append(el("legend", {}, text(r.label)));
          U.likert.forEach((l, li) => sub.append(choice("radio", `${qid}-r${ri}`, String(li + 1), l, `r${ri}-${li}`)));
          set.append(sub);
        });
        else {
          const long = q.kind === "long_text";
          set.append(el(long ? "textarea" : "input", { ...(long ? { rows: "4" } : { type: "text" }), id: `${qid}-t`, name: qid, maxlength: long ? "2000" : "200", "aria-labelledby": `${qid}-l` }));
        }
        set.append(err);
        if (described.length) set.setAttribute("aria-describedby", described.join(" "));
        blocks.push({ q, set, err, name: qid });
        form.append(set);
      });
    });
    const value = (b) => {
      const { q, set, name } = b;
      const checked = [...set.querySelectorAll(`input[name="${name}"]:checked`)].map((i) => i.value);
      if (q.kind === "single") return checked[0];
      if (q.kind === "multiple") return checked.length ? checked : undefined;
      if (q.kind === "yes_no") return checked.length ? checked[0] === "yes" : undefined;
      if (q.kind === "rating" || q.kind === "nps") return checked.length ? Number(checked[0]) : undefined;
      if (q.kind === "likert") {
        const m = {};
        set.querySelectorAll("fieldset[data-row]").forEach((sub) => { const c = sub.querySelector("input:checked"); if (c) m[sub.dataset.row] = Number(c.value); });
        return Object.keys(m).length ? m : undefined;
      }
      const t = set.querySelector("input,textarea").value.trim();
      return t || undefined;
    };
    // A question is shown when the one its condition names is shown and answered with one of
    // the options named (one level, so one pass in order suffices).
    const answers = () => {
      const a = {};
      for (const b of blocks) {
        const c = b.q.show_if;
        const v = c && a[c.question];
        const on = !c || (v !== undefined && (Array.isArray(v) ? v : [typeof v === "boolean" ? (v ? "yes" : "no") : v]).some((x) => c.any_of.includes(x)));
        b.set.hidden = !on;
        if (!on) continue;
        const v2 = value(b);
        if (v2 !== undefined) a[b.q.id] = v2;
      }
      return a;
    };
    const mark = (b, message) => {
      b.err.hidden = !message;
      b.err.textContent = message || "";
      const ids = (b.set.getAttribute("aria-describedby") || "").split(" ").filter((x) => x && x !== b.err.id);
      if (message) ids.push(b.err.id);
      if (ids.length) b.set.setAttribute("aria-describedby", ids.join(" ")); else b.set.removeAttribute("aria-describedby");
    };
    // An answer given clears its question's error.
    form.addEventListener("change", () => { const a = answers(); blocks.forEach((b) => { if (!b.err.hidden && a[b.q.id] !== undefined) mark(b, ""); }); });
    answers();
    const send = el("button", { type: "submit" }, U.send);
    form.append(send, status);
    form.addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const a = answers();
      const missing = blocks.filter((b) => !b.set.hidden && b.q.required && (a[b.q.id] === undefined || (b.q.kind === "likert" && Object.keys(a[b.q.id]).length < b.q.rows.length)));
      blocks.forEach((b) => mark(b, missing.includes(b) ? U.missing : ""));
      const fail = (message, b) => { status.textContent = message; if (b) (b.set.querySelector("input,textarea") || b.set).focus(); };
      if (missing.length) return fail(U.missingAll(missing.length), missing[0]);
      let token = kiosk ? null : localStorage.getItem(`lotse.device.${API}`);
      if (!token) {
        token = [...crypto.getRandomValues(new Uint8Array(16))].map((x) => x.toString(16).padStart(2, "0")).join("");
        if (!kiosk) localStorage.setItem(`lotse.device.${API}`, token);
      }
      send.disabled = true;
      try {
        const r = await fetch(`${API}/p/feedback/surveys/${encodeURIComponent(opt.survey)}/responses`, {
          method: "POST", headers: { "content-type": "application/json" },
          body: JSON.stringify({ token, lang, channel, answers: a }),
        });
        send.disabled = false;
        if (r.status === 409) { localStorage.setItem(DONE, "1"); return show(U.done); }
        if (r.status === 410) return show(U[((await r.json().catch(() => ({}))).error || {}).open] || U.ended);
        if (!r.ok) {
          const e = (await r.json().catch(() => ({}))).error || {};
          const b = blocks.find((x) => x.q.id === e.question);
          if (b) mark(b, U.wrong);
          return fail(b ? U.wrong : U.error, b);
        }
        if (!kiosk) localStorage.setItem(DONE, "1");
        for (const e of [...form.children]) if (e !== status) e.remove();
        status.textContent = U.thanks;
        status.setAttribute("tabindex", "-1");
        status.focus();
        if (kiosk) {
          const again = el("button", { type: "button" }, U.again);
          again.addEventListener("click", () => { host.remove(); survey(); });
          form.append(again);
        }
      } catch (_) {
        send.disabled = false;
        fail(U.error);
      }
    });
    root.append(form);
  }
})();
