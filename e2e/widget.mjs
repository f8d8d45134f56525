// End-to-end: the chat widget in headless Chromium. The demo page of `lotse serve` (axe-core in
// every state: closed, open, during a conversation, during a handoff), a hostile host page on
// another origin (its CSS must not reach the widget, the widget must not touch the page), and
// the kiosk mode (no links, QR codes, reset after inactivity). Screenshots go to e2e/artifacts/.
//
//   node e2e/widget.mjs target/release/lotse

import { createServer } from "node:http";
import { existsSync, rmSync, statSync } from "node:fs";
import { join } from "node:path";
import { artifacts, axe, check, config, fail, failed, freePort, launch, serve, work } from "./lib.mjs";

// Host pages on another origin, as the city's websites are.
async function hostPages(lotseBase, closedBase) {
  const hostile = `<!doctype html><html lang="de"><head><meta charset="utf-8"><title>Feindliche Seite</title>
<style>
  * { color: red !important; font-size: 40px !important; background: yellow !important; line-height: 3 !important; }
  div, lotse-widget, ol, li, form { display: none !important; }
  button { all: unset !important; } textarea { width: 1px !important; }
</style></head><body><main><h1>Feindliche Seite</h1><p id="own">Eigener Text der Seite.</p></main>
<script>window.__before = Object.getOwnPropertyNames(window);</script>
<script src="${lotseBase}/widget.js" data-api="${lotseBase}" defer></script></body></html>`;
  const kioskOf = (api) => `<!doctype html><html lang="de"><head><meta charset="utf-8"><title>Terminal</title></head>
<body><main><h1>Terminal</h1></main><script src="${api}/widget.js" data-api="${api}" data-mode="kiosk" data-idle="5" defer></script></body></html>`;
  // A service page of the city with a rating of the service (data-feedback).
  const ratingPage = `<!doctype html><html lang="de"><head><meta charset="utf-8"><title>Reisepass beantragen</title></head>
<body><main><h1>Reisepass beantragen</h1><p>Ein Reisepass kostet 70 Euro.</p>
<script src="${lotseBase}/widget.js" data-api="${lotseBase}" data-feedback="reisepass" defer></script></main></body></html>`;
  // The suggestion box on a page of the city (data-suggestions).
  const suggestPage = `<!doctype html><html lang="de"><head><meta charset="utf-8"><title>Ihre Ideen für Jena</title></head>
<body><main><h1>Ihre Ideen für Jena</h1>
<script src="${lotseBase}/widget.js" data-api="${lotseBase}" data-suggestions defer></script></main></body></html>`;
  const port = await freePort();
  const server = createServer((req, res) => {
    res.writeHead(200, { "content-type": "text/html; charset=utf-8" });
    res.end(req.url.startsWith("/kiosk-closed") ? kioskOf(closedBase) : req.url.startsWith("/kiosk") ? kioskOf(lotseBase)
      : req.url.startsWith("/rating") ? ratingPage : req.url.startsWith("/suggest") ? suggestPage : hostile);
  });
  await new Promise((r) => server.listen(port, "127.0.0.1", r));
  return { server, base: `http://127.0.0.1:${port}` };
}

// The widget's shadow root, queried from the page.
const shadow = (page, selector) => page.locator(`lotse-widget >> ${selector}`);
const lastBot = (page) => shadow(page, '.msg[data-kind="bot"]').last();
const messages = (page, kind) => shadow(page, `.msg[data-kind="${kind}"]`);

async function ask(page, text) {
  const before = await messages(page, "bot").count();
  await shadow(page, "#lotse-input").fill(text);
  await shadow(page, "#lotse-input").press("Enter");
  await page.waitForFunction((n) => document.querySelector("lotse-widget").shadowRoot.querySelectorAll('.msg[data-kind="bot"]').length > n, before);
  return (await lastBot(page).textContent()) || "";
}

