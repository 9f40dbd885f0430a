# Deny mutable tags, or require digests (resolve hook). Opt-in.
#
# data.config:
#   mutable_tags:   ["latest"]   tags refused unless the reference also pins a digest (default ["latest"])
#   require_digest: false        when true, every reference must carry @sha256:… (default false)
package gantry.tags

import rego.v1

default cfg := {}

cfg := data.config

mutable_tags := object.get(cfg, "mutable_tags", ["latest"])

require_digest := object.get(cfg, "require_digest", false)

image := object.get(input, "image", {})

reference := object.get(image, "reference", "")

pinned if contains(reference, "@sha256:")

deny contains msg if {
	input.hook == "resolve"
	not pinned
	image.tag in mutable_tags
	msg := sprintf("%s uses the mutable tag '%s'; install a fixed version tag or pin a digest (NAME@sha256:…)", [reference, image.tag])
}

deny contains msg if {
	input.hook == "resolve"
	require_digest == true
	not pinned
	msg := sprintf("%s is not pinned by digest, and this policy requires one; use NAME@sha256:…", [reference])
}
