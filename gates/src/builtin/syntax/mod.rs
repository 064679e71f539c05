//! Imports and calls read from a file's syntax tree (tree-sitter), so that a word in a string
//! or a comment is never taken for code, and an import split over lines or renamed with `as`
//! is still seen for what it is.
//!
//! Each language module walks the tree once and reports, through a `Builder`, the imports it
//! sees (and the local names they bind) and the dotted names the code refers to or calls.
//! Names are resolved through the bindings at the end, so `import subprocess as sp` makes
//! `sp.run` read as `subprocess.run` wherever it appears in the file. Scopes are not tracked:
//! a local that shadows an imported name still resolves to the import.

mod go;
mod js;
mod python;
mod rust;

use std::collections::HashMap;

use tree_sitter::{Language, Node, Parser, Tree};

use super::Columns;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub(crate) enum Lang {
    Python,
    JavaScript,
    TypeScript,
    Tsx,
    Rust,
    Go,
}

impl Lang {
    pub(crate) fn of_path(path: &str) -> Option<Lang> {
        let ext = path.rsplit_once('.')?.1;
        Some(match ext {
            "py" | "pyi" => Lang::Python,
            "js" | "mjs" | "cjs" | "jsx" => Lang::JavaScript,
            "ts" | "mts" | "cts" => Lang::TypeScript,
            "tsx" => Lang::Tsx,
            "rs" => Lang::Rust,
            "go" => Lang::Go,
            _ => return None,
        })
    }

    /// How the language writes a qualified name, for messages.
    pub(crate) fn separator(self) -> &'static str {
        match self {
            Lang::Rust => "::",
            Lang::Go => "/",
            _ => ".",
        }
    }

    fn grammar(self) -> Language {
        match self {
            Lang::Python => tree_sitter_python::LANGUAGE.into(),
            Lang::JavaScript => tree_sitter_javascript::LANGUAGE.into(),
            Lang::TypeScript => tree_sitter_typescript::LANGUAGE_TYPESCRIPT.into(),
            Lang::Tsx => tree_sitter_typescript::LANGUAGE_TSX.into(),
            Lang::Rust => tree_sitter_rust::LANGUAGE.into(),
            Lang::Go => tree_sitter_go::LANGUAGE.into(),
        }
    }
}

/// A 1-based line and column (in characters) in the file.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Site {
    pub line: u32,
    pub column: u32,
}

/// An imported module or item, as path segments (`os.path`, `std::process`, `os/exec` and
/// `node:child_process` all become segments; see `segments`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Import {
    pub path: Vec<String>,
    pub site: Site,
    /// Imports from one statement share a group, so a banned module is reported once per
    /// statement, not once per name imported from it.
    pub group: usize,
}

/// A dotted name the code uses, resolved through the file's imports.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Reference {
    pub path: Vec<String>,
    /// As written, for messages.
    pub written: String,
    pub site: Site,
    pub called: bool,
    /// The import that bound its first segment, if one did.
    pub via_import: Option<usize>,
}

#[derive(Debug, Default, PartialEq, Eq)]
pub(crate) struct Syntax {
    pub imports: Vec<Import>,
    pub references: Vec<Reference>,
}

/// One parser per language, reused across files.
#[derive(Default)]
pub(crate) struct Analyser {
    parsers: HashMap<Lang, Parser>,
}

impl Analyser {
    pub(crate) fn analyse(&mut self, lang: Lang, source: &[u8]) -> Result<Syntax, String> {
        let parser = match self.parsers.entry(lang) {
            std::collections::hash_map::Entry::Occupied(e) => e.into_mut(),
            std::collections::hash_map::Entry::Vacant(e) => {
                let mut parser = Parser::new();
                parser
                    .set_language(&lang.grammar())
                    .map_err(|e| format!("tree-sitter grammar for {lang:?}: {e}"))?;
                e.insert(parser)
            }
        };
        let tree = parser
            .parse(source, None)
            .ok_or_else(|| format!("tree-sitter could not parse the file as {lang:?}"))?;
        let mut builder = Builder::new(source);
        match lang {
            Lang::Python => python::read(&tree, &mut builder),
            Lang::JavaScript | Lang::TypeScript | Lang::Tsx => js::read(&tree, &mut builder),
            Lang::Rust => rust::read(&tree, &mut builder),
            Lang::Go => go::read(&tree, &mut builder),
        }
        Ok(builder.finish())
    }
}

