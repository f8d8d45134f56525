// End-to-end: the staff handoff in a real browser. `lotse serve` runs with its embedded SQLite
// database; a citizen talks to the API and its events stream (as the widget does); a staff
// member works in the console at /staff in headless Chromium (Debian's, driven by
// playwright-core); a phone call run offline by `lotse voice` on the same database reaches the
// same queue. Screenshots go to e2e/artifacts/.
//
//   node e2e/handoff.mjs target/release/lotse
//
// Exit code 0 when every check held; each check prints one line.

import { join } from "node:path";
import { rmSync, writeFileSync } from "node:fs";
import { spawnSync } from "node:child_process";
import { createServer } from "node:http";
import { artifacts, axe, check, citizen, config, fail, failed, launch, lotse, serve, silence, work } from "./lib.mjs";

const browser = await launch();
const servers = [];
try {
  // --- within staff hours -------------------------------------------------------------------
  const open = await serve(config("open", true));
  servers.push(open.child);
  const c = await citizen(open.base);
  const answer = await c.say("Was kostet ein Personalausweis?");
  check(answer.reply.kind === "answer" && answer.reply.text.includes("46,00 €"), "the bot answers the fee question from the record");
  const h = await c.say("Ich möchte mit einem Menschen sprechen");
  check(h.reply.handoff && h.reply.handoff.state === "queued" && h.reply.handoff.position === 1, "asking for a person queues the conversation at place 1");

  // bypassCSP lets the test inject axe-core; the console itself runs under its strict policy.
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, bypassCSP: true });
  await page.goto(`${open.base}/staff`);
  check(page.url().endsWith("/staff/login"), "the console without a session redirects to the login");
  await axe(page, "login page");
  // Log in by keyboard only.
  await page.focus("#name");
  await page.keyboard.type("anna");
  await page.keyboard.press("Tab");
  await page.keyboard.type("falsches Passwort");
  await page.keyboard.press("Enter");
  await page.waitForSelector("#login-error", { timeout: 5000 }).catch(async () => console.log(await page.content()));
  const loginError = await page.textContent("#login-error");
  check(loginError.includes("falsch"), `a wrong password is refused with a clear message (${loginError})`);
  await page.fill("#name", "anna");
  await page.fill("#password", "ein gutes Passwort");
  await page.keyboard.press("Enter");
  await page.waitForURL(`${open.base}/staff`);
  const row = page.locator('#queue tbody tr[data-state="waiting"]');
  await row.first().waitFor();
  const rowText = await row.first().textContent();
  check(rowText.includes("Bürgerservice") && rowText.includes("Personalausweis beantragen"), "the queue shows team and service");
  check((await page.title()).startsWith("(1)"), "the page title counts the waiting conversations");
  const cookies = await page.context().cookies();
  const session = cookies.find((k) => k.name === "lotse_staff");
  check(session && session.httpOnly && session.sameSite === "Strict", "the session cookie is HttpOnly and SameSite=Strict");
  await page.screenshot({ path: join(artifacts, "staff-queue.png"), fullPage: true });
  await axe(page, "queue");

  // Claim by keyboard.
  await row.first().locator('button[data-action="claim"]').focus();
  await page.keyboard.press("Enter");
  await page.waitForSelector("#conversation:not([hidden])");
  await page.waitForSelector('#transcript li[data-author="citizen"]');
  const transcript = await page.textContent("#transcript");
  check(transcript.includes("Was kostet ein Personalausweis?") && transcript.includes("46,00 €"), "the transcript shows the question and the bot's answer");
  check(await page.locator("#transcript a", { hasText: "Personalausweis beantragen" }).count() > 0, "the bot's sources are links in the transcript");
  const joined = await c.waitFor((e) => e.name === "handoff" && e.data.handoff.state === "connected", "connected");
  check(joined.data.handoff.staff === "Anna Schmidt", "the citizen is told who joined");
  await page.waitForSelector(".suggestion");
  check((await page.textContent("#suggestions")).includes("46,00 €"), "a suggested answer from the knowledge is offered");

  await page.fill("#reply-text", "Guten Tag, hier ist Anna Schmidt. Wie kann ich helfen?");
  await page.click("#reply-send");
  const staffMsg = await c.waitFor((e) => e.name === "staff", "staff message");
  check(staffMsg.data.text.includes("hier ist Anna Schmidt"), "the citizen receives the staff reply over the events stream");

  const relayed = await c.say("Ich brauche den Ausweis bis Freitag. Geht das?");
  check(relayed.reply === null && relayed.relayed === true, "the citizen's message goes to staff, not the bot");
  await page.waitForSelector('#transcript li[data-author="citizen"] >> text=bis Freitag');
  check(true, "the citizen's message appears live in the console");
  await new Promise((r) => setTimeout(r, 500));
  const botSpoke = c.events.filter((e) => e.name === "reply").length;
  check(botSpoke === 2, `the bot stays silent after the claim (${botSpoke} bot replies, both before the claim)`);
  await page.screenshot({ path: join(artifacts, "staff-conversation.png"), fullPage: true });
  await axe(page, "conversation");

  await page.selectOption("#close-outcome", "resolved");
  await page.fill("#close-note", "Express-Ausweis empfohlen");
  await page.click("#close-button");
  const closed = await c.waitFor((e) => e.name === "handoff" && e.data.handoff.state === "closed", "closed");
  check(closed.data.text.includes("beendet"), "closing tells the citizen the conversation with staff has ended");
  const back = await c.say("Was kostet ein Personalausweis?");
  check(back.reply && back.reply.kind === "answer", "after closing, the bot answers again");
  c.close();

  // --- a phone call in the same queue ---------------------------------------------------------
  // `lotse voice` runs a recording offline against the same database: the caller presses 0
  // within staff hours. The console shows the call with its channel and transcript.
  const recording = join(work, "call.wav");
  writeFileSync(recording, silence(4));
  const call = spawnSync(lotse, ["--no-embeddings", "--config", open.config, "voice", "--in", recording,
    "--out", join(work, "reply.wav"), "--dtmf", "1.0:0", "--transcript"], { encoding: "utf8" });
  check(call.status === 0 && call.stdout.includes("key 0"), `the phone call asks for a person by key (${call.status} ${call.stderr.slice(-300)})`);
  await page.reload();
  const phoneRow = page.locator('#queue tbody tr[data-state="waiting"]', { hasText: "Telefon" });
  await phoneRow.first().waitFor();
  check(await phoneRow.count() === 1, "the console's queue shows the call with its channel, Telefon");
  await phoneRow.first().locator('button[data-action="claim"]').click();
  await page.waitForSelector("#transcript li >> text=Menschen");
  const phoneTranscript = await page.textContent("#transcript");
  check(phoneTranscript.includes("Menschen") && (await page.textContent("#conv-meta")).includes("Telefon"),
    "the call's transcript (the request for a person, the bot's reply) is in the console");
  await page.screenshot({ path: join(artifacts, "staff-phone-call.png"), fullPage: true });

  // --- outside staff hours --------------------------------------------------------------------
  const closedServer = await serve(config("closed", false, '[plugins]\nenabled = ["feedback", "figures", "inbox"]\n'));
  servers.push(closedServer.child);
  const d = await citizen(closedServer.base);
  const lost = await d.say("Ich habe meinen Personalausweis verloren");
  // The citizen says the answer did not help (the feedback plug-in); the figures count it all.
  let voted = 0;
  for (let i = 0; i < 100 && voted !== 204; i++) {
    if (i) await new Promise((r) => setTimeout(r, 100));
    voted = (await fetch(`${closedServer.base}/p/feedback/thumbs`, {
      method: "POST", headers: { "content-type": "application/json" },
      body: JSON.stringify({ conversation_id: d.id, turn: lost.turn, helpful: false, reason: "wrong" }),
    })).status;
  }
  check(voted === 204, `a citizen's vote under an answer is taken (${voted})`);
  // A question the knowledge has no answer for goes to the unanswered-questions inbox.
  const suggestion = await fetch(`${closedServer.base}/p/feedback/suggestions`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ category: "service", text: "Bitte auch Termine am Samstag anbieten." }),
  });
  check(suggestion.status === 201, `a suggestion is sent (${suggestion.status})`);
  const dachshund = await d.say("Wo melde ich meinen Dackel an?");
  check(dachshund.reply.kind === "out_of_scope", `a question the knowledge lacks is declined (${dachshund.reply.kind})`);
  const offer = await d.say("Ich möchte mit einem Menschen sprechen");
  const cb = offer.reply.handoff;
  check(cb.state === "callback_offered" && cb.callback && cb.callback.slot.includes("09:00–12:00"), "outside hours a callback is offered with its slot");
  const stored = await fetch(`${closedServer.base}/api/v1/conversations/${d.id}/callback`, {
    method: "POST", headers: { "content-type": "application/json" },
    body: JSON.stringify({ contact_kind: "phone", contact: "03641 555123", name: "Erika Muster", consent: true }),
  });
  const storedJson = await stored.json();
  check(stored.status === 201 && storedJson.handoff.state === "callback_scheduled", "the callback request is stored and confirmed");
  const page2 = await browser.newPage({ viewport: { width: 1280, height: 900 }, bypassCSP: true });
  await page2.goto(`${closedServer.base}/staff/login`);
  await page2.fill("#name", "anna");
  await page2.fill("#password", "ein gutes Passwort");
  await page2.click("#login-submit");
  await page2.waitForURL(`${closedServer.base}/staff`);
  await page2.click('button[data-tab="callbacks"]');
  const cbRow = page2.locator("#callbacks tbody tr");
  await cbRow.first().waitFor();
  const cbText = await cbRow.first().textContent();
  check(cbText.includes("03641 555123") && cbText.includes("Erika Muster"), "the callback request is in the console's list");
  await page2.screenshot({ path: join(artifacts, "staff-callbacks.png"), fullPage: true });
  await axe(page2, "callback list");

  // Anna changes her password by keyboard; an administrator sees it in the audit trail and
  // disables her account, which ends her session.
  await page2.click('button[data-tab="account"]');
  await axe(page2, "account");
  await page2.focus("#password-current");
  await page2.keyboard.type("ein gutes Passwort");
  await page2.keyboard.press("Tab");
  await page2.keyboard.type("ein ganz neues Passwort");
  await page2.keyboard.press("Tab");
  await page2.keyboard.type("ein ganz neues Passwort");
  await page2.keyboard.press("Enter");
  await page2.waitForFunction(() => document.querySelector("#account-status").textContent.includes("geändert"));
  check(true, "a staff member changes their password in the console");
  const admin = await browser.newPage({ viewport: { width: 1280, height: 900 }, bypassCSP: true });
  await admin.goto(`${closedServer.base}/staff/login`);
  await admin.fill("#name", "chef");
  await admin.fill("#password", "ein gutes Passwort");
  await admin.click("#login-submit");
  await admin.waitForURL(`${closedServer.base}/staff`);
  await admin.click('button[data-tab="admin"]');
  await admin.locator("#audit tr").first().waitFor();
  const trail = await admin.textContent("#audit");
  check(trail.includes("password") && trail.includes("anna"), "the audit trail shows the password change");
  await admin.locator("#pf-rows tr").first().waitFor();
  const figures = Object.fromEntries(await admin.evaluate(() => [...document.querySelectorAll("#pf-rows tr")].map((tr) => [tr.children[0].textContent, tr.children[1].textContent])));
  check(figures["Gespräche"] === "1" && figures["Beantwortete Nachrichten"] === "3", `the administration shows the assistant's key figures (${JSON.stringify(figures).slice(0, 120)})`);
  const trend = await admin.evaluate(() => [...document.querySelectorAll("#pf-days tr")].map((tr) => [...tr.children].map((c) => c.textContent)));
  check(trend.length >= 30 && trend.some(([, c, a]) => c === "1" && a === "3") && await admin.locator("#pf-trend svg polyline").count() === 2,
    `and their trend per day, as a chart and a table (${trend.length} days)`);
  await admin.locator("#plugin-figures").screenshot({ path: join(artifacts, "staff-figures.png") });
  await admin.selectOption("#pf-channel", "phone");
  await admin.click("#pf-filter button[type=submit]");
  await admin.waitForFunction(() => [...document.querySelectorAll("#pf-rows tr")].some((tr) => tr.children[0].textContent === "Gespräche" && tr.children[1].textContent === "0"));
  check(true, "a channel filter shows that channel's figures only");
  await admin.selectOption("#pf-channel", "");
  const reportHref = await admin.getAttribute("#pf-report-html", "href");
  const report = await admin.evaluate(async (h) => { const r = await fetch(h.replace(/month=[^&]*/, `month=${new Date().toISOString().slice(0, 7)}`)); return [r.status, await r.text()]; }, reportHref);
  check(report[0] === 200 && report[1].includes("Monatsbericht") && report[1].includes("Interaktionen: Gespräche"), "the monthly report is a printable page");
  const votes = await admin.textContent("#plugin-feedback");
  check(votes.includes("hat nicht geholfen: 1") && /falsch\s*1(?!\d)/.test(votes), "and the citizens' votes with their reasons");
  await admin.locator("#pl-list h4").first().waitFor();
  await admin.fill("#pl-inbox-inbox_days", "14");
  await admin.click("#pl-list form:has(#pl-inbox-inbox_days) button");
  await admin.waitForFunction(() => document.querySelector("#admin-status").textContent.includes("Einstellung gespeichert"));
  const plugins = await admin.evaluate(async () => (await fetch("/staff/api/admin/plugins")).json());
  check(plugins.plugins.find((p) => p.name === "inbox").free_text.retention_days === 14, "an administrator changes a plug-in's setting in the console");
  await axe(admin, "administration");
  // The administrator answers the suggestion in public.
  check((await admin.textContent("#sg-rows")).includes("Termine am Samstag"), "the suggestion is in the administration");
  await admin.fill("#sg-a0", "Seit März gibt es Samstagstermine.");
  await admin.selectOption("#sg-s0", "done");
  await admin.check("#sg-p0");
  await admin.click("#sg-rows button >> text=Speichern");
  await admin.waitForFunction(() => document.querySelector("#admin-status").textContent.includes("Vorschlag gespeichert"));
  const shown = await (await fetch(`${closedServer.base}/p/feedback/suggestions`)).json();
  check(shown.suggestions.length === 1 && shown.suggestions[0].answer.startsWith("Seit März") && shown.suggestions[0].status === "done",
    "its answer is public");
  await admin.click("text=anna sperren");
  await admin.waitForFunction(() => document.querySelector("#admin-status").textContent.includes("erledigt"));
  const me = await page2.evaluate(async () => (await fetch("/staff/api/me")).status);
  check(me === 401, `a disabled account's session ends at once (${me})`);

  // The administrator opens the unanswered questions and maps the declined one to the dog tax.
  await admin.click('button[data-tab="inbox"]');
  const group = admin.locator("#inbox-groups li.inbox-group");
  for (let i = 0; i < 50 && (await group.count()) === 0; i++) {
    await new Promise((r) => setTimeout(r, 100));
    await admin.click("#inbox-filter button[type=submit]");
  }
  check((await group.count()) === 1 && (await group.first().textContent()).includes("Dackel"), "the declined question is in the unanswered-questions inbox");
  await axe(admin, "unanswered-questions inbox");
  await admin.screenshot({ path: join(artifacts, "staff-inbox.png"), fullPage: true });
  await admin.selectOption("#inbox-s0", "hundesteuer");
  await admin.click("#inbox-groups button >> text=Zuordnen");
  await admin.waitForFunction(() => document.querySelector("#inbox-status-line").textContent.includes("zugeordnet"));
  const mapped = await admin.textContent("#inbox-status-line");
  check(mapped.includes('"dackel" = ["Hund", "Hundesteuer"]'), `mapped to a service, with a line for the synonyms (${mapped})`);
  check((await group.count()) === 0, "and no longer open");
  await admin.selectOption("#inbox-status", "service");
  await admin.click("#inbox-filter button[type=submit]");
  await admin.locator("#inbox-groups li.inbox-group").first().waitFor();
  check((await admin.textContent("#inbox-groups")).includes("Zugeordnet: Hund anmelden (Hundesteuer)"), "the mapped group is listed with its service");
  await axe(admin, "mapped questions");

  // --- a survey: written in the console, answered on a city page and by its QR link -----------
  await admin.click('button[data-tab="surveys"]');
  await admin.click("#sv-new");
  await admin.fill("#sv-id", "besuch-2027");
  await admin.fill("#sv-text", `title.de = "Ihr Besuch im Bürgerservice"
title.en = "Your visit to the citizens' office"
[[sections]]
title.de = "Ihr Besuch"
title.en = "Your visit"
[[sections.questions]]
id = "weg"
kind = "single"
text.de = "Wie haben Sie uns erreicht?"
text.en = "How did you reach us?"
required = true
options = [{ id = "online", label.de = "Online" }, { id = "vor_ort", label.de = "Vor Ort", label.en = "In person" }]
[[sections.questions]]
id = "warum"
kind = "long_text"
text.de = "Warum nicht online?"
text.en = "Why not online?"
show_if = { question = "weg", any_of = ["vor_ort"] }
[[sections.questions]]
id = "aussagen"
kind = "likert"
text.de = "Wie sehr stimmen Sie zu?"
rows = [{ id = "schnell", label.de = "Es ging schnell." }, { id = "klar", label.de = "Ich wusste, was ich mitbringen muss." }]
[[sections.questions]]
id = "dienste"
kind = "multiple"
text.de = "Worum ging es?"
options = [{ id = "pass", label.de = "Pass oder Ausweis" }, { id = "melde", label.de = "Anmeldung" }]
[[sections.questions]]
id = "empfehlen"
kind = "nps"
text.de = "Wie wahrscheinlich empfehlen Sie uns weiter?"
required = true
`);
  await admin.click("#sv-form button[type=submit]");
  await admin.waitForFunction(() => document.querySelector("#sv-status").textContent.includes("gespeichert"));
  await admin.locator("#sv-rows tr").first().waitFor();
  check((await admin.textContent("#sv-rows")).includes("läuft"), "an administrator writes a survey in the console, and it runs");
  await axe(admin, "survey editor");

  // A city page on another origin embeds it; a citizen answers with the keyboard-friendly form.
  const surveyPage = `<!doctype html><html lang="de"><head><meta charset="utf-8"><title>Umfrage</title></head>
<body><main><h1>Umfrage der Stadt</h1><script src="${closedServer.base}/widget.js" data-api="${closedServer.base}" data-survey="besuch-2027" defer></script></main></body></html>`;
  const hostPort = await new Promise((r) => { const srv = createServer((q, res) => { res.writeHead(200, { "content-type": "text/html; charset=utf-8" }); res.end(surveyPage); }); srv.listen(0, "127.0.0.1", () => r(srv)); });
  const cityPage = await browser.newPage({ viewport: { width: 320, height: 640 } });
  await cityPage.goto(`http://127.0.0.1:${hostPort.address().port}/`);
  const sv = (sel) => cityPage.locator(`lotse-survey >> ${sel}`);
  await sv("fieldset[data-q=weg]").waitFor();
  check(await sv("fieldset[data-q=warum]").isHidden(), "a question with a condition is hidden until its condition holds");
  await axe(cityPage, "survey on a city page (320 px)");
  await sv("button[type=submit]").click();
  check((await sv("p[role=status]").textContent()).includes("2 Fragen") && await sv("fieldset[data-q=weg] input").first().evaluate((e) => e === e.getRootNode().activeElement),
    "missing required answers are announced and the first gets the focus");
  check((await sv("fieldset[data-q=weg] .err").textContent()).includes("beantworten"), "the missing answer is named at its question");
  await axe(cityPage, "survey with errors");
  await sv("label >> text=Vor Ort").click();
  await sv("fieldset[data-q=warum] textarea").waitFor();
  await sv("fieldset[data-q=warum] textarea").fill("Ich brauchte eine Beratung. Rufen Sie mich an: 0176 1234567");
  await sv('fieldset[data-row=schnell] label >> text="stimme eher zu"').click();
  await sv('fieldset[data-q=dienste] label >> text=Pass oder Ausweis').click();
  await sv('fieldset[data-q=empfehlen] input[value="9"]').check();
  await cityPage.screenshot({ path: join(artifacts, "survey-form.png"), fullPage: true });
  await sv("button[type=submit]").click();
  await sv("text=Danke für Ihre Teilnahme").waitFor();
  await axe(cityPage, "survey, sent");
  await cityPage.reload();
  await sv("text=schon teilgenommen").waitFor();
  check(true, "the same device is not asked twice");

  // By the QR code's link (the form page of its own), in English, from fresh devices.
  const qr = await admin.evaluate(async () => { const r = await fetch(`/staff/p/feedback/editor/surveys/besuch-2027/qr.svg?base=${encodeURIComponent(location.origin)}`); return [r.status, (await r.text()).slice(0, 200)]; });
  check(qr[0] === 200 && qr[1].includes("<svg"), "the console offers the survey's QR code");
  for (let i = 0; i < 4; i++) {
    const ctx = await browser.newContext({ viewport: { width: 390, height: 844 } });
    const p = await ctx.newPage();
    await p.goto(`${closedServer.base}/p/feedback/surveys/besuch-2027/form${i === 0 ? "?lang=en" : ""}`);
    const f = (sel) => p.locator(`lotse-survey >> ${sel}`);
    await f("fieldset[data-q=weg]").waitFor();
    if (i === 0) { check((await f("legend").first().textContent()).includes("How did you reach us"), "the link page in English"); await axe(p, "survey by its link"); }
    await f("fieldset[data-q=weg] input").first().check();
    await f(`fieldset[data-q=empfehlen] input[value="${[10, 3, 7, 10][i]}"]`).check();
    await f("button[type=submit]").click();
    await f("p[role=status]:not(:empty)").waitFor();
    await f("text=/Thank you|Danke/").waitFor();
    await ctx.close();
  }

  // The administrator reads the results and exports them.
  await admin.click('button[data-tab="surveys"]');
  await admin.locator("#sv-rows button >> text=Ergebnisse").first().click();
  await admin.locator("#sv-results h4").first().waitFor();
  const results = await admin.textContent("#sv-results");
  check(results.includes("5 Antworten") && /Online\s*4\s*80 %/.test(results) && /Vor Ort\s*1\s*20 %/.test(results), `the results count each option (${results.replace(/\s+/g, " ").slice(0, 160)})`);
  check(results.includes("NPS 40") && results.includes("Beratung") && !results.includes("1234567"), "the net promoter score, and the free text without the phone number");
  await axe(admin, "survey results");
  await admin.screenshot({ path: join(artifacts, "survey-results.png"), fullPage: true });
  const csv = await admin.evaluate(async () => (await fetch("/staff/p/feedback/editor/surveys/besuch-2027/export?sep=semicolon")).text());
  const lines = csv.replace(/^\uFEFF/, "").trim().split("\n");
  check(lines.length === 6 && lines[0].startsWith("submitted;lang;channel;weg;warum;aussagen.schnell;aussagen.klar;dienste.pass;dienste.melde;empfehlen")
    && lines.some((l) => l.includes(";de;web;vor_ort;")) && lines.filter((l) => l.includes(";link;")).length === 4, `the CSV export has every response (${lines[0]})`);
  // Published: the results as a page of their own, without the free texts.
  const published = await admin.evaluate(async () => {
    const { csrf } = await (await fetch("/staff/api/me")).json();
    const path = "/staff/p/feedback/editor/surveys/besuch-2027";
    const { definition } = await (await fetch(path)).json();
    const r = await fetch(path, { method: "PUT", headers: { "content-type": "application/json", "x-csrf-token": csrf }, body: JSON.stringify({ definition: `public_results = true\n${definition}` }) });
    return r.status;
  });
  const pub = await browser.newPage({ viewport: { width: 390, height: 844 } });
  await pub.goto(`${closedServer.base}/p/feedback/surveys/besuch-2027/results/page`);
  const pubText = await pub.textContent("main");
  check(published === 204 && pubText.includes("5 Antworten") && !pubText.includes("Beratung"), "the published results page shows the counts, never the free texts");
  await axe(pub, "published survey results");
  await pub.close();
  hostPort.close();
  d.close();
} catch (e) {
  fail(e);
} finally {
  await browser.close();
  for (const s of servers) s.kill("SIGTERM");
  rmSync(work, { recursive: true, force: true });
}
console.log(failed() === 0 ? "e2e handoff: all checks passed" : `e2e handoff: ${failed()} failed`);
process.exit(failed() === 0 ? 0 : 1);
