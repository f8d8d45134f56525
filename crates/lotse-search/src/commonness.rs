//! How common a word is in everyday language, for the words no record uses.
//!
//! A word no service knows weighed as a topic the knowledge lacks, whatever the word: "Tasche"
//! in "Mir wurde die Tasche mit dem Führerschein geklaut" as much as "Waffenschein" in "Wo
//! bekomme ich den kleinen Waffenschein?". Citizens tell their story in everyday words (a bag,
//! the garden, grandpa, the job); the topic a city's knowledge lacks is mostly a rarer, more
//! specific word. This is inverse document frequency again, over a general corpus instead of
//! the records: [`Commonness`] holds the frequency of common words of German and English, and an
//! unknown word weighs less the more common it is ([`Commonness::unknown_factor`]).
//!
//! The frequencies are wordfreq's (Robyn Speer; data CC BY-SA 4.0, from Wikipedia, subtitles,
//! news, web text and more), its `large_de` and `large_en` lists, which `scripts/fetch-models`
//! takes from the PyPI package and `lotse-app` reads at start-up. The format is a gzip'd
//! MessagePack array: a header (`{"format": "cB", "version": 1}`), then one list of words for
//! each centibel of frequency, most frequent first (list `i` holds the words of frequency
//! 10^(−i/100)).

use std::collections::HashMap;
use std::io::Read;

use crate::analysis::fold;

/// Words at least this common (Zipf scale: log10 of occurrences per billion words) are kept;
/// rarer ones count as rare.
const KEEP_FROM_ZIPF: f32 = 3.0;

/// An unknown word up to this common weighs fully ...
const RARE_ZIPF: f32 = 3.0;
/// ... and one this common or more, [`COMMON_FACTOR`] of that; linear between.
const COMMON_ZIPF: f32 = 5.0;
/// The least an unknown word weighs, relative to a rare one.
pub const COMMON_FACTOR: f32 = 0.35;

/// Word frequencies of the languages questions are asked in.
#[derive(Default)]
pub struct Commonness {
    /// By language ("de", "en"): the folded word and its Zipf frequency.
    zipf: HashMap<&'static str, HashMap<String, f32>>,
}

#[derive(Debug, thiserror::Error)]
#[error("word frequencies ({lang}): {message}")]
pub struct CommonnessError {
    lang: String,
    message: String,
}

impl Commonness {
    /// Adds a wordfreq list (`large_de.msgpack.gz`) for `lang` ("de" or "en"). Read one list
    /// at a time, and only as far as the words are common enough to keep.
    pub fn add_wordfreq(&mut self, lang: &'static str, gzipped: &[u8]) -> Result<(), CommonnessError> {
        let err = |message: String| CommonnessError { lang: lang.to_string(), message };
        let mut rd = std::io::BufReader::new(flate2::read::GzDecoder::new(gzipped));
        let lists = rmp::decode::read_array_len(&mut rd).map_err(|e| err(format!("not a wordfreq list: {e}")))?;
        // The header: {"format": "cB", "version": 1}.
        let fields = rmp::decode::read_map_len(&mut rd).map_err(|e| err(format!("no cB header: {e}")))?;
        let mut header = HashMap::new();
        for _ in 0..fields {
            let key = read_string(&mut rd).map_err(&err)?;
            let value = match rmp::decode::read_marker(&mut rd).map_err(|e| err(format!("{e:?}")))? {
                rmp::Marker::FixPos(n) => n.to_string(),
                m => read_string_after(&mut rd, m).map_err(&err)?,
            };
            header.insert(key, value);
        }
        if header.get("format").map(String::as_str) != Some("cB") {
            return Err(err(format!("not a cB list: {header:?}")));
        }
        let words = self.zipf.entry(lang).or_default();
        for i in 0..lists.saturating_sub(1) {
            let zipf = 9.0 - i as f32 / 100.0;
            if zipf < KEEP_FROM_ZIPF {
                break;
            }
            let n = rmp::decode::read_array_len(&mut rd).map_err(|e| err(format!("list {i}: {e}")))?;
            for _ in 0..n {
                let w = read_string(&mut rd).map_err(&err)?;
                // Folded as the search folds a question; the more common spelling wins.
                words.entry(fold(&w)).or_insert(zipf);
            }
        }
        Ok(())
    }

    /// Adds words with their Zipf frequency directly (tests, another source).
    pub fn add_words<'a>(&mut self, lang: &'static str, words: impl IntoIterator<Item = (&'a str, f32)>) {
        let map = self.zipf.entry(lang).or_default();
        for (w, z) in words {
            map.entry(fold(w)).or_insert(z);
        }
    }

    /// How many words of `lang` it knows as common.
    pub fn len(&self, lang: &str) -> usize {
        self.zipf.get(lang).map_or(0, HashMap::len)
    }

