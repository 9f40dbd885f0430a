# Allowed registries and repositories (resolve hook). Opt-in: add it to a registry's or the
# global `policies` list.
#
# data.config:
#   registries:   ["corp", "chainguard"]   names of configured registries (input.registry.name)
#   repositories: ["corp/*", "tools/**"]   glob patterns over input.image.repository
#                                          ("*" stays within one path segment, "**" spans many)
# A key that is absent does not restrict. With neither key set the policy denies everything and
# says so: an allow-list that lists nothing must not read as "allow all".
package gantry.registries

import rego.v1

default cfg := {}

cfg := data.config

registries := object.get(cfg, "registries", null)

repositories := object.get(cfg, "repositories", null)

registry_name := object.get(object.get(input, "registry", {}), "name", "")

repository := object.get(object.get(input, "image", {}), "repository", "")

reference := object.get(object.get(input, "image", {}), "reference", repository)

deny contains msg if {
	input.hook == "resolve"
	registries == null
	repositories == null
	msg := "the registries policy has no configuration: set registries and/or repositories in its config"
}

deny contains msg if {
	input.hook == "resolve"
	is_array(registries)
	not registry_name in registries
	msg := sprintf("%s comes from registry '%s', which is not allowed (allowed: %s)", [reference, registry_name, concat(", ", registries)])
}

# Rules are evaluated eagerly by regorus, and iterating null is an error there: guard the type.
repository_allowed if {
	is_array(repositories)
	some pattern in repositories
	glob.match(pattern, ["/"], repository)
}

deny contains msg if {
	input.hook == "resolve"
	repositories != null
	not repository_allowed
	msg := sprintf("repository %s of %s is not allowed (allowed: %s)", [repository, reference, concat(", ", repositories)])
}
