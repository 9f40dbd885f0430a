package gantry.files_test

import rego.v1

import data.gantry.files

file(path, mode) := {"path": path, "type": "file", "mode": mode, "original_mode": mode, "size": 10}

doc(fs) := {"hook": "contents", "image": {"reference": "ghcr.io/corp/tool:1"}, "files": fs}

test_plain_files_allowed if {
	count(files.deny) == 0 with input as doc([file("usr/bin/tool", 493), file("usr/share/doc/README", 420)])
}

test_setuid_denied_on_original_mode if {
	# 0o4755 = 2541; the core wrote 0o755 but the layer asked for setuid.
	f := {"path": "usr/bin/su", "type": "file", "mode": 493, "original_mode": 2541, "size": 1}
	msgs := files.deny with input as doc([f])
	some msg in msgs
	contains(msg, "usr/bin/su with the setuid/setgid bit (mode 04755)")
}

test_setgid_denied_and_allow_setuid if {
	# 0o2755 = 1517.
	count(files.deny) == 1 with input as doc([file("usr/bin/x", 1517)])
	count(files.deny) == 0 with input as doc([file("usr/bin/x", 1517)]) with data.config as {"allow_setuid": true}
}

test_prefixes if {
	c := {"allowed_prefixes": ["usr/", "bin"]}
	count(files.deny) == 0 with input as doc([file("usr/bin/tool", 493), file("bin", 493), file("bin/x", 493)]) with data.config as c
	count(files.deny) == 1 with input as doc([file("etc/passwd", 420)]) with data.config as c
}

test_prefix_lookalike_denied if {
	count(files.deny) == 1 with input as doc([file("binary-evil/x", 493)]) with data.config as {"allowed_prefixes": ["bin"]}
	count(files.deny) == 1 with input as doc([file("usrx/y", 493)]) with data.config as {"allowed_prefixes": ["usr/"]}
}

test_dotdot_denied if {
	count(files.deny) == 1 with input as doc([file("usr/../etc/shadow", 420)])
}

test_size_cap if {
	big := {"path": "usr/lib/big", "type": "file", "mode": 420, "original_mode": 420, "size": 2000}
	count(files.deny) == 1 with input as doc([big]) with data.config as {"max_file_size": 1000}
	count(files.deny) == 0 with input as doc([big])
}

test_dotdot_forms if {
	count(files.deny) == 3 with input as doc([file("..", 420), file("usr/..", 420), file("../etc", 420)])
	count(files.deny) == 0 with input as doc([file("usr/...", 420), file("usr/a..b", 420), file("..usr/x", 420)]) with data.config as {"allowed_prefixes": ["usr/", "..usr"]}
}

# The whole-list proofs (plain_listing, all_inside, no_dotdot) must hold for the contract's
# shape, or every image takes the per-file rules; and where they do not hold, those rules decide.
test_the_whole_list_proofs_hold_for_plain_files if {
	c := {"allowed_prefixes": ["usr/", "etc"]}
	d := doc([file("usr/bin/tool", 493), file("etc", 493), file("/usr/x", 420), object.union(file("usr/l", 511), {"link_target": "../lib/x"})])
	files.all_inside with input as d with data.config as c
	files.plain_listing with input as d with data.config as c
	files.plain_listing with input as d
	files.no_dotdot with input as doc([file("usr/bin/tool", 493)])
	count(files.deny) == 0 with input as d with data.config as c
}

test_modes_at_the_edge_of_the_special_bits if {
	# 0o1777 (sticky) = 1023 is fine; 0o2000 = 1024 is setgid, in mode or original_mode.
	count(files.deny) == 0 with input as doc([file("tmp", 1023)])
	count(files.deny) == 1 with input as doc([file("usr/x", 1024)])
	f := {"path": "usr/y", "type": "file", "mode": 420, "original_mode": 3072, "size": 1}
	count(files.deny) == 1 with input as doc([file("usr/x", 420), f])
	g := {"path": "usr/z", "type": "file", "mode": 1536, "size": 1}
	count(files.deny) == 1 with input as doc([g])
}

test_paths_with_quotes_slashes_and_lookalikes if {
	c := {"allowed_prefixes": ["usr/"]}
	count(files.deny) == 0 with input as doc([file(`usr/a"b\c`, 420), file("usr", 493)]) with data.config as c
	count(files.deny) == 1 with input as doc([file(`opt/"usr/x`, 420)]) with data.config as c
	count(files.deny) == 1 with input as doc([file(`usr/a","path":"opt/x`, 420), file("opt/y", 420)]) with data.config as c
	count(files.deny) == 1 with input as doc([file("//usr/x", 420)]) with data.config as c
	count(files.deny) == 1 with input as doc([file("usr/ok", 420), file("usrlocal/x", 420)]) with data.config as c
}

test_prefixes_the_pattern_cannot_spell_use_the_per_file_rule if {
	count(files.deny) == 1 with input as doc([file("usxr/y", 420)]) with data.config as {"allowed_prefixes": ["us.r"]}
	count(files.deny) == 0 with input as doc([file("us.r/y", 420)]) with data.config as {"allowed_prefixes": ["us.r"]}
	count(files.deny) == 0 with input as doc([file("a+b/y", 420)]) with data.config as {"allowed_prefixes": ["a+b"]}
	count(files.deny) == 1 with input as doc([file("ab/y", 420)]) with data.config as {"allowed_prefixes": ["a+b"]}
	not files.all_inside with input as doc([file("a+b/y", 420)]) with data.config as {"allowed_prefixes": ["a+b"]}
}

test_entries_outside_the_contract_shape_use_the_per_file_rules if {
	# An extra field, a dot-dot path: no proof, and the per-file rules decide. (A float mode, too:
	# its bits.or then errs, which the engine turns into a deny; see src/policy/rego_budget.rs.)
	extra := object.union(file("usr/x", 2541), {"owner": "root"})
	not files.plain_listing with input as doc([extra])
	count(files.deny) == 1 with input as doc([extra])
	count(files.deny) == 0 with input as doc([object.union(file("usr/x", 420), {"owner": "root"})])
	not files.no_dotdot with input as doc([file("usr/../x", 420)])
}
