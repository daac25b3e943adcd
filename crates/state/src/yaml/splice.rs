//! The splicer: the [`Splice`]s that make a parsed block mapping hold a target value,
//! touching only what differs.
//!
//! It walks the old tree and the target together. An equal value is left alone; a changed
//! scalar has its bytes replaced (a comment after it stays); a block mapping or list that
//! changed is entered, so one changed value deep inside is still one changed line; a removed
//! entry or item loses its lines; a new one is written as new lines after its predecessor in
//! the target's order, at its siblings' indentation. Where the layout is not one entry per line
//! (flow style, a key on the same line as a list dash that has to move…), the enclosing entry
//! is written again. The caller parses the result and checks it (see `super::edit_document`).

use serde_saphyr::Spanned;

use super::render;
use super::text::{LineIndex, Splice, block_end, indent_of, is_blank_or_comment, trim_trailing};
use super::tree::Tree;
use super::value::{Value, same};

/// A part whose layout the splicer does not edit in place; its parent writes it again.
struct Unsupported;

/// The splices that make the document's root mapping `root` hold exactly `target`; `None`
/// when the root is not a block mapping (the caller then writes the file whole).
pub(crate) fn root(
    text: &str,
    root: &Spanned<Tree>,
    target: &[(String, Value)],
) -> Option<Vec<Splice>> {
    let cx = Cx {
        text,
        lines: LineIndex::new(text),
    };
    let Tree::Map(entries) = &root.value else {
        return None;
    };
    if !cx.is_block(root) {
        return None;
    }
    let map = cx.locate_map(entries, None, None).ok()?;
    cx.edit_map(&map, target, None).ok()
}

struct Cx<'t> {
    text: &'t str,
    lines: LineIndex,
}

/// A block mapping: its entries in file order and the column of its keys.
struct Map<'a> {
    entries: Vec<Entry<'a>>,
    column: usize,
    /// Whether the first key follows a list item's dash (`- name: api`).
    on_dash: bool,
}

/// One entry of a block mapping and where its text is.
struct Entry<'a> {
    key: &'a str,
    node: &'a Spanned<Tree>,
    /// The key's line.
    line: usize,
    /// Where the entry's text starts: its line, or the key itself after a list item's dash.
    start: usize,
    /// The end of its lines, trailing blank and comment lines excluded.
    end: usize,
}

/// A block list: its items in file order and the column of their dashes.
struct List<'a> {
    items: Vec<Item<'a>>,
    column: usize,
}

/// One item of a block list and where its text is.
struct Item<'a> {
    node: &'a Spanned<Tree>,
    /// The dash's line.
    line: usize,
    /// The start of that line.
    start: usize,
    /// The end of its lines, trailing blank and comment lines excluded.
    end: usize,
}

/// One step of turning an old list into a new one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// Old item `.0` stays as it is, as new item `.1`.
    Keep(usize),
    /// Old item `.0` becomes new item `.1`.
    Change(usize, usize),
    /// Old item `.0` goes.
    Remove(usize),
    /// New item `.0` is added.
    Insert(usize),
}

fn offset(location: &serde_saphyr::Location) -> Option<usize> {
    location
        .span()
        .byte_offset()
        .and_then(|o| usize::try_from(o).ok())
}