    /// The Zipf frequency of a folded word in `lang`, where it is common enough to be kept.
    pub fn zipf(&self, lang: &str, folded: &str) -> Option<f32> {
        self.zipf.get(lang)?.get(folded).copied()
    }

    /// How much an unknown word weighs as a topic, relative to a rare word: 1 for a rare word,
    /// down to [`COMMON_FACTOR`] for an everyday one.
    pub fn unknown_factor(&self, lang: &str, folded: &str) -> f32 {
        let Some(z) = self.zipf(lang, folded) else { return 1.0 };
        let t = ((z - RARE_ZIPF) / (COMMON_ZIPF - RARE_ZIPF)).clamp(0.0, 1.0);
        COMMON_FACTOR + (1.0 - t) * (1.0 - COMMON_FACTOR)
    }
}

/// A MessagePack string.
fn read_string(rd: &mut impl Read) -> Result<String, String> {
    let marker = rmp::decode::read_marker(rd).map_err(|e| format!("{e:?}"))?;
    read_string_after(rd, marker)
}

/// A MessagePack string whose marker was read.
fn read_string_after(rd: &mut impl Read, marker: rmp::Marker) -> Result<String, String> {
    let len = match marker {
        rmp::Marker::FixStr(n) => u32::from(n),
        rmp::Marker::Str8 => u32::from(rmp::decode::RmpRead::read_data_u8(rd).map_err(|e| e.to_string())?),
        rmp::Marker::Str16 => u32::from(rmp::decode::RmpRead::read_data_u16(rd).map_err(|e| e.to_string())?),
        rmp::Marker::Str32 => rmp::decode::RmpRead::read_data_u32(rd).map_err(|e| e.to_string())?,
        m => return Err(format!("a string was expected, not {m:?}")),
    };
    // A word is short; a length beyond this is a broken file, not a word.
    if len > 1 << 16 {
        return Err(format!("a string of {len} bytes"));
    }
    let mut buf = vec![0; len as usize];
    rd.read_exact(&mut buf).map_err(|e| e.to_string())?;
    String::from_utf8(buf).map_err(|e| e.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pack(buckets: &[&[&str]]) -> Vec<u8> {
        // A header map, then the buckets, as wordfreq writes them.
        let mut raw = Vec::new();
        rmp::encode::write_array_len(&mut raw, buckets.len() as u32 + 1).unwrap();
        rmp::encode::write_map_len(&mut raw, 2).unwrap();
        rmp::encode::write_str(&mut raw, "format").unwrap();
        rmp::encode::write_str(&mut raw, "cB").unwrap();
        rmp::encode::write_str(&mut raw, "version").unwrap();
        rmp::encode::write_uint(&mut raw, 1).unwrap();
        for b in buckets {
            rmp::encode::write_array_len(&mut raw, b.len() as u32).unwrap();
            for w in *b {
                rmp::encode::write_str(&mut raw, w).unwrap();
            }
        }
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &raw).unwrap();
        gz.finish().unwrap()
    }

    #[test]
    fn everyday_words_weigh_less_than_rare_ones() {
        // Bucket i holds the words of Zipf 9 - i/100: "die" 9.0, "tasche" 4.5 (bucket 450).
        let mut buckets: Vec<&[&str]> = vec![&[]; 601];
        buckets[0] = &["die"];
        buckets[450] = &["Tasche", "tasche"];
        buckets[580] = &["Mülltonnen"];
        let mut c = Commonness::default();
        c.add_wordfreq("de", &pack(&buckets)).unwrap();
        assert_eq!(c.len("de"), 3);
        assert!((c.zipf("de", "tasche").unwrap() - 4.5).abs() < 1e-4);
        assert!((c.zipf("de", "muelltonnen").unwrap() - 3.2).abs() < 1e-4, "folded as questions are");
        assert_eq!(c.unknown_factor("de", "die"), COMMON_FACTOR);
        let bag = c.unknown_factor("de", "tasche");
        assert!(bag > COMMON_FACTOR && bag < 0.6, "{bag}");
        assert_eq!(c.unknown_factor("de", "waffenschein"), 1.0, "not among the common words: rare");
        assert_eq!(c.unknown_factor("en", "tasche"), 1.0, "another language's list");
    }

    #[test]
    fn a_file_of_another_kind_is_an_error_not_a_panic() {
        let mut c = Commonness::default();
        assert!(c.add_wordfreq("de", b"not gzip").is_err());
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        std::io::Write::write_all(&mut gz, &[0x93, 0x01, 0x02, 0x03]).unwrap();
        assert!(c.add_wordfreq("de", &gz.finish().unwrap()).is_err());
    }
}
