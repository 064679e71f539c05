//! Go: `import "os/exec"`, grouped and named imports (`e "os/exec"`); selector chains
//! (`exec.Command`), qualified types (`exec.Cmd`) and calls.

use tree_sitter::{Node, Tree};

use super::{chain, segments, walk, Builder};

pub(super) fn read(tree: &Tree, b: &mut Builder<'_>) {
    walk(tree, |node, parent, field| match node.kind() {
        "import_declaration" => {
            let group = b.new_group();
            let mut cursor = node.walk();
            let children: Vec<Node<'_>> = node.named_children(&mut cursor).collect();
            for child in children {
                match child.kind() {
                    "import_spec" => import_spec(b, child, group),
                    "import_spec_list" => {
                        let mut cursor = child.walk();
                        let specs: Vec<Node<'_>> = child.named_children(&mut cursor).collect();
                        for spec in specs.into_iter().filter(|s| s.kind() == "import_spec") {
                            import_spec(b, spec, group);
                        }
                    }
                    _ => {}
                }
            }
            false
        }
        "selector_expression" => {
            let inner = parent.is_some_and(|p| p.kind() == "selector_expression")
                && field == Some("operand");
            if !inner {
                if let Some(names) = selector(b, node) {
                    b.reference(names, node, is_call_target(parent, field));
                }
            }
            true
        }
        "qualified_type" => {
            if let (Some(package), Some(name)) = (
                node.child_by_field_name("package"),
                node.child_by_field_name("name"),
            ) {
                let names = vec![b.text(package).to_owned(), b.text(name).to_owned()];
                b.reference(names, node, false);
            }
            false
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

fn selector(b: &Builder<'_>, node: Node<'_>) -> Option<Vec<String>> {
    chain(
        b,
        node,
        &["selector_expression"],
        "operand",
        "field",
        |root| (root.kind() == "identifier").then(|| b.text(root).to_owned()),
    )
}

fn import_spec(b: &mut Builder<'_>, spec: Node<'_>, group: usize) {
    let Some(source) = spec.child_by_field_name("path") else {
        return;
    };
    let raw = b.text(source).trim_matches(['"', '`']).to_owned();
    let index = b.import(segments(&raw), source, group);
    let local = match spec.child_by_field_name("name") {
        // `_` imports for side effects and `.` merges the package into scope: neither binds
        // a name we could resolve.
        Some(name) if name.kind() == "package_identifier" => b.text(name).to_owned(),
        Some(_) => return,
        None => package_name(&raw),
    };
    b.bind(&local, segments(&raw), index);
}

/// The name an import path binds by default: its last element, skipping a major-version
/// suffix (`github.com/x/y/v2` is `y`) and anything after a dot (`gopkg.in/yaml.v3` is
/// `yaml`). Packages whose clause says otherwise are rare; `e "path"` covers them.
fn package_name(path: &str) -> String {
    let mut parts = path.rsplit('/');
    let mut last = parts.next().unwrap_or(path);
    let is_version =
        |p: &str| p.len() > 1 && p.starts_with('v') && p[1..].bytes().all(|c| c.is_ascii_digit());
    if is_version(last) {
        last = parts.next().unwrap_or(last);
    }
    last.split('.').next().unwrap_or(last).to_owned()
}

#[cfg(test)]
mod tests {
    use super::package_name;

    #[test]
    fn default_package_names() {
        assert_eq!(package_name("os/exec"), "exec");
        assert_eq!(package_name("github.com/x/y/v2"), "y");
        assert_eq!(package_name("gopkg.in/yaml.v3"), "yaml");
        assert_eq!(package_name("fmt"), "fmt");
    }
}
