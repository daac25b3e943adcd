//! Line arithmetic over a YAML text, and [`Splice`]s: byte ranges replaced in one pass.

/// Line starts of a text, for byte offset <-> line conversions.
pub(crate) struct LineIndex {
    starts: Vec<usize>,
}

impl LineIndex {
    pub(crate) fn new(text: &str) -> Self {
        let mut starts = vec![0];
        starts.extend(
            text.match_indices('\n')
                .map(|(i, _)| i + 1)
                .filter(|&i| i < text.len()),
        );
        LineIndex { starts }
    }

    pub(crate) fn count(&self) -> usize {
        self.starts.len()
    }

    pub(crate) fn line_of(&self, offset: usize) -> usize {
        self.starts
            .partition_point(|&start| start <= offset)
            .saturating_sub(1)
    }

    pub(crate) fn start(&self, line: usize) -> usize {
        self.starts[line]
    }

    pub(crate) fn text<'t>(&self, text: &'t str, line: usize) -> &'t str {
        let end = self.starts.get(line + 1).copied().unwrap_or(text.len());
        &text[self.starts[line]..end]
    }
}

/// The line (from 1, counting line feeds) of the first carriage return that no line feed
/// follows.
pub(crate) fn lone_carriage_return(text: &str) -> Option<usize> {
    let bytes = text.as_bytes();
    let at =
        (0..bytes.len()).find(|&at| bytes[at] == b'\r' && bytes.get(at + 1) != Some(&b'\n'))?;
    Some(bytes[..at].iter().filter(|&&byte| byte == b'\n').count() + 1)
}

/// Whether a line holds nothing but spaces and maybe a comment.
pub(crate) fn is_blank_or_comment(line: &str) -> bool {
    let trimmed = line.trim();
    trimmed.is_empty() || trimmed.starts_with('#')
}

/// The number of spaces a line starts with.
pub(crate) fn indent_of(line: &str) -> usize {
    line.len() - line.trim_start_matches(' ').len()
}

/// The start of the first line after `line` that holds content and for which `ends` says the
/// block is over (given its indentation and its text without the indentation); the end of the
/// text when there is none. Blank and comment lines never end a block.
pub(crate) fn block_end(
    text: &str,
    lines: &LineIndex,
    line: usize,
    ends: impl Fn(usize, &str) -> bool,
) -> usize {
    for next in line + 1..lines.count() {
        let content = lines.text(text, next);
        let indent = indent_of(content);
        if !is_blank_or_comment(content) && ends(indent, &content[indent..]) {
            return lines.start(next);
        }
    }
    text.len()
}

/// Moves `end` back over blank and comment lines, never into line `first`: comments above a
/// key belong to that key, not to the entry before it.
pub(crate) fn trim_trailing(text: &str, lines: &LineIndex, first: usize, mut end: usize) -> usize {
    while end > 0 {
        let last = lines.line_of(end - 1);
        if last <= first || !is_blank_or_comment(lines.text(text, last)) {
            break;
        }
        end = lines.start(last);
    }
    end
}

/// The leading lines of `text` that are blank or comments, kept when a file is rendered whole.
pub(crate) fn header(text: &str) -> String {
    let mut end = 0;
    for line in text.split_inclusive('\n') {
        if !is_blank_or_comment(line) {
            break;
        }
        end += line.len();
    }
    let mut header = text[..end].to_owned();
    if !header.is_empty() && !header.ends_with('\n') {
        header.push('\n');
    }
    header
}

/// Replace `start..end` with `text`; an empty range is an insertion.
#[derive(Debug)]
pub(crate) struct Splice {
    pub(crate) start: usize,
    pub(crate) end: usize,
    pub(crate) text: String,
}

/// `text` with every splice made. At one position, insertions come before a replacement and
/// keep the order they were made in; a splice overlapping an earlier one is dropped (the
/// caller checks the result reads back as intended). A CRLF text gets CRLF in new lines.
pub(crate) fn apply(text: &str, mut splices: Vec<Splice>) -> String {
    splices.sort_by_key(|s| (s.start, s.end != s.start));
    let crlf = text.contains("\r\n");
    let mut out = String::with_capacity(text.len() + 64);
    let mut at = 0;
    for splice in splices {
        if splice.start < at {
            continue;
        }
        out.push_str(&text[at..splice.start]);
        if crlf {
            out.push_str(&splice.text.replace('\n', "\r\n"));
        } else {
            out.push_str(&splice.text);
        }
        at = splice.end;
    }
    out.push_str(&text[at..]);
    out
}
