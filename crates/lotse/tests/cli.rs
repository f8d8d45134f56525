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
