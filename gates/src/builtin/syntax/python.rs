//! Python: `import a.b [as c]`, `from a import b [as c]` (parenthesised over lines too),
//! `__import__("x")` and `importlib.import_module("x")`; attribute chains and calls.

use tree_sitter::{Node, Tree};

use super::{chain, literal, segments, walk, Builder};

pub(super) fn read(tree: &Tree, b: &mut Builder<'_>) {
    b.dynamic_importers = &[&["__import__"], &["importlib", "import_module"]];
    walk(tree, |node, parent, field| match node.kind() {
        "import_statement" => {
            import_statement(b, node);
            false
        }
        "import_from_statement" => {
            from_import(b, node);
            false
        }
        "future_import_statement" => false,
        "attribute" => {
            // Only the outermost link of `a.b.c` is a reference; its inner links are parts.
            let inner = parent.is_some_and(|p| p.kind() == "attribute") && field == Some("object");
            if !inner {
                let called = is_call_target(parent, field);
                if let Some(names) = dotted(b, node) {
                    reference(b, names, node, parent.filter(|_| called));
                }
            }
            true
        }
        "identifier" if is_call_target(parent, field) => {
            let name = b.text(node).to_owned();
            reference(b, vec![name], node, parent);
            true
        }
        _ => true,
    });
}

fn is_call_target(parent: Option<Node<'_>>, field: Option<&str>) -> bool {
    parent.is_some_and(|p| p.kind() == "call") && field == Some("function")
}

/// Records a reference; `call` is the call node when the reference is called, whose first
/// argument may name a module for a dynamic import.
fn reference(b: &mut Builder<'_>, names: Vec<String>, node: Node<'_>, call: Option<Node<'_>>) {
    let arg = call.and_then(|call| {
        let first = call.child_by_field_name("arguments")?.named_child(0)?;
        (first.kind() == "string")
            .then(|| literal(b, first, &["string_content"], &["interpolation"]))
            .flatten()
            .map(|text| (text, b.site(first)))
    });
    b.reference_with_arg(names, node, call.is_some(), arg);
}

fn dotted(b: &Builder<'_>, node: Node<'_>) -> Option<Vec<String>> {
    chain(b, node, &["attribute"], "object", "attribute", |root| {
        (root.kind() == "identifier").then(|| b.text(root).to_owned())
    })
}

fn import_statement(b: &mut Builder<'_>, node: Node<'_>) {
    let group = b.new_group();
    let mut cursor = node.walk();
    for name in node.children_by_field_name("name", &mut cursor) {
        match name.kind() {
            // `import a.b` binds `a`, and `a.b.c` then reads as written.
            "dotted_name" => {
                let path = segments(b.text(name));
                let index = b.import(path.clone(), name, group);
                if let Some(first) = path.first() {
                    let first = first.clone();
                    b.bind(&first, vec![first.clone()], index);
                }
            }
            "aliased_import" => {
                let (Some(module), Some(alias)) = (
                    name.child_by_field_name("name"),
                    name.child_by_field_name("alias"),
                ) else {
                    continue;
                };
                let path = segments(b.text(module));
                let index = b.import(path.clone(), module, group);
                let alias = b.text(alias).to_owned();
                b.bind(&alias, path, index);
            }
            _ => {}
        }
    }
}

fn from_import(b: &mut Builder<'_>, node: Node<'_>) {
    let Some(module) = node.child_by_field_name("module_name") else {
        return;
    };
    let group = b.new_group();
    // `relative_import` text is `.` or `..pkg`; `segments` keeps the dots as one segment.
    let module_path = segments(b.text(module));
    b.import(module_path.clone(), module, group);
    let mut cursor = node.walk();
    for name in node.children_by_field_name("name", &mut cursor) {
        let (imported, local) = match name.kind() {
            "dotted_name" => (name, name),
            "aliased_import" => match (
                name.child_by_field_name("name"),
                name.child_by_field_name("alias"),
            ) {
                (Some(imported), Some(alias)) => (imported, alias),
                _ => continue,
            },
            _ => continue,
        };
        let mut path = module_path.clone();
        path.extend(segments(b.text(imported)));
        let index = b.import(path.clone(), imported, group);
        let local = b.text(local).to_owned();
        b.bind(&local, path, index);
    }
}