impl Cx<'_> {
    /// Whether a node is a non-empty block collection (not flow style, which starts with a bracket).
    fn is_block(&self, node: &Spanned<Tree>) -> bool {
        let opens_with = |c: u8| {
            offset(&node.referenced).is_none_or(|at| self.text.as_bytes().get(at) == Some(&c))
        };
        match &node.value {
            Tree::Map(entries) => !entries.is_empty() && !opens_with(b'{'),
            Tree::Seq(items) => !items.is_empty() && !opens_with(b'['),
            _ => false,
        }
    }

    /// The byte range of a scalar written on line `line` alone (quotes included).
    fn inline_scalar(&self, node: &Spanned<Tree>, line: usize) -> Option<(usize, usize)> {
        if !matches!(node.value, Tree::Scalar(_) | Tree::Bool(_)) {
            return None;
        }
        let start = offset(&node.referenced)?;
        let len = usize::try_from(node.referenced.span().byte_len()?).ok()?;
        let end = start + len;
        let on_line = self.lines.line_of(start) == line;
        (len > 0 && end <= self.text.len() && on_line && !self.text[start..end].contains('\n'))
            .then_some((start, end))
    }

    /// Whether a node starts on `line` (a scalar, null or flow collection after its key).
    fn starts_on(&self, node: &Spanned<Tree>, line: usize) -> bool {
        offset(&node.referenced).is_some_and(|at| self.lines.line_of(at) == line)
    }

    /// Locates a block mapping's entries: each key on its own line below `after`, all at one
    /// column; with `dash` the first key is on that line, after a list item's dash.
    fn locate_map<'a>(
        &self,
        entries: &'a [(Spanned<String>, Spanned<Tree>)],
        after: Option<usize>,
        dash: Option<usize>,
    ) -> Result<Map<'a>, Unsupported> {
        let mut located: Vec<Entry<'a>> = Vec::with_capacity(entries.len());
        let mut column = None;
        for (i, (key, node)) in entries.iter().enumerate() {
            let key_at = offset(&key.referenced).ok_or(Unsupported)?;
            let line = self.lines.line_of(key_at);
            let line_start = self.lines.start(line);
            let prefix = &self.text[line_start..key_at];
            let on_dash = i == 0 && dash.is_some();
            let layout_ok = if on_dash {
                dash == Some(line) && is_dash_prefix(prefix)
            } else {
                prefix.bytes().all(|b| b == b' ')
                    && after.is_none_or(|after| line > after)
                    && located.last().is_none_or(|previous| line > previous.line)
            };
            if !layout_ok || *column.get_or_insert(key_at - line_start) != key_at - line_start {
                return Err(Unsupported);
            }
            located.push(Entry {
                key: &key.value,
                node,
                line,
                start: if on_dash { key_at } else { line_start },
                end: 0,
            });
        }
        let column = column.ok_or(Unsupported)?;
        for i in 0..located.len() {
            let raw_end = match located.get(i + 1) {
                Some(next) => self.lines.start(next.line),
                None => block_end(self.text, &self.lines, located[i].line, |indent, _| {
                    indent < column
                }),
            };
            located[i].end = trim_trailing(self.text, &self.lines, located[i].line, raw_end);
        }
        Ok(Map {
            entries: located,
            column,
            on_dash: dash.is_some(),
        })
    }

    /// Locates a block list's items: each `- ` on its own line below `after`, at one column.
    fn locate_list<'a>(
        &self,
        items: &'a [Spanned<Tree>],
        after: usize,
    ) -> Result<List<'a>, Unsupported> {
        let mut located: Vec<Item<'a>> = Vec::with_capacity(items.len());
        let mut column = None;
        for node in items {
            if matches!(node.value, Tree::Null | Tree::Seq(_)) && !self.is_flow(node) {
                return Err(Unsupported);
            }
            let at = offset(&node.referenced).ok_or(Unsupported)?;
            let line = self.lines.line_of(at);
            let start = self.lines.start(line);
            let prefix = &self.text[start..at];
            let dash_at = indent_of(prefix);
            let layout_ok = is_dash_prefix(prefix)
                && line > after
                && located.last().is_none_or(|previous| line > previous.line);
            if !layout_ok || *column.get_or_insert(dash_at) != dash_at {
                return Err(Unsupported);
            }
            located.push(Item {
                node,
                line,
                start,
                end: 0,
            });
        }
        let column = column.ok_or(Unsupported)?;
        for i in 0..located.len() {
            let raw_end = match located.get(i + 1) {
                Some(next) => next.start,
                None => block_end(self.text, &self.lines, located[i].line, |indent, rest| {
                    indent < column || (indent == column && !rest.starts_with('-'))
                }),
            };
            located[i].end = trim_trailing(self.text, &self.lines, located[i].line, raw_end);
        }
        Ok(List {
            items: located,
            column,
        })
    }

    fn is_flow(&self, node: &Spanned<Tree>) -> bool {
        matches!(node.value, Tree::Map(_) | Tree::Seq(_)) && !self.is_block(node)
    }

    /// Where a new first child goes: above the comments over the current first one, but below
    /// `after` (the parent's line); at the root, right at the first key (below the file header).
    fn before_first(&self, first_line: usize, after: Option<usize>) -> usize {
        let Some(after) = after else {
            return self.lines.start(first_line);
        };
        let mut line = first_line;
        while line > after + 1 && is_blank_or_comment(self.lines.text(self.text, line - 1)) {
            line -= 1;
        }
        self.lines.start(line)
    }

    /// An insertion at `at`, after a newline when `at` is the end of a text that lacks one.
    fn insert(&self, at: usize, mut text: String) -> Splice {
        if at == self.text.len() && !self.text.is_empty() && !self.text.ends_with('\n') {
            text.insert(0, '\n');
        }
        Splice {
            start: at,
            end: at,
            text,
        }
    }

    /// Makes a block mapping hold exactly `target`. `after` is the parent's line.
    fn edit_map(
        &self,
        map: &Map<'_>,
        target: &[(String, Value)],
        after: Option<usize>,
    ) -> Result<Vec<Splice>, Unsupported> {
        let indent = " ".repeat(map.column);
        let flow_lists = map.entries.iter().any(|e| {
            matches!(&e.node.value, Tree::Seq(items) if !items.is_empty())
                && self.starts_on(e.node, e.line)
        });
        let find = |key: &str| map.entries.iter().find(|e| e.key == key);
        let mut splices = Vec::new();
        for (i, entry) in map.entries.iter().enumerate() {
            if !target.iter().any(|(key, _)| key == entry.key) {
                if i == 0 && map.on_dash {
                    return Err(Unsupported);
                }
                splices.push(Splice {
                    start: entry.start,
                    end: entry.end,
                    text: String::new(),
                });
            }
        }
        for (i, (key, value)) in target.iter().enumerate() {
            if let Some(entry) = find(key) {
                splices.extend(self.edit_entry(entry, value, &indent, map.on_dash));
                continue;
            }
            let predecessor = target[..i].iter().rev().find_map(|(key, _)| find(key));
            let at = match predecessor {
                Some(entry) => entry.end,
                None if map.on_dash => return Err(Unsupported),
                None => self.before_first(map.entries[0].line, after),
            };
            let rendered = if flow_lists && matches!(value, Value::Seq(_)) && render::flow_ok(value)
            {
                render::entry_flow(key, value, &indent)
            } else {
                render::entry(key, value, &indent)
            };
            splices.push(self.insert(at, rendered));
        }
        Ok(splices)
    }

    /// Makes one entry hold `value`: nothing, a scalar's bytes, its children, or its lines.
    fn edit_entry(
        &self,
        entry: &Entry<'_>,
        value: &Value,
        indent: &str,
        map_on_dash: bool,
    ) -> Vec<Splice> {
        let old = entry.node;
        if same(&old.value.to_value(), value) {
            return Vec::new();
        }
        if value.is_scalar()
            && let Some((start, end)) = self.inline_scalar(old, entry.line)
        {
            return vec![Splice {
                start,
                end,
                text: render::inline(value),
            }];
        }
        if let Ok(splices) = self.edit_children(old, value, entry.line, None) {
            return splices;
        }
        // `{}` is how an empty mapping is written, not a choice of style: it grows into block.
        let flow_map =
            matches!(&old.value, Tree::Map(entries) if !entries.is_empty()) && self.is_flow(old);
        let flow = self.starts_on(old, entry.line)
            && render::flow_ok(value)
            && (matches!(value, Value::Seq(_)) || flow_map);
        let mut text = if flow {
            render::entry_flow(entry.key, value, indent)
        } else {
            render::entry(entry.key, value, indent)
        };
        if map_on_dash && entry.start != self.lines.start(entry.line) {
            // The key follows the item's dash, which stays: drop the indentation it replaces.
            text.drain(..indent.len());
        }
        vec![Splice {
            start: entry.start,
            end: entry.end,
            text,
        }]
    }

    /// Edits a block collection in place to hold `value` (a non-empty collection of the same
    /// kind); `dash` is the line of the list item the collection is, if it is one.
    fn edit_children(
        &self,
        old: &Spanned<Tree>,
        value: &Value,
        line: usize,
        dash: Option<usize>,
    ) -> Result<Vec<Splice>, Unsupported> {
        if !self.is_block(old) {
            return Err(Unsupported);
        }
        match (&old.value, value) {
            (Tree::Map(entries), Value::Map(target)) if !target.is_empty() => {
                let map = self.locate_map(entries, Some(line), dash)?;
                self.edit_map(&map, target, Some(line))
            }
            (Tree::Seq(items), Value::Seq(target)) if !target.is_empty() && dash.is_none() => {
                let list = self.locate_list(items, line)?;
                self.edit_list(&list, target, line)
            }
            _ => Err(Unsupported),
        }
    }

    /// Makes a block list hold exactly `target`, keeping equal items and editing changed ones.
    fn edit_list(
        &self,
        list: &List<'_>,
        target: &[Value],
        after: usize,
    ) -> Result<Vec<Splice>, Unsupported> {
        let indent = " ".repeat(list.column);
        let old: Vec<Value> = list.items.iter().map(|i| i.node.value.to_value()).collect();
        let mut splices = Vec::new();
        let mut previous: Option<usize> = None;
        for step in steps(&old, target) {
            match step {
                Step::Keep(o) => previous = Some(o),
                Step::Change(o, n) => {
                    splices.extend(self.edit_item(&list.items[o], &target[n], &indent));
                    previous = Some(o);
                }
                Step::Remove(o) => {
                    let item = &list.items[o];
                    splices.push(Splice {
                        start: item.start,
                        end: item.end,
                        text: String::new(),
                    });
                    previous = Some(o);
                }
                Step::Insert(n) => {
                    let at = match previous {
                        Some(o) => list.items[o].end,
                        None => self.before_first(list.items[0].line, Some(after)),
                    };
                    splices.push(self.insert(at, render::item(&target[n], &indent)));
                }
            }
        }
        Ok(splices)
    }

    /// Makes one list item hold `value`: a scalar's bytes, its mapping's entries, or its lines.
    fn edit_item(&self, item: &Item<'_>, value: &Value, indent: &str) -> Vec<Splice> {
        if value.is_scalar()
            && let Some((start, end)) = self.inline_scalar(item.node, item.line)
        {
            return vec![Splice {
                start,
                end,
                text: render::inline(value),
            }];
        }
        if let Ok(splices) = self.edit_children(item.node, value, item.line, Some(item.line)) {
            return splices;
        }
        vec![Splice {
            start: item.start,
            end: item.end,
            text: render::item(value, indent),
        }]
    }
}

