package gantry.registries_test

import rego.v1

import data.gantry.registries

doc(name, repo) := {"hook": "resolve", "registry": {"name": name, "url": "ghcr.io"}, "image": {"reference": sprintf("ghcr.io/%s:1", [repo]), "repository": repo, "tag": "1"}}

test_allowed_registry_and_repository if {
	count(registries.deny) == 0 with input as doc("corp", "corp/tool")
		with data.config as {"registries": ["corp"], "repositories": ["corp/*"]}
}

test_other_registry_denied if {
	msgs := registries.deny with input as doc("evil", "corp/tool") with data.config as {"registries": ["corp"]}
	some msg in msgs
	contains(msg, "registry 'evil', which is not allowed")
}

test_repository_glob_does_not_cross_segments if {
	count(registries.deny) == 1 with input as doc("corp", "corp/team/tool") with data.config as {"repositories": ["corp/*"]}
	count(registries.deny) == 0 with input as doc("corp", "corp/team/tool") with data.config as {"repositories": ["corp/**"]}
}

test_prefix_lookalike_denied if {
	count(registries.deny) == 1 with input as doc("corp", "corpevil/tool") with data.config as {"repositories": ["corp/*"]}
}

test_no_config_denies if {
	msgs := registries.deny with input as doc("corp", "corp/tool") with data.config as {}
	some msg in msgs
	contains(msg, "no configuration")
}

test_other_hooks_silent if {
	count(registries.deny) == 0 with input as object.union(doc("evil", "x/y"), {"hook": "manifest"}) with data.config as {"registries": ["corp"]}
}
