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

# Fast paths. The interpreter costs microseconds per file and per builtin, so over a large image
# each rule first tries to prove, from one native scan of the whole file list, that no file can
# match it; only where that proof fails does its per-file loop run (and then it decides alone).
# A proof needs the list in the contract's exact shape, as json.marshal writes it: an array of
# objects with sorted keys, no spaces, integer numbers, string path and type, and (for the setuid
# rule) every mode and original_mode below 1024, i.e. without bits 0o6000. Anything else, or a
# change in how json.marshal writes, only means the per-file rules run.
listing := json.marshal(files)

json_string := `"(?:[^"\\]|\\.)*"`

plain_mode := `(?:[0-9]{1,3}|10[01][0-9]|102[0-3])`

# The list in that shape, each path matching `path_pattern`.
plain_list_pattern(path_pattern) := concat("", [`^\[(?:`, entry, `(?:,`, entry, `)*)?\]$`]) if {
	entry := concat("", [
		`\{(?:"link_target":`, json_string, `,)?"mode":`, plain_mode, `,"original_mode":`, plain_mode,
		`,"path":`, path_pattern, `,"size":[0-9]+,"type":`, json_string, `\}`,
	])
}

# A path inside an allowed prefix, as a JSON string. Only for prefixes the pattern can spell
# literally (letters, digits, '_', '-', '.', inner '/'), so its optional leading '/' can only
# match the path's own.
inside_path := sprintf(`"/?(?:%s)(?:/(?:[^"\\]|\\.)*)?"`, [concat("|", [replace(p, ".", `\.`) | some p in exact_prefixes])]) if {
	count(exact_prefixes) > 0
	count([p | some p in exact_prefixes; not regex.match(`^[A-Za-z0-9_.-]+(?:/[A-Za-z0-9_.-]+)*$`, p)]) == 0
}

# Every path is inside an allowed prefix (and the list is plain). One scan when it holds, which
# then also proves plain_listing.
all_inside if regex.match(plain_list_pattern(inside_path), listing)

plain_listing if {
	all_inside
} else := regex.match(plain_list_pattern(json_string), listing)

# No path has "..": there is no ".." anywhere in the list.
no_dotdot if {
	plain_listing
	not contains(listing, "..")
}

# The per-file rules are written for the interpreter's cost model (every builtin and function call counts,
# per file, and a call of a rule function costs several builtins): config is checked before the
# loop, per-file work is a few builtins and no rule function, and the '..' test runs only on
# paths that contain "..".
deny contains msg if {
	input.hook == "contents"
	allow_setuid != true
	not plain_listing
	some f in files
	m := bits.or(object.get(f, "original_mode", 0), object.get(f, "mode", 0))
	bits.and(m, special_bits) != 0
	msg := sprintf("%s contains %s with the setuid/setgid bit (mode 0%s); images must not ask for elevated privileges", [image, f.path, format_int(m, 8)])
}

deny contains msg if {
	input.hook == "contents"
	not no_dotdot
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
	not all_inside
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
