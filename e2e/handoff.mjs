// End-to-end: the staff handoff in a real browser. `lotse serve` runs with its embedded SQLite
// database; a citizen talks to the API and its events stream (as the widget does); a staff
// member works in the console at /staff in headless Chromium (Debian's, driven by
// playwright-core). Screenshots go to e2e/artifacts/.
//
//   node e2e/handoff.mjs target/release/lotse
//
// Exit code 0 when every check held; each check prints one line.

import { spawn, execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const axePath = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

// axe-core's WCAG 2.1 A/AA rules on the page as it is now; prints what it found.
async function axe(page, what) {
  await page.addScriptTag({ path: axePath });
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
    return r.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`);
  });
  for (const v of result) console.log(`     axe: ${v}`);
  check(result.length === 0, `axe-core finds no WCAG 2.1 AA violation: ${what}`);
}

const lotse = resolve(process.argv[2] || "target/release/lotse");
const artifacts = resolve("e2e/artifacts");
mkdirSync(artifacts, { recursive: true });
const work = join(tmpdir(), `lotse-e2e-${process.pid}`);
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

let failures = 0;
const check = (ok, what) => {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures++;
};

const freePort = () => new Promise((res) => {
  const s = createServer();
  s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => res(p)); });
});

// Reachable around the clock from yesterday to tomorrow (open), or not before the day after
// tomorrow (closed).
function config(name, open) {
  const day = (d) => {
    const t = new Date(Date.now() + d * 86400000);
    return new Intl.DateTimeFormat("sv-SE", { timeZone: "Europe/Berlin" }).format(t);
  };
  const exceptions = open
    ? [-1, 0, 1].map((d) => `[[handoff.schedule.exceptions]]\ndate = "${day(d)}"\nhours = "00:00-24:00"\n`).join("\n")
    : `[[handoff.schedule.exceptions]]\ndate = "${day(2)}"\nhours = "09:00-12:00"\n`;
  const text = `[handoff]\ndatabase = "sqlite:${work}/${name}.db"\nsecure_cookies = false\n\n[handoff.schedule]\ngeneral = "buergerservice"\n\n[[handoff.schedule.teams]]\nid = "buergerservice"\nname = "Bürgerservice"\noffices = ["buergerservice"]\n\n${exceptions}`;
  const path = join(work, `${name}.toml`);
  writeFileSync(path, text);
  return path;
}

async function serve(configPath) {
  execFileSync(lotse, ["--config", configPath, "staff", "add", "anna", "--display-name", "Anna Schmidt"], {
    env: { ...process.env, LOTSE_STAFF_PASSWORD: "ein gutes Passwort" },
    stdio: "ignore",
  });
  const port = await freePort();
  const child = spawn(lotse, ["--no-embeddings", "--config", configPath, "serve", "--addr", `127.0.0.1:${port}`], {
    stdio: ["ignore", "ignore", "inherit"],
    env: { ...process.env, RUST_LOG: "warn" },
  });
  const base = `http://localhost:${port}`;
  for (let i = 0; i < 600; i++) {
    try { if ((await fetch(`${base}/health`)).ok) return { child, base }; } catch (_) { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("lotse serve did not start");
}

// The citizen: the API and the events stream, as the widget uses them.
async function citizen(base) {
  const r = await fetch(`${base}/api/v1/conversations`, { method: "POST" });
  const { id } = await r.json();
  const events = [];
  const controller = new AbortController();
  const res = await fetch(`${base}/api/v1/conversations/${id}/events`, { signal: controller.signal });
  (async () => {
    const reader = res.body.getReader();
    const dec = new TextDecoder();
    let buf = "";
    let name = "";
    try {
      for (;;) {
        const { value, done } = await reader.read();
        if (done) return;
        buf += dec.decode(value, { stream: true });
        let i;
        while ((i = buf.indexOf("\n")) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 1);
          if (line.startsWith("event: ")) name = line.slice(7);
          else if (line.startsWith("data: ")) events.push({ name, data: JSON.parse(line.slice(6)) });
        }
      }
    } catch (_) { /* aborted */ }
  })();
  const say = async (text) => {
    const r = await fetch(`${base}/api/v1/conversations/${id}/messages`, {
      method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ text }),
    });
    return r.json();
  };
  const waitFor = async (pred, what, ms = 10000) => {
    const end = Date.now() + ms;
    while (Date.now() < end) {
      const e = events.find(pred);
      if (e) return e;
      await new Promise((r) => setTimeout(r, 50));
    }
    throw new Error(`no ${what} event`);
  };
  return { id, events, say, waitFor, close: () => controller.abort() };
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  // playwright gives each launch a new, empty profile directory.
});
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

  // --- outside staff hours --------------------------------------------------------------------
  const closedServer = await serve(config("closed", false));
  servers.push(closedServer.child);
  const d = await citizen(closedServer.base);
  await d.say("Ich habe meinen Personalausweis verloren");
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
  d.close();
} catch (e) {
  console.log(`FAIL ${e.stack || e}`);
  failures++;
} finally {
  await browser.close();
  for (const s of servers) s.kill("SIGTERM");
  rmSync(work, { recursive: true, force: true });
}
console.log(failures === 0 ? "e2e handoff: all checks passed" : `e2e handoff: ${failures} failed`);
process.exit(failures === 0 ? 0 : 1);
