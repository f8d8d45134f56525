//! Finds the line of a key in a TOML source so that validation problems can be reported as
//! `file:line`. The `toml` crate reports spans for syntax errors only; for semantic problems
//! ("this LeiKa key has 12 digits") we look the key up in the text the editor wrote.

/// The 1-based line of `key` inside the `index`-th `[[array]]` table (or the top level when
/// `array` is `None`). Falls back to the array header, then to line 1.
pub fn line_of(src: &str, array: Option<(&str, usize)>, key: &str) -> usize {
    let lines: Vec<&str> = src.lines().collect();
    let (start, header_line) = match array {
        None => (0, 1),
        Some((name, index)) => {
            let header = format!("[[{name}]]");
            let table = format!("[{name}]");
            match lines
                .iter()
                .enumerate()
                .filter(|(_, l)| {
                    let t = l.trim();
                    t == header || t == table
                })
                .nth(index)
            {
                Some((i, _)) => (i + 1, i + 1),
                // An inline array (`fees = [{...}]`): report the key that holds it.
                None => return line_of(src, None, name),
            }
        }
    };
    for (i, line) in lines.iter().enumerate().skip(start) {
        let t = line.trim_start();
        // The next table header ends the keys of this table.
        if t.starts_with('[') {
            break;
        }
        if let Some(rest) = t.strip_prefix(key)
            && rest.trim_start().starts_with('=')
        {
            return i + 1;
        }
    }
    header_line
}

/// The 1-based line and column of a byte offset.
pub fn position(src: &str, offset: usize) -> (usize, usize) {
    let offset = offset.min(src.len());
    let before = &src[..offset];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

#[cfg(test)]
mod tests {
    use super::*;

    const SRC: &str = "id = \"x\"\nleika = \"123\"\n\n[[fees]]\namount = 1.0\n\n[[fees]]\ncondition = \"a\"\namount = 2.0\n\n[opening_hours]\nmo = \"kaputt\"\n";

    #[test]
    fn finds_keys() {
        assert_eq!(line_of(SRC, None, "leika"), 2);
        assert_eq!(line_of(SRC, None, "missing"), 1);
        assert_eq!(line_of(SRC, Some(("fees", 0)), "amount"), 5);
        assert_eq!(line_of(SRC, Some(("fees", 1)), "amount"), 9);
        assert_eq!(line_of(SRC, Some(("fees", 1)), "nothing"), 7);
        assert_eq!(line_of(SRC, Some(("opening_hours", 0)), "mo"), 12);
        // `amount` of the first table must not be found in the second.
        assert_eq!(line_of(SRC, Some(("fees", 0)), "condition"), 4);
    }

    #[test]
    fn positions() {
        assert_eq!(position("ab\ncd", 4), (2, 2));
        assert_eq!(position("ab", 0), (1, 1));
    }
}
