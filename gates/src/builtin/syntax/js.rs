//! JavaScript and TypeScript: `import … from "x"`, `export … from "x"`, `require("x")` (with
//! what it is assigned to), dynamic `import("x")`, TypeScript's `import x = require("x")`;
//! member chains, calls and `new`.

use tree_sitter::{Node, Tree};

use super::{chain, literal, segments, walk, Builder};

pub(super) fn read(tree: &Tree, b: &mut Builder<'_>) {
    walk(tree, |node, parent, field| {
        match node.kind() {
            "import_statement" | "export_statement" => {
                if let Some(source) = node.child_by_field_name("source") {
                    module_statement(b, node, source);
                }
            }
            "import_require_clause" => import_require(b, node),
            "call_expression" => call(b, node, parent),
            "member_expression" => {
                let inner = parent.is_some_and(|p| p.kind() == "member_expression")
                    && field == Some("object");
                if !inner {
                    if let Some(names) = dotted(b, node) {
                        b.reference(names, node, is_call_target(parent, field));
                    }
                }
            }
            "identifier" if is_call_target(parent, field) => {
                let name = b.text(node).to_owned();
                b.reference(vec![name], node, true);
            }
            _ => {}
        }
        true
    });
}

fn is_call_target(parent: Option<Node<'_>>, field: Option<&str>) -> bool {
    parent.is_some_and(|p| {
        (p.kind() == "call_expression" && field == Some("function"))
            || (p.kind() == "new_expression" && field == Some("constructor"))
    })
}

fn dotted(b: &Builder<'_>, node: Node<'_>) -> Option<Vec<String>> {
    chain(
        b,
        node,
        &["member_expression"],
        "object",
        "property",
        |root| (root.kind() == "identifier").then(|| b.text(root).to_owned()),
    )
}

/// The module a string or substitution-free template literal names.
fn module_name(b: &Builder<'_>, node: Node<'_>) -> Option<String> {
    match node.kind() {
        "string" | "template_string" => literal(
            b,
            node,
            &["string_fragment", "escape_sequence"],
            &["template_substitution"],
        ),
        _ => None,
    }
}

fn module_statement(b: &mut Builder<'_>, statement: Node<'_>, source: Node<'_>) {
    let Some(module) = module_name(b, source) else {
        return;
    };
    let module = segments(&module);
    let group = b.new_group();
    let index = b.import(module.clone(), source, group);
    let mut cursor = statement.walk();
    let clauses: Vec<Node<'_>> = statement.named_children(&mut cursor).collect();
    for clause in clauses {
        match clause.kind() {
            "import_clause" => import_clause(b, clause, &module, index, group),
            // `export { a as b } from "m"` re-exports `m.a`: an import all the same.
            "export_clause" => {
                let mut cursor = clause.walk();
                for spec in clause.named_children(&mut cursor) {
                    if let Some(name) = spec.child_by_field_name("name") {
                        let mut path = module.clone();
                        path.push(unquoted(b.text(name)));
                        b.import(path, spec, group);
                    }
                }
            }
            _ => {}
        }
    }
}

fn import_clause(
    b: &mut Builder<'_>,
    clause: Node<'_>,
    module: &[String],
    index: usize,
    group: usize,
) {
    let mut cursor = clause.walk();
    let parts: Vec<Node<'_>> = clause.named_children(&mut cursor).collect();
    for part in parts {
        match part.kind() {
            // A default import and `* as ns` both stand for the module itself.
            "identifier" => {
                let name = b.text(part).to_owned();
                b.bind(&name, module.to_vec(), index);
            }
            "namespace_import" => {
                if let Some(name) = part.named_child(0) {
                    let name = b.text(name).to_owned();
                    b.bind(&name, module.to_vec(), index);
                }
            }
            "named_imports" => {
                let mut cursor = part.walk();
                let specs: Vec<Node<'_>> = part.named_children(&mut cursor).collect();
                for spec in specs {
                    let Some(name) = spec.child_by_field_name("name") else {
                        continue;
                    };
                    let mut path = module.to_vec();
                    path.push(unquoted(b.text(name)));
                    let item = b.import(path.clone(), spec, group);
                    let local = spec.child_by_field_name("alias").unwrap_or(name);
                    let local = b.text(local).to_owned();
                    b.bind(&local, path, item);
                }
            }
            _ => {}
        }
    }
}

/// TypeScript's `import fs = require("fs")`.
fn import_require(b: &mut Builder<'_>, clause: Node<'_>) {
    let (Some(name), Some(source)) = (clause.named_child(0), clause.child_by_field_name("source"))
    else {
        return;
    };
    let Some(module) = module_name(b, source) else {
        return;
    };
    let module = segments(&module);
    let group = b.new_group();
    let index = b.import(module.clone(), source, group);
    let name = b.text(name).to_owned();
    b.bind(&name, module, index);
}

/// `require("m")` and `import("m")` import `m`; what `require` returns may be bound by the
/// declaration around it: `const cp = require("m")`, `const { exec, spawn: sp } = require("m")`.
fn call(b: &mut Builder<'_>, call: Node<'_>, parent: Option<Node<'_>>) {
    let Some(function) = call.child_by_field_name("function") else {
        return;
    };
    let is_require = function.kind() == "identifier" && b.text(function) == "require";
    if !is_require && function.kind() != "import" {
        return;
    }
    let Some(source) = call
        .child_by_field_name("arguments")
        .and_then(|args| args.named_child(0))
    else {
        return;
    };
    let Some(module) = module_name(b, source) else {
        return;
    };
    let module = segments(&module);
    let group = b.new_group();
    let index = b.import(module.clone(), source, group);
    let Some(declarator) = parent.filter(|p| p.kind() == "variable_declarator") else {
        return;
    };
    let Some(pattern) = declarator.child_by_field_name("name") else {
        return;
    };
    match pattern.kind() {
        "identifier" => {
            let name = b.text(pattern).to_owned();
            b.bind(&name, module, index);
        }
        "object_pattern" => {
            let mut cursor = pattern.walk();
            let props: Vec<Node<'_>> = pattern.named_children(&mut cursor).collect();
            for prop in props {
                let (key, local) = match prop.kind() {
                    "shorthand_property_identifier_pattern" => (prop, prop),
                    "pair_pattern" => match (
                        prop.child_by_field_name("key"),
                        prop.child_by_field_name("value"),
                    ) {
                        (Some(key), Some(value)) if value.kind() == "identifier" => (key, value),
                        _ => continue,
                    },
                    _ => continue,
                };
                let mut path = module.clone();
                path.push(unquoted(b.text(key)));
                let local = b.text(local).to_owned();
                b.bind(&local, path, index);
            }
        }
        _ => {}
    }
}

/// `import { "a-b" as c }` names an export with a string.
fn unquoted(text: &str) -> String {
    text.trim_matches(['"', '\'']).to_owned()
}
