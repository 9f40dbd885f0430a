# Release-age cooldown: refuses images younger than `min_age`, as pnpm, uv and mise do for new
# package releases (time for a bad release to be noticed and pulled before it reaches you).
# Two clocks are read:
#   - at the manifest hook, the config's `created` (input.image.created): the builder's claim,
#     cheap to check before anything else is fetched, but it can be back-dated;
#   - at the signatures hook, the earliest transparency-log time of a verified signature
#     (signatures[].tlog.integrated_time): the proof. A young tlog time denies whatever
#     `created` says.
# An image whose age is known by neither is denied unless allow_unknown_age is true.
#
# data.config:
#   min_age:           "3d"     a number and a unit: s, m, h, d or w (required; no default)
#   allow_unknown_age: false
package gantry.age

import rego.v1

default cfg := {}

cfg := data.config

image := object.get(object.get(input, "image", {}), "reference", "the image")

unit_ns := {"s": 1000000000, "m": 60000000000, "h": 3600000000000, "d": 86400000000000, "w": 604800000000000}

min_age_text := object.get(cfg, "min_age", "")

min_age_ns := to_number(n) * unit_ns[u] if {
	parts := regex.find_all_string_submatch_n(`^([0-9]+)([smhdw])$`, min_age_text, 1)
	count(parts) == 1
	n := parts[0][1]
	u := parts[0][2]
}

configured if min_age_ns

now_ns := time.now_ns()

created_ns := time.parse_rfc3339_ns(input.image.created)

tlog_times := [t.tlog.integrated_time |
	some t in object.get(input, "signatures", [])
	t.verified == true
	is_number(t.tlog.integrated_time)
]

earliest_tlog_ns := min(tlog_times) * 1000000000 if count(tlog_times) > 0

age_text(ns) := sprintf("%.1f hours", [(now_ns - ns) / 3600000000000])

deny contains msg if {
	input.hook == "manifest"
	not configured
	msg := sprintf("policies/age.rego needs config min_age such as \"3d\" (a number and one of s, m, h, d, w), not %v", [min_age_text])
}

deny contains msg if {
	input.hook == "manifest"
	configured
	now_ns - created_ns < min_age_ns
	msg := sprintf("%s was built %s ago (created %s), younger than the cooldown of %s", [image, age_text(created_ns), input.image.created, min_age_text])
}

deny contains msg if {
	input.hook == "signatures"
	configured
	now_ns - earliest_tlog_ns < min_age_ns
	msg := sprintf("%s was first signed in the transparency log %s ago, younger than the cooldown of %s", [image, age_text(earliest_tlog_ns), min_age_text])
}

deny contains msg if {
	input.hook == "signatures"
	configured
	not created_ns
	not earliest_tlog_ns
	not cfg.allow_unknown_age == true
	msg := sprintf("the age of %s is unknown (no created time in its config, no verified transparency-log entry), so the cooldown of %s cannot be checked; set allow_unknown_age to accept such images", [image, min_age_text])
}
