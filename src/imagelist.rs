//! Image lists: plain text (`container-images.txt` style) and YAML with mapping rules.
//!
//! CONTRACT (filled in by the image-list work): signatures below are fixed; bodies may change.

use std::fmt;
use std::path::{Path, PathBuf};

use crate::mapping::MappingMode;
use crate::reference::{ImageRef, Platform};

/// Where a list entry came from, for error messages and reports.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Origin {
    /// The list file.
    pub file: PathBuf,
    /// 1-based line number.
    pub line: usize,
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.file.display(), self.line)
    }
}

/// An explicit target written in a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum TargetSpec {
    /// A full reference with a registry host: used as is.
    Full(ImageRef),
    /// A repository path (and optional tag) placed under the destination registry and prefix.
    Relative {
        /// Repository path, e.g. `team/app`.
        repository: String,
        /// Tag; when absent the source tag is kept.
        tag: Option<String>,
    },
}

/// Per-list defaults from a YAML list (`registry`, `prefix`, `mode`, `platforms`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ListDefaults {
    /// Target registry.
    pub registry: Option<String>,
    /// Target path prefix.
    pub prefix: Option<String>,
    /// Mapping mode.
    pub mode: Option<MappingMode>,
}

/// One image named by a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListEntry {
    /// Normalised source reference.
    pub source: ImageRef,
    /// Explicit target, if the list gave one.
    pub target: Option<TargetSpec>,
    /// Platforms to keep (entry's own, else the list's global ones); empty keeps all.
    pub platforms: Vec<Platform>,
    /// The defaults of the list this entry came from.
    pub defaults: ListDefaults,
    /// File and line.
    pub origin: Origin,
}

/// One problem found in a list.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// File and line.
    pub origin: Origin,
    /// What is wrong, e.g. "invalid image reference `Foo:bar`: ...".
    pub message: String,
}

/// Errors of this module and of [`crate::mapping`].
#[derive(Debug, thiserror::Error)]
pub enum ListError {
    /// The list could not be read.
    #[error("cannot read image list {}", path.display())]
    Read {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// One or more entries are invalid; all of them are listed.
    #[error("{}", render_problems(.0))]
    Invalid(Vec<Problem>),
    /// A `--to` value that is not `REGISTRY[/PREFIX]`.
    #[error("invalid destination `{input}`: {reason}")]
    Destination {
        /// The text.
        input: String,
        /// Why.
        reason: String,
    },
}

fn render_problems(problems: &[Problem]) -> String {
    let mut s = format!(
        "{} invalid image list entr{}:",
        problems.len(),
        if problems.len() == 1 { "y" } else { "ies" }
    );
    for p in problems {
        s.push_str(&format!("\n  {}: {}", p.origin, p.message));
    }
    s
}

/// Reads and parses every list (YAML by `.yaml`/`.yml` extension, text otherwise), returning
/// all entries in order, or every problem in every file.
pub fn load(_paths: &[PathBuf]) -> Result<Vec<ListEntry>, ListError> {
    unimplemented!("filled in by the image-list work")
}

/// Parses a plain-text list.
pub fn parse_text(_text: &str, _file: &Path) -> Result<Vec<ListEntry>, ListError> {
    unimplemented!("filled in by the image-list work")
}

/// Parses a YAML list.
pub fn parse_yaml(_text: &str, _file: &Path) -> Result<Vec<ListEntry>, ListError> {
    unimplemented!("filled in by the image-list work")
}
