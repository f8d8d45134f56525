//! HTML from service databases reduced to clean text. Paragraphs become blank-line separated
//! blocks, list items become `- ` (or `1. `) lines, links keep their target as `text (url)`, and
//! everything else (scripts, styles, attributes, unknown tags) is dropped. Parsing is html5ever's
//! (through `scraper`), so broken markup is repaired the way a browser would; the walk over the
//! tree is ours because no crate renders to this exact plain form.

use scraper::{Html, Node};

/// Converts an HTML fragment to plain text with lists and links kept.
pub fn html_to_text(html: &str) -> String {
    let doc = Html::parse_fragment(html);
    let mut out = Out::default();
    walk(doc.tree.root(), &mut out, &mut Vec::new());
    out.finish()
}

/// The items of a reduced list, one per line, with `- ` markers removed; other lines are kept as
/// items too (a module that is a plain sentence becomes one item).
pub(crate) fn list_items(text: &str) -> Vec<String> {
    text.lines().map(|l| l.trim().trim_start_matches("- ").trim().to_string()).filter(|l| !l.is_empty()).collect()
}

#[derive(Default)]
struct Out {
    text: String,
    /// A pending break to emit before the next text: 1 = newline, 2 = blank line.
    pending_break: u8,
}

impl Out {
    fn push_text(&mut self, s: &str) {
        let collapsed: String = collapse_ws(s);
        if collapsed.trim().is_empty() {
            if !self.text.is_empty()
                && !self.text.ends_with([' ', '\n'])
                && self.pending_break == 0
                && !collapsed.is_empty()
            {
                self.text.push(' ');
            }
            return;
        }
        self.flush_break();
        let mut piece = collapsed.as_str();
        if self.text.is_empty() || self.text.ends_with(['\n', ' ']) {
            piece = piece.trim_start();
        }
        self.text.push_str(piece);
    }

    fn flush_break(&mut self) {
        if self.pending_break > 0 && !self.text.is_empty() {
            while self.text.ends_with(' ') {
                self.text.pop();
            }
            let have = self.text.chars().rev().take_while(|&c| c == '\n').count() as u8;
            for _ in have..self.pending_break {
                self.text.push('\n');
            }
        }
        self.pending_break = 0;
    }

    fn block_break(&mut self, n: u8) {
        self.pending_break = self.pending_break.max(n);
    }

    fn finish(self) -> String {
        self.text.lines().map(str::trim_end).collect::<Vec<_>>().join("\n").trim().to_string()
    }
}

fn collapse_ws(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut last_space = false;
    for c in s.chars() {
        // Zero-width spaces and similar invisible characters appear in real exports.
        if matches!(c, '\u{200b}' | '\u{200c}' | '\u{200d}' | '\u{feff}') {
            continue;
        }
        if c.is_whitespace() {
            if !last_space {
                out.push(' ');
            }
            last_space = true;
        } else {
            out.push(c);
            last_space = false;
        }
    }
    out
}

/// List context: `None` for `<ul>`, `Some(n)` for the next number of an `<ol>`.
fn walk(node: ego_tree::NodeRef<'_, Node>, out: &mut Out, lists: &mut Vec<Option<usize>>) {
    match node.value() {
        Node::Text(t) => out.push_text(t),
        Node::Element(e) => {
            let name = e.name();
            match name {
                "script" | "style" | "head" | "template" | "noscript" => return,
                "br" => {
                    out.block_break(1);
                    return;
                }
                "ul" | "ol" => {
                    out.block_break(1);
                    lists.push(if name == "ol" { Some(1) } else { None });
                    for child in node.children() {
                        walk(child, out, lists);
                    }
                    lists.pop();
                    out.block_break(2);
                    return;
                }
                "li" => {
                    out.block_break(1);
                    out.flush_break();
                    let depth = lists.len().saturating_sub(1);
                    let marker = match lists.last_mut() {
                        Some(Some(n)) => {
                            let m = format!("{n}. ");
                            *n += 1;
                            m
                        }
                        _ => "- ".to_string(),
                    };
                    out.text.push_str(&"  ".repeat(depth));
                    out.text.push_str(&marker);
                    for child in node.children() {
                        walk(child, out, lists);
                    }
                    out.block_break(1);
                    return;
                }
                "a" => {
                    let before = out.text.len();
                    for child in node.children() {
                        walk(child, out, lists);
                    }
                    let label = out.text[before..].trim().to_string();
                    if let Some(href) = e.attr("href").map(str::trim) {
                        let web = href.starts_with("http://") || href.starts_with("https://");
                        let mail = href.strip_prefix("mailto:");
                        if web && label != href {
                            if label.is_empty() {
                                out.push_text(href);
                            } else {
                                out.text.push_str(&format!(" ({href})"));
                            }
                        } else if let Some(addr) = mail
                            && !label.contains(addr)
                        {
                            out.text.push_str(&format!(" ({addr})"));
                        }
                    }
                    return;
                }
                _ => {}
            }
            let block = matches!(
                name,
                "p" | "div"
                    | "h1"
                    | "h2"
                    | "h3"
                    | "h4"
                    | "h5"
                    | "h6"
                    | "table"
                    | "tr"
                    | "section"
                    | "article"
                    | "blockquote"
                    | "dl"
                    | "dt"
                    | "dd"
            );
            if block {
                out.block_break(2);
            }
            for child in node.children() {
                walk(child, out, lists);
            }
            if matches!(name, "td" | "th") {
                out.push_text(" ");
            }
            if block {
                out.block_break(2);
            }
        }
        _ => {
            for child in node.children() {
                walk(child, out, lists);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reduces_html_to_text() {
        let table: &[(&str, &str)] = &[
            ("<p>Hallo <strong>Welt</strong></p><p>Zweiter</p>", "Hallo Welt\n\nZweiter"),
            ("<ul><li>Eins</li><li>Zwei</li></ul>", "- Eins\n- Zwei"),
            ("<ol><li>A</li><li>B</li></ol>", "1. A\n2. B"),
            ("<p>Siehe <a href=\"https://x.de/a\">Formular</a>.</p>", "Siehe Formular (https://x.de/a)."),
            ("<a href=\"https://x.de\">https://x.de</a>", "https://x.de"),
            ("<p>a<br>b</p>", "a\nb"),
            ("<script>alert(1)</script>Text", "Text"),
            ("<p>\u{200b}Sie &amp; wir&nbsp;hier</p>", "Sie & wir hier"),
            ("<p>offen <b>nicht geschlossen", "offen nicht geschlossen"),
            ("<a href=\"javascript:alert(1)\">klick</a>", "klick"),
            ("<a href=\"mailto:a@b.de\">Mail</a>", "Mail (a@b.de)"),
        ];
        for (html, want) in table {
            assert_eq!(&html_to_text(html), want, "html {html:?}");
        }
    }
}