/// Module and item names as segments: `::`, `.` and `/` separate them, a `node:` scheme is
/// dropped (it names the same module), and a leading `./` or `..` stays one segment so a
/// relative import never matches a top-level name.
pub(crate) fn segments(name: &str) -> Vec<String> {
    let name = name.strip_prefix("node:").unwrap_or(name);
    let rest = name.trim_start_matches(['.', '/']);
    let prefix = &name[..name.len() - rest.len()];
    let mut out = Vec::new();
    if !prefix.is_empty() {
        out.push(prefix.to_owned());
    }
    out.extend(
        rest.split("::")
            .flat_map(|part| part.split(['.', '/']))
            .filter(|s| !s.is_empty())
            .map(str::to_owned),
    );
    out
}

/// Whether `path` is `prefix` or lies under it.
pub(crate) fn starts_with(path: &[String], prefix: &[String]) -> bool {
    !prefix.is_empty() && path.len() >= prefix.len() && path[..prefix.len()] == *prefix
}

struct RawReference {
    segments: Vec<String>,
    written: String,
    site: Site,
    called: bool,
    /// The literal first argument of the call, for calls that may be dynamic imports.
    string_arg: Option<(String, Site)>,
}

/// What a language module reports while it walks a tree.
pub(crate) struct Builder<'s> {
    source: &'s [u8],
    columns: Columns<'s>,
    imports: Vec<Import>,
    groups: usize,
    bindings: HashMap<String, (Vec<String>, usize)>,
    references: Vec<RawReference>,
    /// Functions that import the module their string argument names (`__import__`).
    pub(crate) dynamic_importers: &'static [&'static [&'static str]],
}

impl<'s> Builder<'s> {
    fn new(source: &'s [u8]) -> Self {
        Builder {
            source,
            columns: Columns::new(source),
            imports: Vec::new(),
            groups: 0,
            bindings: HashMap::new(),
            references: Vec::new(),
            dynamic_importers: &[],
        }
    }

    pub(crate) fn text(&self, node: Node<'_>) -> &'s str {
        node.utf8_text(self.source).unwrap_or("")
    }

    pub(crate) fn site(&self, node: Node<'_>) -> Site {
        let point = node.start_position();
        let line_start = node.start_byte() - point.column;
        Site {
            line: point.row as u32 + 1,
            column: self.columns.column(line_start, node.start_byte()),
        }
    }

    pub(crate) fn new_group(&mut self) -> usize {
        self.groups += 1;
        self.groups
    }

    pub(crate) fn import(&mut self, path: Vec<String>, node: Node<'_>, group: usize) -> usize {
        let site = self.site(node);
        self.imports.push(Import { path, site, group });
        self.imports.len() - 1
    }

    pub(crate) fn bind(&mut self, name: &str, path: Vec<String>, import: usize) {
        if !name.is_empty() && name != "_" {
            self.bindings.insert(name.to_owned(), (path, import));
        }
    }

    pub(crate) fn reference(&mut self, segments: Vec<String>, node: Node<'_>, called: bool) {
        self.reference_with_arg(segments, node, called, None);
    }

    pub(crate) fn reference_with_arg(
        &mut self,
        segments: Vec<String>,
        node: Node<'_>,
        called: bool,
        string_arg: Option<(String, Site)>,
    ) {
        if segments.is_empty() {
            return;
        }
        let written: String = self.text(node).chars().take(80).collect();
        let site = self.site(node);
        self.references.push(RawReference {
            segments,
            written,
            site,
            called,
            string_arg,
        });
    }

    fn finish(mut self) -> Syntax {
        let mut references = Vec::with_capacity(self.references.len());
        for raw in std::mem::take(&mut self.references) {
            let (path, via_import) = match self.bindings.get(&raw.segments[0]) {
                Some((bound, import)) => {
                    let mut path = bound.clone();
                    path.extend_from_slice(&raw.segments[1..]);
                    (path, Some(*import))
                }
                None => (raw.segments, None),
            };
            if let Some((module, site)) = raw.string_arg {
                if raw.called && self.dynamic_importers.iter().any(|f| path == *f) {
                    let group = self.new_group();
                    self.imports.push(Import {
                        path: segments(&module),
                        site,
                        group,
                    });
                }
            }
            references.push(Reference {
                path,
                written: raw.written,
                site: raw.site,
                called: raw.called,
                via_import,
            });
        }
        Syntax {
            imports: self.imports,
            references,
        }
    }
}

/// Visits every node once, depth first, with its parent and its field name in the parent;
/// `visit` returns whether to go into the node's children. Iterative, so a deeply nested file
/// cannot overflow the stack.
pub(crate) fn walk<'t>(
    tree: &'t Tree,
    mut visit: impl FnMut(Node<'t>, Option<Node<'t>>, Option<&str>) -> bool,
) {
    let mut cursor = tree.walk();
    let mut parents: Vec<Node<'t>> = Vec::new();
    loop {
        let node = cursor.node();
        let descend = visit(node, parents.last().copied(), cursor.field_name());
        if descend && cursor.goto_first_child() {
            parents.push(node);
            continue;
        }
        loop {
            if cursor.goto_next_sibling() {
                break;
            }
            if !cursor.goto_parent() {
                return;
            }
            parents.pop();
        }
    }
}

