// The Lotse staff console. Plain script, no framework: every text from citizens, staff or the
// knowledge goes into the page as text (textContent), never as HTML.
"use strict";
(() => {
  const $ = (sel) => document.querySelector(sel);
  let me = null;
  let openId = null;
  let lastWaiting = 0;
  let clockOffset = 0;
  let queueItems = [];

  const api = async (path, options = {}) => {
    const headers = { "X-CSRF-Token": me ? me.csrf : "" };
    if (options.body !== undefined) headers["Content-Type"] = "application/json";
    const res = await fetch(path, {
      method: options.method || "GET",
      headers,
      body: options.body === undefined ? undefined : JSON.stringify(options.body),
      credentials: "same-origin",
    });
    if (res.status === 401) { location.href = "/staff/login"; throw new Error("login"); }
    const json = res.status === 204 ? {} : await res.json().catch(() => ({}));
    if (!res.ok) throw new Error((json.error && json.error.message) || res.statusText);
    return json;
  };

  const el = (tag, attrs = {}, text) => {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
    if (text !== undefined) e.textContent = text;
    return e;
  };

  const announce = (text) => { $("#announce").textContent = text; };
  const minutes = (s) => s < 60 ? `${s} s` : `${Math.floor(s / 60)} min`;
  const time = (ms) => new Date(ms).toLocaleString("de-DE", { dateStyle: "short", timeStyle: "short" });
  const STATES = { waiting: "wartet", claimed: "übernommen", active: "im Gespräch", closed: "beendet", abandoned: "verlassen" };
  const AUTHORS = { citizen: "Bürger/in", bot: "Assistent", staff: "Mitarbeitende", system: "System" };
  const CHANNELS = { web: "Web", app: "App", kiosk: "Kiosk", phone: "Telefon" };

  const beep = () => {
    if (!$("#sound").checked) return;
    try {
      const ctx = new AudioContext();
      const o = ctx.createOscillator();
      o.frequency.value = 880;
      o.connect(ctx.destination);
      o.start();
      o.stop(ctx.currentTime + 0.15);
    } catch (_) { /* no audio */ }
  };

  function showTab(name) {
    document.querySelectorAll(".tab").forEach((b) => {
      if (b.dataset.tab === name) b.setAttribute("aria-current", "page"); else b.removeAttribute("aria-current");
    });
    document.querySelectorAll("[data-panel]").forEach((p) => {
      p.hidden = p.dataset.panel !== name || (p.id === "conversation" && !openId) || (p.id === "queue" && !!openId);
    });
    if (name === "admin") loadAdmin();
    if (name === "inbox") loadInbox();
    if (name === "callbacks") loadCallbacks();
    if (name === "surveys") loadSurveys();
  }

  function renderQueue() {
    const body = $("#queue tbody");
    body.replaceChildren();
    const now = Date.now() + clockOffset;
    for (const h of queueItems) {
      const tr = el("tr", { "data-id": h.id, "data-state": h.state });
      const wait = Math.max(0, Math.round(((h.state === "waiting" ? now : now) - h.created_ms) / 1000));
      tr.append(el("td", {}, minutes(wait)), el("td", {}, h.team_name), el("td", {}, h.lang), el("td", {}, CHANNELS[h.channel] || h.channel),
        el("td", {}, h.service || "–"), el("td", {}, STATES[h.state] + (h.claimed_by ? ` (${h.claimed_by})` : "")));
      const td = el("td");
      if (h.state === "waiting") {
        const b = el("button", { type: "button", "data-action": "claim" }, "Übernehmen");
        b.addEventListener("click", () => claim(h.id));
        td.append(b);
      } else if (h.mine) {
        const b = el("button", { type: "button", "data-action": "open" }, "Öffnen");
        b.addEventListener("click", () => openConversation(h.id));
        td.append(b);
      }
      tr.append(td);
      body.append(tr);
    }
    $("#queue-empty").hidden = queueItems.length > 0;
    const waiting = queueItems.filter((h) => h.state === "waiting").length;
    $("#queue-count").textContent = String(waiting);
    document.title = waiting > 0 ? `(${waiting}) Warteschlange – Lotse` : "Warteschlange – Lotse";
    if (waiting > lastWaiting) { beep(); announce(`Neue Anfrage. ${waiting} warten.`); }
    lastWaiting = waiting;
  }

  let queueTimer = null;
  function loadQueueSoon() {
    if (queueTimer) return;
    queueTimer = setTimeout(() => { queueTimer = null; loadQueue(); }, 150);
  }

  async function loadQueue() {
    const q = await api("/staff/api/queue");
    clockOffset = q.now_ms - Date.now();
    queueItems = q.items;
    renderQueue();
  }

  async function claim(id) {
    try {
      await api(`/staff/api/handoffs/${encodeURIComponent(id)}/claim`, { method: "POST", body: {} });
      await openConversation(id);
    } catch (e) {
      announce(`Übernehmen nicht möglich: ${e.message}`);
      loadQueue();
    }
  }

  function line(m) {
    const li = el("li", { class: m.author, "data-author": m.author });
    li.append(el("span", { class: "who" }, m.author === "staff" && m.staff ? m.staff : AUTHORS[m.author] || m.author));
    li.append(el("time", { datetime: new Date(m.at_ms).toISOString() }, time(m.at_ms)));
    li.append(el("div", { class: "text" }, m.text));
    if (m.sources && m.sources.length) {
      const p = el("p", { class: "sources" }, "Quellen: ");
      m.sources.forEach((s, i) => {
        if (i) p.append(", ");
        const a = el("a", { href: s.url, target: "_blank", rel: "noopener noreferrer" }, s.title);
        p.append(a);
      });
      li.append(p);
    }
    return li;
  }

  async function openConversation(id) {
    openId = id;
    const d = await api(`/staff/api/handoffs/${encodeURIComponent(id)}`);
    const h = d.handoff;
    $("#conv-meta").textContent = `${d.team_name} · ${h.lang} · ${CHANNELS[h.channel] || h.channel} · ${h.service || "ohne erkanntes Thema"} · ${STATES[h.state]}`;
    const list = $("#transcript");
    list.replaceChildren(...d.transcript.map(line));
    list.scrollTop = list.scrollHeight;
    showTab("queue");
    $("#reply-text").focus();
    loadSuggestions(id);
  }

  async function loadSuggestions(id) {
    const box = $("#suggestions");
    box.replaceChildren();
    const s = await api(`/staff/api/handoffs/${encodeURIComponent(id)}/suggestions`).catch(() => ({ suggestions: [] }));
    for (const sg of s.suggestions) {
      const div = el("div", { class: "suggestion" });
      div.append(el("p", {}, `Vorschlag zu „${sg.question}“:`), el("p", {}, sg.text));
      const b = el("button", { type: "button" }, "In die Antwort übernehmen");
      b.addEventListener("click", () => { $("#reply-text").value = sg.text; $("#reply-text").focus(); });
      div.append(b);
      box.append(div);
    }
  }

  function closeConversation() {
    openId = null;
    showTab("queue");
    loadQueue();
  }

  async function action(path, body = {}) {
    if (!openId) return;
    try {
      await api(`/staff/api/handoffs/${encodeURIComponent(openId)}/${path}`, { method: "POST", body });
      announce("Erledigt.");
      closeConversation();
    } catch (e) { announce(e.message); }
  }

  let typingSent = false;
  let typingTimer = null;
  function typed() {
    if (!openId) return;
    if (!typingSent) {
      typingSent = true;
      api(`/staff/api/handoffs/${encodeURIComponent(openId)}/typing`, { method: "POST", body: { typing: true } }).catch(() => {});
    }
    clearTimeout(typingTimer);
    typingTimer = setTimeout(() => {
      typingSent = false;
      if (openId) api(`/staff/api/handoffs/${encodeURIComponent(openId)}/typing`, { method: "POST", body: { typing: false } }).catch(() => {});
    }, 3000);
  }

  async function loadCallbacks() {
    const c = await api("/staff/api/callbacks");
    const body = $("#callbacks tbody");
    body.replaceChildren();
    for (const cb of c.items) {
      const tr = el("tr", { "data-id": cb.id, "data-state": cb.state });
      const slot = `${time(cb.slot_start_ms)} – ${new Date(cb.slot_end_ms).toLocaleTimeString("de-DE", { timeStyle: "short" })}${cb.due ? " (fällig)" : ""}`;
      const contact = `${cb.contact_kind === "phone" ? "Telefon" : "E-Mail"}: ${cb.contact}${cb.name ? ` (${cb.name})` : ""}`;
      tr.append(el("td", {}, slot), el("td", {}, cb.team_name), el("td", {}, cb.topic), el("td", {}, contact),
        el("td", {}, cb.state === "open" ? "offen" : `geplant (${cb.assigned_to})`));
      const td = el("td");
      if (cb.state === "open") {
        const b = el("button", { type: "button", "data-action": "schedule" }, "Übernehmen");
        b.addEventListener("click", () => api(`/staff/api/callbacks/${cb.id}/schedule`, { method: "POST", body: {} }).then(loadCallbacks));
        td.append(b);
      }
      const done = el("button", { type: "button", "data-action": "done" }, "Erledigt");
      done.addEventListener("click", () => api(`/staff/api/callbacks/${cb.id}/done`, { method: "POST", body: {} }).then(loadCallbacks));
      td.append(done);
      tr.append(td);
      body.append(tr);
    }
    $("#callbacks-empty").hidden = c.items.length > 0;
    $("#callback-count").textContent = String(c.items.length);
  }

  async function loadAdmin() {
    const [s, f] = await Promise.all([api("/staff/api/admin/settings"), api("/staff/api/admin/figures?days=7")]);
    $("#schedule-text").value = s.schedule_toml;
    $("#retention-days").value = s.retention_days;
    $("#teams").replaceChildren(...s.teams.map((t) => el("li", {}, `${t.name}: ${t.open ? "jetzt erreichbar" : "nicht erreichbar"}${t.next_opening ? `, nächstes Zeitfenster ${t.next_opening}` : ""}`)));
    const rows = [
      ["Angefragt", f.queued], ["Wartet jetzt", f.waiting_now], ["Bearbeitet", f.handled], ["Verlassen", f.abandoned],
      ["An den Assistenten zurück", f.handed_back],
      ["Wartezeit (Median)", f.wait_median_s == null ? "–" : minutes(f.wait_median_s)],
      ["Wartezeit (90 %)", f.wait_p90_s == null ? "–" : minutes(f.wait_p90_s)],
      ["Rückrufe offen / geplant / erledigt", `${f.callbacks_open} / ${f.callbacks_scheduled} / ${f.callbacks_done}`],
    ];
    $("#figures").replaceChildren(...rows.flatMap(([k, v]) => [el("dt", {}, k), el("dd", {}, String(v))]));
    // A plug-in that fails to answer leaves the rest of the page as it is.
    await Promise.allSettled([loadFigures(), loadFeedback(), loadSuggestionBox(), loadPlugins()]);
    const [a, t] = await Promise.all([api("/staff/api/admin/accounts"), api("/staff/api/admin/audit")]);
    $("#accounts").replaceChildren(...a.accounts.map((acc) => {
      const tr = el("tr");
      tr.append(el("td", {}, acc.name), el("td", {}, acc.display_name), el("td", {}, { admin: "Verwaltung", editor: "Redaktion" }[acc.role] || "Mitarbeitende"),
        el("td", {}, acc.disabled_ms ? `gesperrt seit ${time(acc.disabled_ms)}` : "aktiv"));
      const td = el("td");
      if (acc.name !== me.name) {
        const verb = acc.disabled_ms ? "enable" : "disable";
        const b = el("button", { type: "button" }, acc.disabled_ms ? `${acc.name} entsperren` : `${acc.name} sperren`);
        b.addEventListener("click", async () => {
          try { await api(`/staff/api/admin/accounts/${encodeURIComponent(acc.name)}/${verb}`, { method: "POST", body: {} }); $("#admin-status").textContent = b.textContent + ": erledigt."; loadAdmin(); }
          catch (e) { $("#admin-status").textContent = e.message; }
        });
        td.append(b);
      }
      tr.append(td);
      return tr;
    }));
    $("#audit").replaceChildren(...t.audit.slice(0, 100).map((l) => {
      const tr = el("tr");
      tr.append(el("td", {}, time(l.at_ms)), el("td", {}, l.actor), el("td", {}, l.action), el("td", {}, l.target));
      return tr;
    }));
  }

  const plugin = (name) => ((me && me.plugins) || []).includes(name);
  const pct = (x) => (x == null ? "–" : `${(x * 100).toFixed(1).replace(".", ",")} %`);
  const row = (head, ...cells) => {
    const tr = el("tr");
    tr.append(el("th", { scope: "row" }, String(head)));
    for (const c of cells) tr.append(el("td", {}, String(c)));
    return tr;
  };

  // The three hours of the day most conversations began in ("10 Uhr: 12, …").
  const busiest = (hours) => hours.map((k, h) => [h, k]).filter(([, k]) => k > 0).sort((a, b) => b[1] - a[1]).slice(0, 3)
    .map(([h, k]) => `${h} Uhr: ${k}`).join(", ") || "–";

  // The figures plug-in: a period (30 days by default) and a channel, beside the period of the
  // same length before it; the trend per day as a chart and as a table; the monthly report.
  const isoDay = (d) => d.toISOString().slice(0, 10);
  const addDays = (day, n) => { const d = new Date(`${day}T12:00:00Z`); d.setUTCDate(d.getUTCDate() + n); return isoDay(d); };
  async function loadFigures() {
    $("#plugin-figures").hidden = !plugin("figures");
    if (!plugin("figures")) return;
    if (!$("#pf-month").value) {
      const d = new Date();
      d.setUTCDate(1);
      d.setUTCMonth(d.getUTCMonth() - 1);
      $("#pf-month").value = d.toISOString().slice(0, 7);
      monthLinks();
    }
    const channel = $("#pf-channel").value;
    const query = (a, b) => [a && `from=${encodeURIComponent(a)}`, b && `to=${encodeURIComponent(b)}`, channel && `channel=${channel}`].filter(Boolean).join("&");
    let f, g, days;
    try {
      // Without dates the server takes the last 30 days of the city's calendar.
      f = await api(`/staff/p/figures/admin/daily?${query($("#pf-from").value, $("#pf-to").value)}`);
      $("#pf-from").value = f.from;
      $("#pf-to").value = f.to;
      days = Math.max(1, Math.round((Date.parse(f.to) - Date.parse(f.from)) / 86400000) + 1);
      g = await api(`/staff/p/figures/admin/daily?${query(addDays(f.from, -days), addDays(f.from, -1))}`);
    } catch (e) { $("#pf-rows").replaceChildren(row("Die Kennzahlen konnten nicht geladen werden", e.message, "")); return; }
    $("#pf-now").textContent = `${time(Date.parse(`${f.from}T12:00:00Z`)).split(",")[0]} bis ${time(Date.parse(`${f.to}T12:00:00Z`)).split(",")[0]}`;
    $("#pf-before").textContent = `${days} Tage davor`;
    const both = (label, fn) => row(label, fn(f), fn(g));
    const n = (k) => (x) => x.totals[k] || 0;
    const d = (k) => (x) => pct(x.derived[k]);
    $("#pf-rows").replaceChildren(
      both("Gespräche", n("conversations")), both("Beantwortete Nachrichten", n("answers")),
      both("davon aus den Daten beantwortet", d("answered_share")), both("davon nachgefragt", d("clarified_share")),
      both("davon nicht beantwortet", d("unanswered_share")),
      both("Selbstbedienung (Gespräche mit Antwort aus den Daten, ohne Übergabe und ohne „hat nicht geholfen“)", d("self_service_rate")),
      both("Übergaben an Mitarbeitende (Anteil der Gespräche)", d("handoff_rate")),
      both("Gespräche am Infoterminal (Kiosk)", (x) => x.rows.filter((r) => r.channel === "kiosk" && r.name === "conversations").reduce((a, r) => a + r.n, 0)),
      both("Gespräche über Kampagnen (Code: Anzahl)", (x) => Object.entries(x.totals).filter(([k]) => k.startsWith("campaign.")).map(([k, v]) => `${k.slice(9)}: ${v}`).join(", ") || "–"),
      both("Gespräche außerhalb der Servicezeiten", n("conversations.outside_hours")),
      both("Übergaben: angefragt / verbunden / verlassen", (x) => `${n("handoff.queued")(x)} / ${n("handoff.connected")(x)} / ${n("handoff.abandoned")(x)}`),
      both("Wartezeit in der Warteschlange (Median)", (x) => x.derived.wait_median_s == null ? "–" : minutes(x.derived.wait_median_s)),
      both("an Mitarbeitende weitergeleitete Nachrichten", n("relayed")),
      both("Zufriedenheit (Anteil „hat geholfen“ der Bewertungen unter Antworten)", d("satisfaction")),
      both("Bewertungen von Leistungen / Vorschläge / Umfrage-Antworten", (x) => `${n("feedback.rating")(x)} / ${n("feedback.suggestion")(x)} / ${n("feedback.survey_response")(x)}`),
      both("Meistgefragte Leistungen (Antworten)", (x) => (x.derived.top_services || []).slice(0, 5).map(([id, k]) => `${id}: ${k}`).join(", ") || "–"),
      both("Stunden mit den meisten Gesprächen", (x) => busiest(x.derived.by_hour || [])));
    // Per day: every day of the period, also those without a count.
    const per = {};
    for (const r of f.rows) if (r.name === "conversations" || r.name === "answers") (per[r.day] ||= { conversations: 0, answers: 0 })[r.name] += r.n;
    const series = [];
    for (let day = f.from; day <= f.to && series.length < 400; day = addDays(day, 1)) series.push([day, (per[day] || {}).conversations || 0, (per[day] || {}).answers || 0]);
    $("#pf-days").replaceChildren(...series.map(([day, c, a]) => row(day, c, a)));
    $("#pf-trend").replaceChildren(trendChart(series));
    $("#pf-csv").setAttribute("href", `/staff/p/figures/admin/daily?format=csv&${query(f.from, f.to)}`);
  }
  // Two lines over the days; the numbers are in the table beside it (the chart is hidden from
  // screen readers). Colours with a 3:1 contrast to white, and a dashed line so that colour is
  // not the only difference.
  function trendChart(series) {
    const NS = "http://www.w3.org/2000/svg";
    const svg = document.createElementNS(NS, "svg");
    const W = 640, H = 180, P = 28;
    svg.setAttribute("viewBox", `0 0 ${W} ${H}`);
    svg.setAttribute("class", "trend");
    svg.setAttribute("aria-hidden", "true");
    const max = Math.max(1, ...series.flatMap(([, c, a]) => [c, a]));
    const x = (i) => P + (series.length < 2 ? 0 : (i * (W - 2 * P)) / (series.length - 1));
    const y = (v) => H - P - (v * (H - 2 * P)) / max;
    const path = (k, color, dash) => {
      const p = document.createElementNS(NS, "polyline");
      p.setAttribute("points", series.map((s, i) => `${x(i).toFixed(1)},${y(s[k]).toFixed(1)}`).join(" "));
      p.setAttribute("fill", "none");
      p.setAttribute("stroke", color);
      p.setAttribute("stroke-width", "2");
      if (dash) p.setAttribute("stroke-dasharray", "6 4");
      return p;
    };
    const text = (t, tx, ty) => { const e = document.createElementNS(NS, "text"); e.setAttribute("x", tx); e.setAttribute("y", ty); e.setAttribute("font-size", "12"); e.textContent = t; return e; };
    const axis = document.createElementNS(NS, "line");
    for (const [k, v] of Object.entries({ x1: P, y1: H - P, x2: W - P, y2: H - P, stroke: "#767676" })) axis.setAttribute(k, v);
    svg.append(axis, path(1, "#004f9f", false), path(2, "#8a1c00", true), text(String(max), 2, P), text("0", 2, H - P),
      text(series.length ? series[0][0] : "", P, H - 6), text(series.length ? series[series.length - 1][0] : "", W - P - 70, H - 6),
      text("— Gespräche", P + 40, 14), text("- - beantwortete Nachrichten", P + 150, 14));
    return svg;
  }
  function monthLinks() {
    const m = $("#pf-month").value;
    $("#pf-report-html").setAttribute("href", `/staff/p/figures/admin/report?month=${encodeURIComponent(m)}`);
    $("#pf-report-csv").setAttribute("href", `/staff/p/figures/admin/report?month=${encodeURIComponent(m)}&format=csv`);
  }

  // The feedback plug-in: votes, reasons, services, comments of the last 30 days.
  const REASONS = { wrong: "falsch", outdated: "veraltet", unclear: "unverständlich", not_sought: "nicht das Gesuchte", other: "anderes" };
  async function loadFeedback() {
    $("#plugin-feedback").hidden = !plugin("feedback");
    if (!plugin("feedback")) return;
    let s;
    try { s = await api("/staff/p/feedback/summary"); }
    catch (e) { $("#fb-votes").textContent = `Die Rückmeldungen konnten nicht geladen werden: ${e.message}`; return; }
    $("#fb-votes").textContent = `hat geholfen: ${s.helpful}, hat nicht geholfen: ${s.not_helpful}`;
    $("#fb-reasons").replaceChildren(...s.reasons.map(([r, k]) => row(REASONS[r] || r, k)));
    $("#fb-services").replaceChildren(...s.services.slice(0, 20).map(([id, up, down]) => row(id, up, down)));
    $("#fb-comments").replaceChildren(...s.comments.map(([at, reason, , sources, text]) => row(time(at), REASONS[reason] || "–", sources.join(", "), text)));
    $("#fb-ratings").replaceChildren(...(s.ratings || []).map(([id, n, mean, by]) => row(id, n, mean.toFixed(1).replace(".", ","), ...by)));
    $("#fb-rating-comments").replaceChildren(...(s.rating_comments || []).map(([at, id, stars, text]) => row(time(at), id, stars, text)));
  }

  // The inbox plug-in: declined questions in groups; staff map a group to a service, mark it as
  // a gap in the knowledge, dismiss it, or open it again.
  const INBOX_SHOWN = 30;
  async function decideGroup(group, decision, service) {
    const body = { questions: group.questions.map((q) => q.id), decision };
    if (service) body.service = service;
    const status = $("#inbox-status-line");
    try {
      const r = await api("/staff/p/inbox/editor/decide", { method: "POST", body });
      const what = { service: "zugeordnet", gap: "als Lücke im Wissen markiert", dismissed: "verworfen", open: "wieder geöffnet" }[decision];
      const n = r.decided === 1 ? "1 Frage" : `${r.decided} Fragen`;
      status.textContent = `${n} ${what}.` + (r.synonym_lines.length ? ` Vorschlag für knowledge/synonyms.toml: ${r.synonym_lines.join("; ")}` : "");
      await loadInbox(false);
      // The group and its buttons are gone: the focus goes to what happened.
      status.focus();
    } catch (e) { status.textContent = `Nicht gespeichert: ${e.message}`; }
  }

  async function loadInbox(clear = true) {
    const state = $("#inbox-status").value;
    if (clear) $("#inbox-status-line").textContent = "";
    let r;
    try { r = await api(`/staff/p/inbox/groups?status=${encodeURIComponent(state)}`); }
    catch (e) { $("#inbox-summary").textContent = `Die Fragen konnten nicht geladen werden: ${e.message}`; return; }
    const shown = r.groups.slice(0, INBOX_SHOWN);
    $("#inbox-summary").textContent = r.questions === 0 ? "Keine Fragen."
      : `${r.questions} ${r.questions === 1 ? "Frage" : "Fragen"} in ${r.groups.length} ${r.groups.length === 1 ? "Gruppe" : "Gruppen"}` + (r.groups.length > shown.length ? `, die ${shown.length} größten angezeigt.` : ".");
    $("#inbox-groups").replaceChildren(...shown.map((g, i) => {
      const li = el("li", { class: "inbox-group" });
      const h = el("h3", { id: `inbox-g${i}` }, `${g.questions.length === 1 ? "1 Frage" : `${g.questions.length} Fragen`}: „${g.questions[0].text}“`);
      li.append(h);
      const list = el("ul");
      for (const q of g.questions.slice(0, 5)) list.append(el("li", {}, `${q.text} (${time(q.at_ms)}, ${CHANNELS[q.channel] || q.channel})`));
      if (g.questions.length > 5) list.append(el("li", {}, `und ${g.questions.length - 5} weitere`));
      li.append(list);
      if (g.service) li.append(el("p", {}, `Zugeordnet: ${g.service[1]}`));
      if (g.synonym_lines.length) {
        li.append(el("p", {}, "Vorschlag für knowledge/synonyms.toml:"));
        li.append(el("pre", {}, g.synonym_lines.join("\n")));
      }
      // Editors and administrators decide; staff read.
      if (me.role === "staff") return li;
      const actions = el("div", { class: "inbox-actions", role: "group", "aria-labelledby": `inbox-g${i}` });
      if (state === "open") {
        const label = el("label", { for: `inbox-s${i}` }, "Leistung");
        const select = el("select", { id: `inbox-s${i}` });
        // Chosen, never taken by default: the search's suggestions come first, marked.
        select.append(el("option", { value: "" }, "– bitte wählen –"));
        const first = g.suggestions.map(([id]) => id);
        const options = [...g.suggestions, ...r.services.filter(([id]) => !first.includes(id))];
        for (const [id, name] of options) select.append(el("option", { value: id }, first.includes(id) ? `${name} (Vorschlag der Suche)` : name));
        const map = el("button", { type: "button" }, "Zuordnen");
        map.addEventListener("click", () => {
          if (!select.value) { $("#inbox-status-line").textContent = "Bitte wählen Sie zuerst die Leistung."; select.focus(); return; }
          decideGroup(g, "service", select.value);
        });
        const gap = el("button", { type: "button" }, "Lücke im Wissen");
        gap.addEventListener("click", () => decideGroup(g, "gap"));
        const dismiss = el("button", { type: "button" }, "Verwerfen");
        dismiss.addEventListener("click", () => decideGroup(g, "dismissed"));
        actions.append(label, select, map, gap, dismiss);
      } else {
        const reopen = el("button", { type: "button" }, "Wieder öffnen");
        reopen.addEventListener("click", () => decideGroup(g, "open"));
        actions.append(reopen);
      }
      li.append(actions);
      return li;
    }));
  }

  // The plug-ins switched on: what each is for and keeps, and its settings (in effect at once,
  // kept over a restart).
  const READS = { started: "Gesprächsbeginn", answered: "Antworten", relayed: "weitergeleitete Nachrichten", handoff: "Übergaben", unanswered: "nicht beantwortete Fragen (Wortlaut, bereinigt)", feedback: "Rückmeldungen", voted: "Bewertungen per Taste" };
  async function loadPlugins() {
    let r;
    try { r = await api("/staff/api/admin/plugins"); } catch (_) { return; }
    $("#plugins-section").hidden = r.plugins.length === 0;
    $("#pl-list").replaceChildren(...r.plugins.map((p) => {
      const box = el("div", { class: "inbox-group" });
      box.append(el("h4", {}, p.name), el("p", {}, p.purpose), el("p", {}, `Liest: ${p.reads.map((k) => READS[k] || k).join(", ")}.`));
      if (p.free_text) box.append(el("p", {}, `Freitext von Bürgerinnen und Bürgern: ${p.free_text.purpose} Höchstens ${p.free_text.retention_days} Tage.`));
      for (const st of p.settings) {
        const id = `pl-${p.name}-${st.name}`;
        const form = el("form", { class: "filters" });
        const input = st.kind.type === "days"
          ? el("input", { id, type: "number", min: String(st.kind.min), max: String(st.kind.max), required: "" })
          : el("input", { id, type: "text", pattern: "[a-z0-9-]*", autocomplete: "off" });
        input.value = st.value == null ? "" : String(st.value);
        const wrap = el("div");
        wrap.append(el("label", { for: id }, st.label), input);
        form.append(wrap, el("button", { type: "submit" }, "Speichern"));
        form.addEventListener("submit", async (ev) => {
          ev.preventDefault();
          const value = st.kind.type === "days" ? Number(input.value) : input.value.trim();
          try {
            await api(`/staff/api/admin/plugins/${encodeURIComponent(p.name)}`, { method: "POST", body: { setting: st.name, value } });
            $("#admin-status").textContent = `${p.name}: Einstellung gespeichert.`;
          } catch (e) { $("#admin-status").textContent = `Nicht gespeichert: ${e.message}`; input.focus(); }
        });
        box.append(form);
      }
      return box;
    }));
  }

  // The suggestion box (feedback plug-in): triage, a public answer, the hackathon tag.
  const TOPICS = { digital: "Online-Angebote", service: "Bürgerservice", city: "Leben in der Stadt", other: "Etwas anderes" };
  const SG_STATES = { received: "eingegangen", reviewing: "in Prüfung", done: "umgesetzt", declined: "abgelehnt" };
  async function loadSuggestionBox() {
    $("#plugin-suggestions").hidden = !plugin("feedback");
    if (!plugin("feedback")) return;
    let r;
    try { r = await api("/staff/p/feedback/admin/suggestions"); }
    catch (e) { $("#sg-empty").textContent = `Die Vorschläge konnten nicht geladen werden: ${e.message}`; return; }
    $("#sg-empty").hidden = r.suggestions.length > 0;
    $("#sg-rows").replaceChildren(...r.suggestions.map((sg, i) => {
      const tr = el("tr");
      tr.append(el("th", { scope: "row" }, time(sg.at_ms)), el("td", {}, TOPICS[sg.category] || sg.category), el("td", {}, sg.text), el("td", {}, sg.email || "–"));
      const td = el("td");
      const form = el("form", { class: "sg-form" });
      const status = el("select", { id: `sg-s${i}` });
      for (const [k, v] of Object.entries(SG_STATES)) { const o = el("option", { value: k }, v); if (k === sg.status) o.selected = true; status.append(o); }
      const answer = el("textarea", { id: `sg-a${i}`, rows: "2", maxlength: "2000" });
      answer.value = sg.answer || "";
      const pub = el("input", { type: "checkbox", id: `sg-p${i}` });
      pub.checked = sg.public;
      const hack = el("input", { type: "checkbox", id: `sg-k${i}` });
      hack.checked = sg.hackathon;
      const save = el("button", { type: "submit" }, "Speichern");
      form.append(el("label", { for: `sg-s${i}` }, "Status"), status, el("label", { for: `sg-a${i}` }, "Antwort"), answer,
        pub, el("label", { for: `sg-p${i}` }, "Antwort öffentlich zeigen (mit Thema und Status, ohne den Text des Vorschlags)"), hack, el("label", { for: `sg-k${i}` }, "Hackathon"), save);
      form.addEventListener("submit", async (ev) => {
        ev.preventDefault();
        try {
          await api(`/staff/p/feedback/admin/suggestions/${encodeURIComponent(sg.id)}`, { method: "POST", body: { status: status.value, answer: answer.value.trim() || null, public: pub.checked, hackathon: hack.checked } });
          $("#admin-status").textContent = "Vorschlag gespeichert.";
        } catch (e) { $("#admin-status").textContent = `Nicht gespeichert: ${e.message}`; }
      });
      td.append(form);
      tr.append(td);
      return tr;
    }));
  }

  // Surveys (feedback plug-in): the list, the questionnaire's editor, the results as bars and
  // as a table, the exports, the link and its QR code.
  const OPEN = { open: "läuft", not_started: "noch nicht begonnen", ended: "beendet", full: "Antwortgrenze erreicht" };
  const SURVEY_TEMPLATE = `title.de = "Wie zufrieden waren Sie mit Ihrem Besuch?"
title.en = "How satisfied were you with your visit?"
# starts = "2027-01-01"
# ends = "2027-03-31"
# max_responses = 500
public_results = false

[[sections]]
title.de = "Ihr Besuch"

[[sections.questions]]
id = "weg"
kind = "single"
text.de = "Wie haben Sie uns erreicht?"
text.en = "How did you reach us?"
required = true
options = [
  { id = "online", label.de = "Online", label.en = "Online" },
  { id = "vor_ort", label.de = "Vor Ort", label.en = "In person" },
]

[[sections.questions]]
id = "note"
kind = "rating"
text.de = "Wie zufrieden sind Sie insgesamt?"
text.en = "How satisfied are you overall?"
`;
  const surveyPath = (id) => `/staff/p/feedback/editor/surveys/${encodeURIComponent(id)}`;
  async function loadSurveys() {
    let r;
    try { r = await api("/staff/p/feedback/editor/surveys"); }
    catch (e) { $("#sv-status").textContent = `Die Umfragen konnten nicht geladen werden: ${e.message}`; return; }
    $("#sv-empty").hidden = r.surveys.length > 0;
    $("#sv-rows").replaceChildren(...r.surveys.map((sv) => {
      const tr = el("tr");
      tr.append(el("th", { scope: "row" }, sv.title), el("td", {}, sv.id), el("td", {}, OPEN[sv.open] || sv.open), el("td", {}, String(sv.responses)));
      const td = el("td", { class: "inbox-actions" });
      const edit = el("button", { type: "button" }, "Bearbeiten");
      edit.setAttribute("aria-label", `${sv.title}: bearbeiten`);
      edit.addEventListener("click", () => editSurvey(sv.id));
      const show = el("button", { type: "button" }, "Ergebnisse");
      show.setAttribute("aria-label", `${sv.title}: Ergebnisse`);
      show.addEventListener("click", () => surveyResults(sv.id, sv.public_results));
      td.append(edit, show);
      tr.append(td);
      return tr;
    }));
  }
  // The survey in the editor is new (an id in use is then refused, not replaced).
  let creating = false;
  async function editSurvey(id) {
    $("#sv-results").hidden = true;
    let text = SURVEY_TEMPLATE;
    if (id) {
      // Loaded first: a failed load never leaves another survey's text under this id.
      try { text = (await api(surveyPath(id))).definition; }
      catch (e) { $("#sv-form").hidden = true; $("#sv-status").textContent = `Die Umfrage konnte nicht geladen werden: ${e.message}`; return; }
    }
    creating = !id;
    $("#sv-form").hidden = false;
    $("#sv-id").value = id || "";
    $("#sv-id").readOnly = !!id;
    $("#sv-text").value = text;
    $("#sv-form-h").textContent = id ? `Umfrage „${id}“ bearbeiten` : "Neue Umfrage";
    (id ? $("#sv-text") : $("#sv-id")).focus();
  }
  async function saveSurvey(ev) {
    ev.preventDefault();
    const id = $("#sv-id").value.trim();
    if (!/^[a-z0-9][a-z0-9-]{1,63}$/.test(id)) { $("#sv-status").textContent = "Bitte eine Kennung aus Kleinbuchstaben, Ziffern und Bindestrichen angeben."; $("#sv-id").focus(); return; }
    try {
      await api(surveyPath(id), { method: "PUT", body: { definition: $("#sv-text").value, create: creating } });
      $("#sv-status").textContent = `Umfrage „${id}“ gespeichert.`;
      creating = false;
      $("#sv-id").readOnly = true;
      loadSurveys();
    } catch (e) {
      $("#sv-status").textContent = `Nicht gespeichert: ${e.message}`;
      $("#sv-text").focus();
    }
  }
  async function surveyResults(id, published) {
    $("#sv-form").hidden = true;
    const box = $("#sv-results");
    let r;
    try { r = await api(`${surveyPath(id)}/results`); }
    catch (e) { $("#sv-status").textContent = `Die Ergebnisse konnten nicht geladen werden: ${e.message}`; return; }
    const h = el("h3", { id: "sv-results-h", tabindex: "-1" }, `Ergebnisse: ${r.title}`);
    const parts = [h, el("p", {}, `${r.responses} ${r.responses === 1 ? "Antwort" : "Antworten"}`)];
    const link = `${location.origin}/p/feedback/surveys/${encodeURIComponent(id)}/form`;
    const links = el("p", { class: "inbox-actions" });
    const a = (href, text, download) => { const x = el("a", { href }, text); if (download) x.setAttribute("download", ""); return x; };
    links.append(a(`${surveyPath(id)}/export`, "CSV herunterladen", true), a(`${surveyPath(id)}/export?sep=semicolon`, "CSV für Excel (Semikolon)", true),
      a(`${surveyPath(id)}/export?format=json`, "JSON herunterladen", true), a(link, "Link zur Umfrage"));
    if (published) links.append(a(`/p/feedback/surveys/${encodeURIComponent(id)}/results/page`, "Öffentliche Ergebnisseite"));
    parts.push(links, el("img", { src: `${surveyPath(id)}/qr.svg?base=${encodeURIComponent(location.origin)}`, alt: `QR-Code mit dem Link zur Umfrage ${r.title}`, width: "160", height: "160" }));
    if (r.withheld) parts.push(el("p", {}, "Unter fünf Antworten wird keine Aufschlüsselung gezeigt."));
    const pct = (n, of) => of ? Math.round((100 * n) / of) : 0;
    for (const q of r.questions) {
      const sec = el("div", { class: "inbox-group" });
      const qh = el("h4", { id: `svq-${q.id}` }, q.text);
      sec.append(qh, el("p", {}, `${q.answered} beantwortet${q.mean != null ? `, Mittelwert ${q.mean.toFixed(2).replace(".", ",")}` : ""}${q.nps != null ? `, NPS ${Math.round(q.nps)}` : ""}`));
      if (q.counts.length) {
        const t = el("table", { "aria-labelledby": `svq-${q.id}` });
        const head = el("tr");
        head.append(el("th", { scope: "col" }, "Antwort"), el("th", { scope: "col" }, "Anzahl"), el("th", { scope: "col" }, "Anteil"));
        const body = el("tbody");
        for (const c of q.counts) {
          const tr = el("tr");
          const share = el("td");
          const bar = el("span", { class: "bar", "aria-hidden": "true" });
          bar.style.width = `${pct(c.n, q.answered) * 2}px`;
          share.append(bar, ` ${pct(c.n, q.answered)} %`);
          tr.append(el("th", { scope: "row" }, c.label), el("td", {}, String(c.n)), share);
          body.append(tr);
        }
        const thead = el("thead");
        thead.append(head);
        t.append(thead, body);
        sec.append(t);
      }
      if (q.statements.length) {
        const t = el("table", { "aria-labelledby": `svq-${q.id}` });
        const head = el("tr");
        head.append(el("th", { scope: "col" }, "Aussage"), ...["stimme voll zu", "eher zu", "teils", "eher nicht", "gar nicht", "Mittelwert"].map((x) => el("th", { scope: "col" }, x)));
        const thead = el("thead");
        thead.append(head);
        const body = el("tbody");
        for (const st of q.statements) {
          const tr = el("tr");
          tr.append(el("th", { scope: "row" }, st.label), ...st.counts.map((n) => el("td", {}, String(n))), el("td", {}, st.mean == null ? "–" : st.mean.toFixed(2).replace(".", ",")));
          body.append(tr);
        }
        t.append(thead, body);
        sec.append(t);
      }
      if (q.withheld) sec.append(el("p", {}, "Zu wenige Antworten für eine Aufschlüsselung."));
      if (q.texts.length) {
        const ul = el("ul", { "aria-labelledby": `svq-${q.id}` });
        ul.append(...q.texts.map((x) => el("li", {}, x)));
        sec.append(ul);
      }
      parts.push(sec);
    }
    box.replaceChildren(...parts);
    box.hidden = false;
    h.focus();
  }

  function connect() {
    const es = new EventSource("/staff/api/events");
    es.addEventListener("hello", () => { $("#connection").textContent = ""; loadQueue(); });
    es.addEventListener("staff", (ev) => {
      const e = JSON.parse(ev.data);
      if (e.type === "queue") loadQueueSoon();
      else if (e.type === "callbacks") loadCallbacks();
      else if (e.type === "message" && e.handoff_id === openId) {
        const list = $("#transcript");
        list.append(line(e));
        list.scrollTop = list.scrollHeight;
        if (e.author === "citizen") { $("#citizen-typing").hidden = true; announce(`Neue Nachricht: ${e.text}`); }
      } else if (e.type === "typing" && e.handoff_id === openId && e.who === "citizen") {
        $("#citizen-typing").hidden = !e.typing;
      } else if (e.type === "transcript" && e.handoff_id === openId) {
        openConversation(openId);
      } else if (e.type === "closed" && e.handoff_id === openId) {
        announce("Das Gespräch wurde beendet.");
        closeConversation();
      }
    });
    es.onerror = () => { $("#connection").textContent = "Verbindung unterbrochen – wird wiederhergestellt …"; };
  }

  async function start() {
    // The tabs work from the first moment, not only once the account is read: a click before
    // that was lost (the console's browser test clicked into that gap).
    document.querySelectorAll(".tab").forEach((b) => b.addEventListener("click", () => showTab(b.dataset.tab)));
    me = await api("/staff/api/me");
    $("#me-name").textContent = me.display_name;
    $("#admin-tab").hidden = me.role !== "admin";
    $("#inbox-tab").hidden = !plugin("inbox");
    $("#surveys-tab").hidden = !(plugin("feedback") && ["admin", "editor"].includes(me.role));
    $("#inbox-readonly").hidden = me.role !== "staff";
    $("#pf-filter").addEventListener("submit", (ev) => { ev.preventDefault(); loadFigures(); });
    $("#pf-month").addEventListener("change", monthLinks);
    $("#sv-new").addEventListener("click", () => editSurvey(null));
    $("#sv-form").addEventListener("submit", saveSurvey);
    $("#inbox-filter").addEventListener("submit", (ev) => { ev.preventDefault(); loadInbox(); });
    $("#logout").addEventListener("click", async () => { await api("/staff/api/logout", { method: "POST", body: {} }); location.href = "/staff/login"; });
    $("#reply-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const text = $("#reply-text").value.trim();
      if (!text || !openId) return;
      try {
        await api(`/staff/api/handoffs/${encodeURIComponent(openId)}/reply`, { method: "POST", body: { text } });
        $("#reply-text").value = "";
        typingSent = false;
      } catch (e) { announce(`Nicht gesendet: ${e.message}`); }
    });
    $("#reply-text").addEventListener("input", typed);
    $("#handback").addEventListener("click", () => action("handback"));
    $("#release").addEventListener("click", () => action("release"));
    $("#close-button").addEventListener("click", () => action("close", { outcome: $("#close-outcome").value, note: $("#close-note").value || null }));
    $("#conv-back").addEventListener("click", () => { openId = null; showTab("queue"); });
    $("#schedule-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try { await api("/staff/api/admin/schedule", { method: "POST", body: { toml: $("#schedule-text").value } }); $("#admin-status").textContent = "Zeitplan gespeichert."; loadAdmin(); }
      catch (e) { $("#admin-status").textContent = e.message; }
    });
    $("#retention-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      try { await api("/staff/api/admin/retention", { method: "POST", body: { days: Number($("#retention-days").value) } }); $("#admin-status").textContent = "Aufbewahrung gespeichert."; }
      catch (e) { $("#admin-status").textContent = e.message; }
    });
    $("#password-form").addEventListener("submit", async (ev) => {
      ev.preventDefault();
      const [current, next, again] = ["#password-current", "#password-new", "#password-repeat"].map((id) => $(id).value);
      if (next !== again) { $("#account-status").textContent = "Die beiden neuen Passwörter stimmen nicht überein."; return; }
      try {
        await api("/staff/api/password", { method: "POST", body: { current, new: next } });
        ev.target.reset();
        $("#account-status").textContent = "Passwort geändert. Andere Geräte sind abgemeldet.";
      } catch (e) { $("#account-status").textContent = e.message; }
    });
    document.addEventListener("keydown", (ev) => { if (ev.key === "Escape" && openId) { openId = null; showTab("queue"); } });
    setInterval(renderQueue, 5000);
    setInterval(() => loadQueue().catch(() => {}), 30000);
    connect();
    await loadQueue();
    await loadCallbacks();
  }

  document.addEventListener("DOMContentLoaded", () => { start().catch((e) => announce(e.message)); });
})();
