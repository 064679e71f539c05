# An example policy for the built-in `policy` gate:
#
#   [[gate]]
#   name = "policy"
#   uses = "policy"
#   base = "origin/main"
#   rego = ["policies/*.rego"]
#
# The gate evaluates each policy file over
#   input.changes   what changed against `base`: [{path, old_path, kind ("added" | "modified" |
#                   "deleted"), added_lines: [n, ...], removed_lines: n}], or null when the gate
#                   has no base and the runner gave it no changes
#   input.findings  findings of the gates that ran before, and of this gate's other rules
#   input.outcome   the job's outcome, or null
# Every message in `deny` is an error finding, every one in `warn` a warning. A message may
# be a string or {"msg": ..., "path": ..., "line": ...} to point at a file. A policy that
# says `default allow := false` fails whenever no `allow` rule holds.
package sandbox.example

max_changed_files := 40

# Workflows run with the repository's secrets: a change to them is a person's to make.
deny contains {"msg": "CI workflows are not changed from the sandbox", "path": c.path} if {
	some c in input.changes
	startswith(c.path, ".github/workflows/")
}

deny contains msg if {
	n := count(input.changes)
	n > max_changed_files
	msg := sprintf("%d files changed; split the change (at most %d per change)", [n, max_changed_files])
}

deny contains "source changed without a test: add or update one under tests/" if {
	some c in input.changes
	startswith(c.path, "src/")
	not tests_changed
}

tests_changed if {
	some c in input.changes
	is_test(c.path)
}

is_test(path) if startswith(path, "tests/")

is_test(path) if contains(path, "_test.")

is_test(path) if regex.match(`(^|/)test_[^/]*$`, path)