/// Whether the text before an item on its line is spaces, a dash and at least one space.
fn is_dash_prefix(prefix: &str) -> bool {
    prefix
        .trim_start_matches(' ')
        .strip_prefix('-')
        .is_some_and(|rest| !rest.is_empty() && rest.bytes().all(|b| b == b' '))
}

/// How `old` becomes `new`: the longest run of equal items is kept; between kept items,
/// changed items are paired up (by their first entry, such as a repository's `name`, when
/// every item there is a mapping and some first entries match; by position otherwise), the
/// rest removed or inserted.
fn steps(old: &[Value], new: &[Value]) -> Vec<Step> {
    let kept = longest_common(old, new);
    let mut steps = Vec::new();
    let (mut o, mut n) = (0, 0);
    for &(ko, kn) in kept.iter().chain(std::iter::once(&(old.len(), new.len()))) {
        pair_gap(old, new, o..ko, n..kn, &mut steps);
        if ko < old.len() {
            steps.push(Step::Keep(ko));
        }
        (o, n) = (ko + 1, kn + 1);
    }
    steps
}

/// The index pairs of a longest common subsequence of equal items, in order.
fn longest_common(old: &[Value], new: &[Value]) -> Vec<(usize, usize)> {
    let (rows, cols) = (old.len(), new.len());
    // lengths[i][j]: the longest common run of old[i..] and new[j..].
    let mut lengths = vec![vec![0usize; cols + 1]; rows + 1];
    for i in (0..rows).rev() {
        for j in (0..cols).rev() {
            lengths[i][j] = if same(&old[i], &new[j]) {
                lengths[i + 1][j + 1] + 1
            } else {
                lengths[i + 1][j].max(lengths[i][j + 1])
            };
        }
    }
    let (mut i, mut j, mut pairs) = (0, 0, Vec::new());
    while i < rows && j < cols {
        if same(&old[i], &new[j]) {
            pairs.push((i, j));
            (i, j) = (i + 1, j + 1);
        } else if lengths[i + 1][j] >= lengths[i][j + 1] {
            i += 1;
        } else {
            j += 1;
        }
    }
    pairs
}

