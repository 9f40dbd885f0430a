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
