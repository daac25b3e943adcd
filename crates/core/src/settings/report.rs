//! What a settings merge did, file by file, for the build log: [`MergeReport`].

use std::fmt;

use super::{Format, TreeId};

/// What a merge did to the files the overlays touched; base files no overlay mentions are
/// not listed (they keep their bytes).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MergeReport {
    /// One entry per file the overlays touched, by path.
    pub files: Vec<FileReport>,
    /// How many overlay files under `.git` were left out.
    pub ignored_git_files: usize,
}

/// What happened to one file of the merged tree.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileReport {
    /// The file's path in the merged tree.
    pub path: String,
    /// How its content was made.
    pub change: Change,
    /// The overlay files that gave it content, in the order they applied.
    pub sources: Vec<Source>,
    /// The `.defines` files that gave it macro values, in order.
    pub defines: Vec<Source>,
    /// Macro names replaced, in order of first use.
    pub expanded: Vec<String>,
    /// `%%name%%` macros with no value, left in the file (e.g. install-time `%%role%%`).
    pub unexpanded: Vec<String>,
}

/// How a file's content was made.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Change {
    /// New to the base; the overlay's copy as is (the last one, when several overlays have it).
    Added,
    /// The base's copy replaced by an overlay's (not a mergeable format).
    Replaced,
    /// Layers parsed, merged by key and written again.
    Merged(Format),
    /// The base's content, only expanded by `.defines`.
    Kept,
}

/// One overlay file that contributed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Source {
    /// The overlay.
    pub tree: TreeId,
    /// The file's path in it.
    pub path: String,
}

impl fmt::Display for Source {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} `{}`", self.tree, self.path)
    }
}

impl fmt::Display for Change {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Change::Added => f.write_str("added"),
            Change::Replaced => f.write_str("replaced"),
            Change::Merged(format) => write!(f, "merged as {format}"),
            Change::Kept => f.write_str("kept"),
        }
    }
}

/// Writes `items` separated by `, `.
fn list<T: fmt::Display>(f: &mut fmt::Formatter<'_>, items: &[T]) -> fmt::Result {
    for (index, item) in items.iter().enumerate() {
        if index > 0 {
            f.write_str(", ")?;
        }
        write!(f, "{item}")?;
    }
    Ok(())
}

impl fmt::Display for FileReport {
    /// One line: `path: merged as HOCON from overlay #1 `a.conf`; expanded %%port%%`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.path, self.change)?;
        if !self.sources.is_empty() {
            f.write_str(" from ")?;
            list(f, &self.sources)?;
        }
        if !self.defines.is_empty() {
            f.write_str("; macro values from ")?;
            list(f, &self.defines)?;
        }
        let macros = |names: &[String]| -> Vec<String> {
            names.iter().map(|name| format!("%%{name}%%")).collect()
        };
        if !self.expanded.is_empty() {
            f.write_str("; expanded ")?;
            list(f, &macros(&self.expanded))?;
        }
        if !self.unexpanded.is_empty() {
            f.write_str("; left without a value ")?;
            list(f, &macros(&self.unexpanded))?;
        }
        Ok(())
    }
}

impl fmt::Display for MergeReport {
    /// One line per file, then the count of ignored `.git` files when there were any.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        for file in &self.files {
            writeln!(f, "{file}")?;
        }
        if self.ignored_git_files > 0 {
            writeln!(
                f,
                "ignored {} file(s) under .git in the settings overlays",
                self.ignored_git_files
            )?;
        }
        Ok(())
    }
}
