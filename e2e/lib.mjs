// Shared parts of the end-to-end tests: starting `lotse serve` with a throw-away configuration
// and database, a citizen client of the API and events stream, headless Chromium, axe-core, and
// the checks' bookkeeping.

import { spawn, execFileSync } from "node:child_process";
import { mkdirSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { createRequire } from "node:module";
import { chromium } from "playwright-core";

const axePath = createRequire(import.meta.url).resolve("axe-core/axe.min.js");

// axe-core's WCAG 2.1 A/AA rules on the page as it is now; prints what it found.
export async function axe(page, what) {
  await page.addScriptTag({ path: axePath });
  const result = await page.evaluate(async () => {
    const r = await window.axe.run(document, { runOnly: { type: "tag", values: ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] } });
    return r.violations.map((v) => `${v.id}: ${v.nodes.map((n) => n.target.join(" ")).slice(0, 3).join(", ")}`);
  });
  for (const v of result) console.log(`     axe: ${v}`);
  check(result.length === 0, `axe-core finds no WCAG 2.1 AA violation: ${what}`);
}

export const lotse = resolve(process.argv[2] || "target/release/lotse");
export const artifacts = resolve("e2e/artifacts");
mkdirSync(artifacts, { recursive: true });
export const work = join(tmpdir(), `lotse-e2e-${process.pid}`);
rmSync(work, { recursive: true, force: true });
mkdirSync(work, { recursive: true });

let failures = 0;
export const check = (ok, what) => {
  console.log(`${ok ? "ok  " : "FAIL"} ${what}`);
  if (!ok) failures++;
};
export const fail = (e) => { console.log(`FAIL ${e.stack || e}`); failures++; };
export const failed = () => failures;

export const freePort = () => new Promise((res) => {
  const s = createServer();
  s.listen(0, "127.0.0.1", () => { const p = s.address().port; s.close(() => res(p)); });
});

// Reachable around the clock from yesterday to tomorrow (open), or not before the day after
// tomorrow (closed).
export function config(name, open, extra = "") {
  const day = (d) => {
    const t = new Date(Date.now() + d * 86400000);
    return new Intl.DateTimeFormat("sv-SE", { timeZone: "Europe/Berlin" }).format(t);
  };
  const exceptions = open
    ? [-1, 0, 1].map((d) => `[[handoff.schedule.exceptions]]\ndate = "${day(d)}"\nhours = "00:00-24:00"\n`).join("\n")
    : `[[handoff.schedule.exceptions]]\ndate = "${day(2)}"\nhours = "09:00-12:00"\n`;
  const text = `[handoff]\ndatabase = "sqlite:${work}/${name}.db"\nsecure_cookies = false\n\n[handoff.schedule]\ngeneral = "buergerservice"\n\n[[handoff.schedule.teams]]\nid = "buergerservice"\nname = "Bürgerservice"\noffices = ["buergerservice"]\n\n${exceptions}`;
  const path = join(work, `${name}.toml`);
  writeFileSync(path, extra + "\n" + text);
  return path;
}

export async function serve(configPath) {
  execFileSync(lotse, ["--config", configPath, "staff", "add", "anna", "--display-name", "Anna Schmidt"], {
    env: { ...process.env, LOTSE_STAFF_PASSWORD: "ein gutes Passwort" },
    stdio: "ignore",
  });
  execFileSync(lotse, ["--config", configPath, "staff", "add", "chef", "--role", "admin"], {
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
    try { if ((await fetch(`${base}/health`)).ok) return { child, base, config: configPath }; } catch (_) { /* not yet */ }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error("lotse serve did not start");
}

// A WAV file (16-bit PCM, mono, 16 kHz) of `seconds` of silence: a caller who says nothing.
export function silence(seconds) {
  const n = Math.round(seconds * 16000);
  const b = Buffer.alloc(44 + 2 * n);
  b.write("RIFF", 0); b.writeUInt32LE(36 + 2 * n, 4); b.write("WAVE", 8);
  b.write("fmt ", 12); b.writeUInt32LE(16, 16); b.writeUInt16LE(1, 20); b.writeUInt16LE(1, 22);
  b.writeUInt32LE(16000, 24); b.writeUInt32LE(32000, 28); b.writeUInt16LE(2, 32); b.writeUInt16LE(16, 34);
  b.write("data", 36); b.writeUInt32LE(2 * n, 40);
  return b;
}

// The citizen: the API and the events stream, as the widget uses them.
export async function citizen(base) {
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

export const launch = () => chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
    "--disable-background-networking", "--disable-component-update", "--disable-sync"],
  // playwright gives each launch a new, empty profile directory.
});
