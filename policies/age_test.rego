package gantry.age_test

import rego.v1

import data.gantry.age

# Times relative to now, so the tests do not age.
ago(hours) := time.format(time.now_ns() - hours * 3600000000000)

ago_s(hours) := round((time.now_ns() - hours * 3600000000000) / 1000000000)

manifest(created) := {"hook": "manifest", "image": {"reference": "r.example/t:1", "created": created}}

signed(secs) := {"hook": "signatures", "image": {"reference": "r.example/t:1"}, "signatures": [
	{"verified": true, "kind": "keyless", "tlog": {"log_index": 1, "integrated_time": secs}},
	{"verified": false, "kind": "keyless", "tlog": {"log_index": 2, "integrated_time": ago_s(1000)}},
]}

cfg := {"min_age": "3d"}

test_a_young_build_is_denied_at_manifest if {
	msgs := age.deny with input as manifest(ago(5)) with data.config as cfg
	some m in msgs
	contains(m, "younger than the cooldown of 3d")
}

test_an_old_build_passes_manifest if {
	count(age.deny) == 0 with input as manifest(ago(100)) with data.config as cfg
}

test_a_young_tlog_time_denies_whatever_created_says if {
	# A back-dated `created` does not help: the unverified old entry does not count either.
	count(age.deny) == 1 with input as object.union(signed(ago_s(2)), {"image": {"reference": "r.example/t:1", "created": ago(1000)}}) with data.config as cfg
	count(age.deny) == 0 with input as signed(ago_s(100)) with data.config as cfg
}

test_an_unknown_age_is_denied_unless_allowed if {
	doc := {"hook": "signatures", "image": {"reference": "r.example/t:1"}, "signatures": []}
	count(age.deny) == 1 with input as doc with data.config as cfg
	count(age.deny) == 0 with input as doc with data.config as {"min_age": "3d", "allow_unknown_age": true}
}

test_min_age_must_be_well_formed if {
	count(age.deny) == 1 with input as manifest(ago(100)) with data.config as {"min_age": "3 days"}
	count(age.deny) == 1 with input as manifest(ago(100)) with data.config as {}
	count(age.deny) == 0 with input as manifest(ago(100)) with data.config as {"min_age": "12h"}
}
