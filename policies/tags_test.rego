package gantry.tags_test

import rego.v1

import data.gantry.tags

doc(ref, tag) := {"hook": "resolve", "image": {"reference": ref, "repository": "corp/tool", "tag": tag}}

test_latest_denied_by_default if {
	msgs := tags.deny with input as doc("ghcr.io/corp/tool:latest", "latest")
	some msg in msgs
	contains(msg, "mutable tag 'latest'")
}

test_version_tag_allowed if {
	count(tags.deny) == 0 with input as doc("ghcr.io/corp/tool:1.2.3", "1.2.3")
}

test_latest_pinned_by_digest_allowed if {
	count(tags.deny) == 0 with input as doc("ghcr.io/corp/tool:latest@sha256:aaaa", "latest")
}

test_require_digest if {
	count(tags.deny) == 1 with input as doc("ghcr.io/corp/tool:1.2.3", "1.2.3") with data.config as {"require_digest": true}
	count(tags.deny) == 0 with input as doc("ghcr.io/corp/tool@sha256:aaaa", null) with data.config as {"require_digest": true}
}

test_configured_mutable_tags if {
	count(tags.deny) == 1 with input as doc("ghcr.io/corp/tool:edge", "edge") with data.config as {"mutable_tags": ["edge"]}
	count(tags.deny) == 0 with input as doc("ghcr.io/corp/tool:latest", "latest") with data.config as {"mutable_tags": ["edge"]}
}