async function staffLogin(base, name = "anna") {
  const r = await fetch(`${base}/staff/login`, {
    method: "POST", redirect: "manual", headers: { "content-type": "application/x-www-form-urlencoded" },
    body: `name=${name}&password=ein+gutes+Passwort`,
  });
  const cookie = r.headers.get("set-cookie").split(";")[0];
  const me = await (await fetch(`${base}/staff/api/me`, { headers: { cookie } })).json();
  const call = async (path, body, method) => {
    const r = await fetch(`${base}${path}`, {
      method: method || (body ? "POST" : "GET"),
      headers: { cookie, "x-csrf-token": me.csrf, "content-type": "application/json" },
      body: body ? JSON.stringify(body) : undefined,
    });
    const text = await r.text();
    return text ? JSON.parse(text) : { status: r.status };
  };
  return call;
}

const browser = await launch();
const servers = [];
let hosts = null;
try {
  const lotse = await serve(config("widget", true, '[plugins]\nenabled = ["feedback"]\nchat_survey = "gespraech"\n'));
  servers.push(lotse.child);
  const base = lotse.base;
  const js = await fetch(`${base}/widget.js`);
  const body = await js.text();
  const gz = (await import("node:zlib")).gzipSync(body).length;
  check(js.ok && gz < 40 * 1024, `widget.js is served, ${(body.length / 1024).toFixed(1)} KB, ${(gz / 1024).toFixed(1)} KB gzipped (< 40 KB)`);

  // --- the demo page -------------------------------------------------------------------------
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 }, bypassCSP: true });
  await page.goto(`${base}/`);
  await shadow(page, ".launcher").waitFor();
  await axe(page, "demo page, widget closed");
  await page.screenshot({ path: join(artifacts, "widget-closed.png") });
  await shadow(page, ".launcher").click();
  await shadow(page, ".panel").waitFor();
  const focused = await page.evaluate(() => document.querySelector("lotse-widget").shadowRoot.activeElement?.id);
  check(focused === "lotse-input", "opening moves the focus to the question field");
  await shadow(page, '.msg[data-kind="bot"]').first().waitFor();
  await axe(page, "widget open");

  const fee = await ask(page, "Was kostet ein Personalausweis?");
  check(fee.includes("46,00 €"), "the answer arrives with the fee from the record");
  const link = lastBot(page).locator("a");
  check((await link.count()) > 0 && (await link.first().getAttribute("href")).startsWith("https://"), "the answer's sources are links under it");
  const sources = (await lastBot(page).locator(".src").allTextContents()).join(" ");
  check(/Stand: (Januar|Februar|März|April|Mai|Juni|Juli|August|September|Oktober|November|Dezember) \d{4}/.test(sources), `the sources show their as-of date, month and year (${sources.match(/Stand: [^\n]*?\d{4}/)?.[0] || "none"})`);

  // The feedback plug-in: under the answer, did it help; on "no", why, and a comment.
  const vote = lastBot(page).locator(".vote");
  check((await vote.count()) === 1 && (await vote.textContent()).includes("Hat Ihnen das geholfen?"), "the answer asks whether it helped");
  await vote.locator("button", { hasText: "Nein" }).click();
  await vote.locator("fieldset legend").waitFor();
  check((await vote.locator('input[type="radio"]').count()) === 5, "a thumbs down asks why, with five reasons as radio buttons");
  await axe(page, "the feedback form");
  await vote.locator('input[value="outdated"]').check();
  await vote.locator("textarea").fill("Der Preis stimmt nicht mehr. Rufen Sie mich an: 0176 1234567");
  await vote.locator('button[type="submit"]').click();
  await vote.locator("text=Danke für Ihre Rückmeldung.").waitFor();
  check(true, "the vote is thanked for");
  const summary = await (await staffLogin(base))("/staff/p/feedback/summary");
  const outdated = (summary.reasons || []).find((r) => r[0] === "outdated");
  check(summary.not_helpful === 1 && outdated && outdated[1] === 1, `staff see the vote and its reason (${JSON.stringify({ not_helpful: summary.not_helpful, outdated })})`);
  const comment = (summary.comments || [])[0]?.[4] || "";
  check(comment.includes("Preis stimmt nicht") && !comment.includes("1234567"), `with the comment, its phone number removed (${comment})`);

  // Plain language: the same question, answered in Einfache Sprache.
  await shadow(page, "#lotse-plain").check();
  const plain = await ask(page, "Was kostet ein Personalausweis?");
  check(plain !== fee && plain.includes("46,00 €"), "the plain-language toggle changes the answer, not the facts");
  await shadow(page, "#lotse-plain").uncheck();

  // Suggestions: a vague question gets clickable choices.
  await ask(page, "Ausweis");
  const chips = shadow(page, ".chips button");
  const nChips = await chips.count();
  check(nChips >= 2, `a vague question offers suggestion chips (${nChips})`);
  if (nChips > 0) {
    const label = await chips.first().textContent();
    const before = await messages(page, "bot").count();
    await chips.first().click();
    await page.waitForFunction((n) => document.querySelector("lotse-widget").shadowRoot.querySelectorAll('.msg[data-kind="bot"]').length > n, before);
    const user = await messages(page, "user").last().textContent();
    check(user.includes(label), "clicking a chip asks it");
  }

  // Markup is text, never HTML.
  await ask(page, '<img src=x onerror="window.__xss=1"><script>window.__xss=2</script><b>fett</b>');
  const injected = await page.evaluate(() => {
    const r = document.querySelector("lotse-widget").shadowRoot;
    return { img: r.querySelectorAll(".log img").length, script: r.querySelectorAll(".log script, .log b").length, xss: window.__xss ?? null };
  });
  check(injected.img === 0 && injected.script === 0 && injected.xss === null, "script and markup payloads are shown as text, not run");
  check((await messages(page, "user").last().textContent()).includes("<img src=x"), "the payload is displayed literally");
  await axe(page, "during a conversation");
  await page.screenshot({ path: join(artifacts, "widget-conversation.png") });

  // Language switch.
  await shadow(page, 'button[lang="en"]').click();
  check((await shadow(page, "form.ask button").textContent()) === "Send", "the language switch changes the interface to English");
  const en = await ask(page, "How much does a passport cost?");
  check(/€/.test(en) && /passport/i.test(en), "and the answers are in English");
  const enSources = (await lastBot(page).locator(".src").allTextContents()).join(" ");
  check(/As of: [A-Z][a-z]+ \d{4}/.test(enSources), "and the sources' as-of date too (As of: month year)");
  await shadow(page, 'button[lang="de"]').click();

  // A person: the queue state is shown.
  await shadow(page, ".human").click();
  await shadow(page, '.msg[data-kind="bot"] >> text=/Warteschlange|an der Reihe/').first().waitFor();
  check(true, "asking for a person shows the queue state");
  await axe(page, "during the handoff");
  await page.screenshot({ path: join(artifacts, "widget-handoff.png") });

  // Reload: the conversation resumes.
  const nUser = await messages(page, "user").count();
  await page.reload();
  await shadow(page, ".panel").waitFor();
  // The lines come from the server.
  await messages(page, "user").nth(nUser - 1).waitFor().catch(() => {});
  check(await messages(page, "user").count() === nUser, "after a reload the conversation is there again");
  const kept = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("lotse.")).map((k) => localStorage.getItem(k)).join(" "));
  check(await shadow(page, '.vote >> text=/Danke für Ihre Rückmeldung/').count() >= 1 && await shadow(page, ".vote button").count() >= 1,
    "the answer voted on stays thanked for after the reload, the others still ask");
  check(kept.includes('"id"') && !/Personalausweis|Reisepass|passport|46,00/i.test(kept), `the page's storage keeps the id, not what was said (${kept.slice(0, 160)})`);
  // A message typed while the lines are still on their way is drawn below them, once.
  await page.route("**/api/v1/conversations/*", async (route) => {
    if (route.request().method() === "GET") await new Promise((r) => setTimeout(r, 1500));
    await route.continue();
  });
  await page.reload();
  await shadow(page, ".panel").waitFor();
  await shadow(page, "#lotse-input").fill("Wie lange dauert es noch?");
  await shadow(page, "#lotse-input").press("Enter");
  await messages(page, "user").nth(nUser).waitFor();
  await page.unroute("**/api/v1/conversations/*");
  const typed = await messages(page, "user").allTextContents();
  check(typed.length === nUser + 1 && typed[nUser].includes("Wie lange dauert es noch?"),
    `a message typed before the conversation's lines arrive stands below them, once (${typed.length} lines)`);

  // Staff join and write: shown apart from the bot.
  const staff = await staffLogin(base);
  const q = await staff("/staff/api/queue");
  const h = q.items.find((i) => i.state === "waiting");
  await staff(`/staff/api/handoffs/${h.id}/claim`, {});
  await shadow(page, '.msg[data-kind="status"] >> text=/ist jetzt für Sie da/').first().waitFor();
  await staff(`/staff/api/handoffs/${h.id}/reply`, { text: "Guten Tag, hier ist Anna Schmidt." });
  await shadow(page, '.msg[data-kind="staff"]').first().waitFor();
  const staffText = await messages(page, "staff").first().textContent();
  check(staffText.includes("Anna Schmidt") && staffText.includes("hier ist"), "a staff message arrives, marked with the staff member's name");
  await page.screenshot({ path: join(artifacts, "widget-staff.png") });
  // A reload whose lines were read while the staff message arrived: the lines hold it and the
  // events after the number read before them bring it again (here: every event again). It is
  // shown once.
  await page.route("**/api/v1/conversations/*", async (route) => {
    if (route.request().method() !== "GET") return route.continue();
    const response = await route.fetch();
    const body = await response.json();
    await route.fulfill({ response, json: { ...body, last_event: 0 } });
  });
  await page.reload();
  await shadow(page, ".panel").waitFor();
  await messages(page, "staff").first().waitFor();
  await page.unroute("**/api/v1/conversations/*");
  await new Promise((r) => setTimeout(r, 1000));
  const staffLines = await messages(page, "staff").count();
  check(staffLines === 1, `a staff message in the lines read and in the events after them is shown once (${staffLines})`);

  // Escape closes and gives the focus back to the launcher.
  await shadow(page, "#lotse-input").press("Escape");
  const back = await page.evaluate(() => document.querySelector("lotse-widget").shadowRoot.activeElement?.className);
  check(back === "launcher" && await shadow(page, ".panel").isHidden(), "Escape closes the panel and focuses the launcher");

  // Delete: while the server cannot, the widget says so and keeps the conversation.
  await shadow(page, ".launcher").click();
  const users = await messages(page, "user").count();
  await page.route("**/api/v1/conversations/*", (route) =>
    route.request().method() === "DELETE" ? route.fulfill({ status: 503, contentType: "application/json", body: '{"error":{"code":"store_unavailable","message":"x"}}' }) : route.continue());
  await shadow(page, ".tools button").nth(1).click();
  await shadow(page, '.msg[data-kind="status"] >> text=/nicht gelöscht/').waitFor();
  check(await messages(page, "user").count() === users && users > 0, "a delete the server refused is not reported as done");
  await page.unroute("**/api/v1/conversations/*");
  await shadow(page, ".tools button").nth(1).click();
  await shadow(page, '.msg[data-kind="status"] >> text=/wurde gelöscht/').waitFor();
  const stored = await page.evaluate(() => Object.keys(localStorage).filter((k) => k.startsWith("lotse.")).map((k) => localStorage.getItem(k)));
  check(stored.length === 0 && await messages(page, "user").count() === 0, "delete clears the conversation here and on the server");

  // After an answered conversation, a new one offers the city's survey about conversations.
  const made = await (await staffLogin(base, "chef"))("/staff/p/feedback/editor/surveys/gespraech",
    { definition: 'title.de = "Wie war Ihr Gespräch mit Lotse?"\n[[sections]]\n[[sections.questions]]\nid = "geholfen"\nkind = "yes_no"\ntext.de = "Hat Lotse Ihnen geholfen?"\nrequired = true\n' }, "PUT");
  check(made.status === 201, `an administrator sets up the survey about conversations (${JSON.stringify(made)})`);
  await ask(page, "Was kostet ein Personalausweis?");
  await shadow(page, ".tools button").nth(0).click();
  const invite = shadow(page, '.msg[data-kind="status"] a');
  await invite.waitFor();
  const surveyHref = await invite.getAttribute("href");
  check(surveyHref.includes("/p/feedback/surveys/gespraech/form?channel=chat") && (await invite.textContent()).includes("Gespräch mit Lotse"),
    `a new conversation after an answered one offers the survey (${surveyHref})`);
  await axe(page, "survey offered after a conversation");
  const taking = await browser.newPage({ viewport: { width: 390, height: 844 } });
  await taking.goto(surveyHref);
  await taking.locator("lotse-survey >> label >> text=Ja").click();
  await taking.locator("lotse-survey >> button[type=submit]").click();
  await taking.locator("lotse-survey >> text=Danke für Ihre Teilnahme").waitFor();
  const tally = await (await staffLogin(base, "chef"))("/staff/p/feedback/editor/surveys/gespraech/export?format=json");
  check(tally.responses.length === 1 && tally.responses[0].channel === "chat" && tally.responses[0].answers.geholfen === true,
    "the answer is kept as one given after a conversation");
  await taking.close();

  // Small screens and zoom.
  const small = await browser.newPage({ viewport: { width: 320, height: 640 }, bypassCSP: true });
  await small.goto(`${base}/`);
  await shadow(small, ".launcher").click();
  await shadow(small, ".panel").waitFor();
  const box = await shadow(small, ".panel").boundingBox();
  check(box && box.width <= 320 && box.x >= 0, `usable at 320 px width (panel ${box && Math.round(box.width)} px)`);
  await small.screenshot({ path: join(artifacts, "widget-320px.png") });
  await axe(small, "320 px");

  // --- streaming: with the small language model (fetched by scripts/test), the facts show at
  // once and the generated sentences stream in before the final reply.
  const smallModel = "qwen2.5-coder-0.5b-instruct";
  if (existsSync(`models/${smallModel}/model.gguf`) || process.env.LOTSE_REQUIRE_MODELS) {
    const llm = await serve(config("widget-llm", true, `[llm]\nmode = "assist"\nmodel = "${smallModel}"\n`));
    servers.push(llm.child);
    const spage = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    await spage.goto(`${llm.base}/`);
    await shadow(spage, ".launcher").click();
    await shadow(spage, '.msg[data-kind="bot"]').first().waitFor();
    // Count the bot bubbles that appear: the facts' provisional one, then the final reply.
    await spage.evaluate(() => {
      window.__seen = { added: 0, streamed: false };
      const log = document.querySelector("lotse-widget").shadowRoot.querySelector(".log");
      new MutationObserver((ms) => {
        for (const m of ms) {
          for (const n of m.addedNodes) if (n.dataset && n.dataset.kind === "bot") window.__seen.added++;
          if (m.type === "attributes" && m.attributeName === "data-streaming") window.__seen.streamed = true;
        }
      }).observe(log, { childList: true, subtree: true, attributes: true, attributeFilter: ["data-streaming"] });
    });
    await ask(spage, "Kann man Wohngeld online beantragen?");
    // ask() returns at the first new bubble (here: the facts); wait for the final reply.
    await spage.waitForFunction(() => document.querySelector("lotse-widget").shadowRoot.querySelector(".busy").hidden, null, { timeout: 60000 });
    const text = (await lastBot(spage).textContent()) || "";
    const seen = await spage.evaluate(() => window.__seen);
    check(seen.added >= 2, `the facts are shown at once, before the model's answer is final (${seen.added} bubbles, streamed sentences: ${seen.streamed})`);
    check(text.length > 0 && await lastBot(spage).locator("a").count() > 0, "the final answer has its sources");
    await spage.screenshot({ path: join(artifacts, "widget-streaming.png") });
  } else {
    console.log(`skip streaming check: models/${smallModel} is not fetched`);
  }

  // --- outside staff hours: the callback form -------------------------------------------------
  const closed = await serve(config("widget-closed", false));
  servers.push(closed.child);
  const cpage = await browser.newPage({ viewport: { width: 1280, height: 900 }, bypassCSP: true });
  await cpage.goto(`${closed.base}/`);
  await shadow(cpage, ".launcher").click();
  await ask(cpage, "Was kostet ein Reisepass?");
  check((await shadow(cpage, ".vote").count()) === 0, "without the feedback plug-in no answer asks for a vote");
  await shadow(cpage, ".human").click();
  await shadow(cpage, "form.cb").waitFor();
  await axe(cpage, "callback form");
  await shadow(cpage, 'form.cb input[type="text"]').first().fill("03641 555123");
  await shadow(cpage, "form.cb button").click();
  await shadow(cpage, 'form.cb [role="alert"]').filter({ hasText: /./ }).waitFor();
  check((await shadow(cpage, 'form.cb [role="alert"]').textContent()).length > 0, "without consent the callback is refused with a message");
  await shadow(cpage, 'form.cb input[type="checkbox"]').check();
  await shadow(cpage, "form.cb button").click();
  await shadow(cpage, '.msg[data-kind="status"] >> text=/Wir melden uns/').waitFor();
  check(await shadow(cpage, "form.cb").count() === 0, "with consent the callback is confirmed with its slot");
  await cpage.screenshot({ path: join(artifacts, "widget-callback.png") });

  // --- a hostile host page on another origin -------------------------------------------------
  hosts = await hostPages(base, closed.base);
  const hostile = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await hostile.goto(`${hosts.base}/`);
  await shadow(hostile, ".launcher").waitFor();
  const look = await hostile.evaluate(() => {
    const l = document.querySelector("lotse-widget").shadowRoot.querySelector(".launcher");
    const cs = getComputedStyle(l);
    const own = getComputedStyle(document.getElementById("own"));
    const added = Object.getOwnPropertyNames(window).filter((k) => !window.__before.includes(k) && k !== "__before");
    return { color: cs.color, size: cs.fontSize, visible: l.getBoundingClientRect().width > 0, ownSize: own.fontSize, added };
  });
  check(look.visible && look.color === "rgb(255, 255, 255)" && look.size === "16px", `the host page's CSS does not reach the widget (${look.color}, ${look.size})`);
  check(look.ownSize === "40px", "the widget leaves the host page's own styles alone");
  check(look.added.length === 0, `no globals leak into the page (${look.added.join(", ") || "none"})`);
  await shadow(hostile, ".launcher").click();
  const crossOrigin = await ask(hostile, "Was kostet ein Personalausweis?");
  check(crossOrigin.includes("46,00 €"), "the widget works from another origin");
  await hostile.screenshot({ path: join(artifacts, "widget-hostile-page.png") });

  // --- a service's rating on a city page, by keyboard ---------------------------------------
  const rated = await browser.newPage({ viewport: { width: 390, height: 844 } });
  await rated.goto(`${hosts.base}/rating`);
  const star = (n) => rated.locator(`lotse-rating >> input[value="${n}"]`);
  await star(1).waitFor({ state: "attached" });
  check(await rated.locator("lotse-widget").count() === 0, "a rating tag renders no chat");
  await axe(rated, "service rating on a city page");
  await rated.locator("lotse-rating >> button[type=submit]").click();
  check((await rated.locator("lotse-rating >> p[role=status]").textContent()).includes("Sterne"), "sending without stars asks for them");
  await star(1).focus();
  for (let i = 0; i < 3; i++) await rated.keyboard.press("ArrowRight");
  check(await star(4).isChecked(), "the stars are chosen with the arrow keys (4)");
  await rated.screenshot({ path: join(artifacts, "rating-form.png") });
  await rated.keyboard.press("Tab");
  await rated.keyboard.type("Termine sind knapp, schreiben Sie an erika@example.org");
  await rated.keyboard.press("Tab");
  await rated.keyboard.press("Enter");
  await rated.locator("lotse-rating >> text=Danke für Ihre Bewertung").waitFor();
  await axe(rated, "service rating, sent");
  await rated.screenshot({ path: join(artifacts, "rating.png") });
  const fb = await (await staffLogin(base))("/staff/p/feedback/summary");
  const reisepass = (fb.ratings || []).find((r) => r[0] === "reisepass");
  check(reisepass && reisepass[1] === 1 && reisepass[3][3] === 1, `staff see the rating (${JSON.stringify(fb.ratings)})`);
  check(fb.rating_comments.length === 1 && fb.rating_comments[0][3].startsWith("Termine sind knapp") && !fb.rating_comments[0][3].includes("erika"),
    "with its comment, the e-mail address removed");

  // --- the suggestion box on a city page ------------------------------------------------------
  const suggest = await browser.newPage({ viewport: { width: 390, height: 844 } });
  await suggest.goto(`${hosts.base}/suggest`);
  const sbox = (sel) => suggest.locator(`lotse-suggestions >> ${sel}`);
  await sbox("textarea").waitFor();
  await axe(suggest, "suggestion box on a city page");
  const boxStatus = () => sbox("p[role=status]").textContent();
  await sbox("button[type=submit]").click();
  check((await boxStatus()).includes("beschreiben"), "an empty suggestion is refused with a message");
  await sbox("select").selectOption("digital");
  await sbox("textarea").fill("Bitte alle Formulare online ausfüllbar machen.");
  await sbox("input[type=email]").fill("erika@example.org");
  await sbox("button[type=submit]").click();
  check((await boxStatus()).includes("Einverständnis") && await sbox("input[type=checkbox]").evaluate((e) => e === e.getRootNode().activeElement),
    "an address without consent is refused, and the consent box gets the focus");
  await sbox("input[type=checkbox]").check();
  await sbox("button[type=submit]").click();
  await sbox("text=Ihr Vorschlag ist eingegangen").waitFor();
  await axe(suggest, "suggestion box, sent");
  const sent = await (await staffLogin(base, "chef"))("/staff/p/feedback/admin/suggestions");
  check(sent.suggestions.length === 1 && sent.suggestions[0].category === "digital" && sent.suggestions[0].email === "erika@example.org",
    "the suggestion reaches the administrators with the address given with consent");

  // --- kiosk ---------------------------------------------------------------------------------
  const kiosk = await browser.newPage({ viewport: { width: 1080, height: 1920 } });
  await kiosk.goto(`${hosts.base}/kiosk`);
  await shadow(kiosk, ".panel").waitFor();
  check(await shadow(kiosk, ".launcher").isHidden(), "the kiosk opens full screen, without a launcher");
  const kfee = await ask(kiosk, "Was kostet ein Personalausweis?");
  check(kfee.includes("46,00 €"), "the kiosk answers");
  const kbot = lastBot(kiosk);
  check(await kbot.locator("a").count() === 0, "the kiosk shows no links");
  await kbot.locator("img").first().waitFor();
  await kiosk.waitForFunction(() => [...document.querySelector("lotse-widget").shadowRoot.querySelectorAll(".log img")].every((i) => i.complete));
  const qrOk = await kbot.locator("img").evaluateAll((imgs) => imgs.length > 0 && imgs.every((img) => img.naturalWidth > 0));
  check(qrOk && (await kbot.textContent()).includes("https://"), "every source appears as text with a QR code that loads");
  const ksources = (await kbot.locator(".src").allTextContents()).join(" ");
  check(/\(Stand: \p{L}+ \d{4}\): https:\/\//u.test(ksources), "in the kiosk the as-of date stands next to the source title");
  const fontSize = await shadow(kiosk, ".root").evaluate((e) => getComputedStyle(e).fontSize);
  check(fontSize === "24px", `large type in the kiosk (${fontSize})`);
  await kiosk.screenshot({ path: join(artifacts, "kiosk.png") });
  await kiosk.waitForTimeout(6500);
  const after = await kiosk.evaluate(() => {
    const r = document.querySelector("lotse-widget").shadowRoot;
    return { users: r.querySelectorAll('.msg[data-kind="user"]').length, text: r.querySelector(".log").textContent, stored: Object.keys(sessionStorage).filter((k) => k.startsWith("lotse.conversation") && !k.endsWith(".open")).map((k) => sessionStorage.getItem(k)) };
  });
  check(after.users === 0 && !after.text.includes("46,00"), "after inactivity the kiosk starts afresh and shows nothing of the last visitor");

  // A visitor waiting for a person keeps their place: waiting is no inactivity.
  const waitingBefore = (await (await staffLogin(base))("/staff/api/queue")).items.filter((i) => i.state === "waiting").length;
  await shadow(kiosk, ".human").click();
  await shadow(kiosk, '.msg[data-kind="bot"] >> text=/Warteschlange|an der Reihe/').first().waitFor();
  await kiosk.waitForTimeout(6500);
  const stillQueued = await shadow(kiosk, '.msg[data-kind="bot"] >> text=/Warteschlange|an der Reihe/').count();
  const waitingAfter = (await (await staffLogin(base))("/staff/api/queue")).items.filter((i) => i.state === "waiting").length;
  check(stillQueued > 0 && waitingAfter === waitingBefore + 1, `a queued visitor's place outlasts the kiosk's idle time (${waitingBefore} → ${waitingAfter} waiting)`);

  // Outside hours: a callback asked for at the kiosk stays with the city after the reset.
  const kclosed = await browser.newPage({ viewport: { width: 1080, height: 1920 } });
  await kclosed.goto(`${hosts.base}/kiosk-closed`);
  await shadow(kclosed, ".human").click();
  await shadow(kclosed, "form.cb").waitFor();
  await shadow(kclosed, 'form.cb input[type="text"]').first().fill("03641 555777");
  await shadow(kclosed, 'form.cb input[type="checkbox"]').check();
  await shadow(kclosed, "form.cb button").click();
  await shadow(kclosed, '.msg[data-kind="status"] >> text=/Wir melden uns/').waitFor();
  await kclosed.waitForTimeout(6500);
  const cleared = await kclosed.evaluate(() => document.querySelector("lotse-widget").shadowRoot.querySelector(".log").textContent);
  const callbacks = await (await staffLogin(closed.base))("/staff/api/callbacks");
  check(!cleared.includes("Wir melden uns") && JSON.stringify(callbacks).includes("03641 555777"),
    "after the kiosk's reset the next visitor sees nothing of it, and the callback is still in the console");
  const own = await fetch(`${base}/kiosk`);
  check(own.ok && (await own.text()).includes('data-mode="kiosk"'), "/kiosk serves the terminal page");
  check(statSync(join(artifacts, "kiosk.png")).size > 0, "screenshots are saved in e2e/artifacts");
} catch (e) {
  fail(e);
} finally {
  await browser.close();
  for (const s of servers) s.kill("SIGTERM");
  if (hosts) hosts.server.close();
  rmSync(work, { recursive: true, force: true });
}
console.log(failed() === 0 ? "e2e widget: all checks passed" : `e2e widget: ${failed()} failed`);
process.exit(failed() === 0 ? 0 : 1);