/// The segments of a dotted chain (`a.b.c`, `a::b::c`), read from the outermost node down
/// through `inner_field` while the node is of `chain_kind`. `name_of` gives a link's own
/// name; `root_name` the name of the innermost operand, or `None` when it is not a plain name
/// (a call, a subscript, `this`), in which case the chain names nothing we can resolve.
pub(crate) fn chain(
    builder: &Builder<'_>,
    outer: Node<'_>,
    chain_kinds: &[&str],
    inner_field: &str,
    name_field: &str,
    root_name: impl Fn(Node<'_>) -> Option<String>,
) -> Option<Vec<String>> {
    let mut names = Vec::new();
    let mut node = outer;
    while chain_kinds.contains(&node.kind()) {
        names.push(
            builder
                .text(node.child_by_field_name(name_field)?)
                .to_owned(),
        );
        match node.child_by_field_name(inner_field) {
            Some(inner) => node = inner,
            // `::std::process` has no path before its first `::`.
            None => {
                names.reverse();
                return Some(names);
            }
        }
    }
    names.push(root_name(node)?);
    names.reverse();
    Some(names)
}

/// The text of a string literal without interpolation, from its content children.
pub(crate) fn literal(
    builder: &Builder<'_>,
    node: Node<'_>,
    content_kinds: &[&str],
    interpolations: &[&str],
) -> Option<String> {
    let mut cursor = node.walk();
    let mut text = String::new();
    for child in node.named_children(&mut cursor) {
        if interpolations.contains(&child.kind()) {
            return None;
        }
        if content_kinds.contains(&child.kind()) {
            text.push_str(builder.text(child));
        }
    }
    Some(text)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn segments_split_every_separator_and_keep_relative_prefixes() {
        assert_eq!(
            segments("std::process::Command"),
            ["std", "process", "Command"]
        );
        assert_eq!(segments("os.system"), ["os", "system"]);
        assert_eq!(segments("os/exec"), ["os", "exec"]);
        assert_eq!(segments("node:child_process"), ["child_process"]);
        assert_eq!(segments("./subprocess"), ["./", "subprocess"]);
        assert_eq!(segments("..sub"), ["..", "sub"]);
    }

    #[test]
    fn starts_with_matches_whole_segments() {
        let path = segments("subprocess.run");
        assert!(starts_with(&path, &segments("subprocess")));
        assert!(!starts_with(
            &segments("subprocess2"),
            &segments("subprocess")
        ));
        assert!(!starts_with(&path, &[]));
    }
}
