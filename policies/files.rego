# File contents rules (contents hook). Opt-in. Denies setuid/setgid files (judged on
# original_mode, the mode as the layer had it: the core strips those bits when it writes, but an
# image that asks for them is still suspect), paths with `..` components, and, when configured,
# files outside allowed prefixes or over a size cap.
#
# data.config:
#   allow_setuid:     false                  (default false)
#   allowed_prefixes: ["usr/", "bin/"]       paths must equal a prefix (without its trailing "/")
#                                            or start with it; absent = no restriction
#   max_file_size:    104857600              bytes; absent = no cap
package gantry.files

import rego.v1

default cfg := {}

cfg := data.config

allow_setuid := object.get(cfg, "allow_setuid", false)

prefixes := object.get(cfg, "allowed_prefixes", null)

image := object.get(object.get(input, "image", {}), "reference", "the image")

files := object.get(input, "files", [])

# 0o6000: setuid | setgid.
special_bits := 3072

# Rules are written for the interpreter's cost model (every builtin and function call counts,
# per file, and a call of a rule function costs several builtins): config is checked before the
# loop, per-file work is a few builtins and no rule function, and the '..' test runs only on
# paths that contain "..".
deny contains msg if {
	input.hook == "contents"
	allow_setuid != true
	some f in files
	m := bits.or(object.get(f, "original_mode", 0), object.get(f, "mode", 0))
	bits.and(m, special_bits) != 0
	msg := sprintf("%s contains %s with the setuid/setgid bit (mode 0%s); images must not ask for elevated privileges", [image, f.path, format_int(m, 8)])
}

deny contains msg if {
	input.hook == "contents"
	some f in files
	contains(f.path, "..")
	contains(concat("", ["/", f.path, "/"]), "/../")
	msg := sprintf("%s contains the path %s, which climbs out with '..'", [image, f.path])
}

# A prefix "usr/" (or "usr") allows the path "usr" itself and everything under "usr/".
prefix_list := prefixes if is_array(prefixes)

prefix_list := [] if not is_array(prefixes)

exact_prefixes := {trim_suffix(p, "/") | some p in prefix_list}

dir_prefixes := {concat("", [p, "/"]) | some p in exact_prefixes}

deny contains msg if {
	input.hook == "contents"
	is_array(prefixes)
	some f in files
	path := trim_prefix(f.path, "/")
	not path in exact_prefixes
	not strings.any_prefix_match(path, dir_prefixes)
	msg := sprintf("%s contains %s, outside the allowed prefixes (%s)", [image, f.path, concat(", ", prefixes)])
}

deny contains msg if {
	input.hook == "contents"
	cap := cfg.max_file_size
	some f in files
	f.size > cap
	msg := sprintf("%s contains %s of %d bytes, over the %d byte cap", [image, f.path, f.size, cap])
}
