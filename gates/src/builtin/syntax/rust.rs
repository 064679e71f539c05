//! Rust: `use` trees (`use a::b::{c, d as e, self, f::*}`), `extern crate`, and paths in
//! expressions and types (`std::process::Command::new`), called or not. Paths inside macro
//! arguments are token trees to the grammar and are not seen.

use tree_sitter::{Node, Tree};

use super::{chain, walk, Builder};

const PATH_KINDS: [&str; 2] = ["scoped_identifier", "scoped_type_identifier"];

pub(super) fn read(tree: &Tree, b: &mut Builder<'_>) {
    walk(tree, |node, parent, field| match node.kind() {
        "use_declaration" => {
            if let Some(argument) = node.child_by_field_name("argument") {
                let group = b.new_group();
                use_tree(b, argument, &[], group, 0);
            }
            false
        }
        "extern_crate_declaration" => {
            extern_crate(b, node);
            false
        }
        kind if PATH_KINDS.contains(&kind) => {
            let inner =
                parent.is_some_and(|p| PATH_KINDS.contains(&p.kind())) && field == Some("path");
            if !inner {
                if let Some(names) = path(b, node) {
                    b.reference(names, node, is_call_target(parent, field));
                }
            }
            true
        }
        "identifier" if is_call_target(parent, field) => {
            let name = b.text(node).to_owned();
            b.reference(vec![name], node, true);
            true
        }
        _ => true,
    });
}

fn is_call_target(parent: Option<Node<'_>>, field: Option<&str>) -> bool {
    parent.is_some_and(|p| p.kind() == "call_expression") && field == Some("function")
}

/// `a::b::c` as segments; `Vec::<u8>::new` as `Vec::new`; `<T as Trait>::f` as nothing.
fn path(b: &Builder<'_>, node: Node<'_>) -> Option<Vec<String>> {
    chain(b, node, &PATH_KINDS, "path", "name", |root| {
        match root.kind() {
            "identifier" | "type_identifier" | "crate" | "self" | "super" | "metavariable" => {
                Some(b.text(root).to_owned())
            }
            "generic_type" => Some(b.text(root.child_by_field_name("type")?).to_owned()),
            _ => None,
        }
    })
}

/// Nested use lists deeper than this are not read: real code nests two or three, and a file
/// written to exhaust the stack should not take the gate down.
const MAX_USE_DEPTH: usize = 32;

fn use_tree(b: &mut Builder<'_>, node: Node<'_>, prefix: &[String], group: usize, depth: usize) {
    if depth > MAX_USE_DEPTH {
        return;
    }
    let joined = |names: Vec<String>| -> Vec<String> {
        let mut path = prefix.to_vec();
        path.extend(names);
        path
    };
    match node.kind() {
        // `use a::{self}` imports `a` itself.
        "self" if !prefix.is_empty() => {
            let index = b.import(prefix.to_vec(), node, group);
            if let Some(last) = prefix.last() {
                b.bind(last, prefix.to_vec(), index);
            }
        }
        "identifier" | "scoped_identifier" | "crate" | "self" | "super" => {
            let Some(names) = path(b, node) else { return };
            let full = joined(names);
            let index = b.import(full.clone(), node, group);
            if let Some(last) = full.last() {
                let last = last.clone();
                b.bind(&last, full, index);
            }
        }
        "use_as_clause" => {
            let Some(names) = node.child_by_field_name("path").and_then(|p| path(b, p)) else {
                return;
            };
            let full = joined(names);
            let index = b.import(full.clone(), node, group);
            if let Some(alias) = node.child_by_field_name("alias") {
                let alias = b.text(alias).to_owned();
                b.bind(&alias, full, index);
            }
        }
        // A glob binds names we cannot see; the import itself is still an import.
        "use_wildcard" => {
            let names = node
                .named_child(0)
                .and_then(|p| path(b, p))
                .unwrap_or_default();
            b.import(joined(names), node, group);
        }
        "scoped_use_list" => {
            let names = node
                .child_by_field_name("path")
                .and_then(|p| path(b, p))
                .unwrap_or_default();
            let full = joined(names);
            if let Some(list) = node.child_by_field_name("list") {
                use_tree(b, list, &full, group, depth + 1);
            }
        }
        "use_list" => {
            let mut cursor = node.walk();
            let items: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
            for item in items {
                use_tree(b, item, prefix, group, depth + 1);
            }
        }
        _ => {}
    }
}

fn extern_crate(b: &mut Builder<'_>, node: Node<'_>) {
    let Some(name) = node.child_by_field_name("name") else {
        return;
    };
    let krate = b.text(name).to_owned();
    let group = b.new_group();
    let index = b.import(vec![krate.clone()], name, group);
    let local = node
        .child_by_field_name("alias")
        .map(|alias| b.text(alias).to_owned())
        .unwrap_or_else(|| krate.clone());
    b.bind(&local, vec![krate], index);
}