fn pair_gap(
    old: &[Value],
    new: &[Value],
    olds: std::ops::Range<usize>,
    news: std::ops::Range<usize>,
    steps: &mut Vec<Step>,
) {
    let identity = |value: &Value| match value {
        Value::Map(entries) => entries.first().cloned(),
        _ => None,
    };
    // By identity only when every item has one and some do match: a lone renamed item is
    // still edited in place.
    let by_identity = olds.clone().all(|o| identity(&old[o]).is_some())
        && news.clone().all(|n| identity(&new[n]).is_some())
        && news
            .clone()
            .any(|n| olds.clone().any(|o| identity(&old[o]) == identity(&new[n])));
    if !by_identity {
        let paired = olds.len().min(news.len());
        for k in 0..paired {
            steps.push(Step::Change(olds.start + k, news.start + k));
        }
        steps.extend((olds.start + paired..olds.end).map(Step::Remove));
        steps.extend((news.start + paired..news.end).map(Step::Insert));
        return;
    }
    let mut cursor = olds.start;
    for n in news {
        let wanted = identity(&new[n]);
        match (cursor..olds.end).find(|&o| identity(&old[o]) == wanted) {
            Some(o) => {
                steps.extend((cursor..o).map(Step::Remove));
                steps.push(Step::Change(o, n));
                cursor = o + 1;
            }
            None => steps.push(Step::Insert(n)),
        }
    }
    steps.extend((cursor..olds.end).map(Step::Remove));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn values(items: &[&str]) -> Vec<Value> {
        items.iter().map(Value::scalar).collect()
    }

    #[test]
    fn list_steps_keep_equal_items_and_pair_changed_ones() {
        use Step::*;
        for (old, new, expected) in [
            (
                &["a", "b"][..],
                &["a", "x", "b"][..],
                vec![Keep(0), Insert(1), Keep(1)],
            ),
            (
                &["a", "b", "c"],
                &["a", "c"],
                vec![Keep(0), Remove(1), Keep(2)],
            ),
            (&["a", "b"], &["a", "c"], vec![Keep(0), Change(1, 1)]),
            (&["a"], &["b", "c"], vec![Change(0, 0), Insert(1)]),
            (&[], &["a"], vec![Insert(0)]),
        ] {
            assert_eq!(
                steps(&values(old), &values(new)),
                expected,
                "{old:?} -> {new:?}"
            );
        }
        let repo = |name: &str, branch: &str| {
            Value::Map(vec![
                ("name".into(), Value::scalar(name)),
                ("branch".into(), Value::scalar(branch)),
            ])
        };
        // The changed `web` pairs with the old `web`, not with `api` by position.
        assert_eq!(
            steps(
                &[repo("api", "main"), repo("web", "main")],
                &[repo("web", "dev")]
            ),
            vec![Remove(0), Change(1, 0)]
        );
    }
}
