# SBOM licence deny-list (attestations hook). Opt-in. Reads SPDX 2 documents (predicate type
# https://spdx.dev/Document: packages[].licenseConcluded / licenseDeclared) and CycloneDX
# (https://cyclonedx.org/bom: components[].licenses[].license.id / .name, or .expression).
# Licence expressions are split into identifiers, and any denied identifier denies, even in an
# "A OR B" choice: the policy cannot know which branch the publisher took.
#
# data.config:
#   denied:       ["AGPL-3.0-only", "AGPL-3.0-or-later", "SSPL-1.0"]   SPDX ids (the default shown)
#   require_sbom: false   deny when there is no SBOM attestation (default false)
package gantry.licenses

import rego.v1

default cfg := {}

cfg := data.config

denied := {lower(id) | some id in object.get(cfg, "denied", ["AGPL-3.0-only", "AGPL-3.0-or-later", "SSPL-1.0"])}

require_sbom := object.get(cfg, "require_sbom", false)

spdx_type := "https://spdx.dev/Document"

cyclonedx_type := "https://cyclonedx.org/bom"

image := object.get(object.get(input, "image", {}), "reference", "the image")

sboms contains att if {
	some att in object.get(input, "attestations", [])
	att.predicate_type in {spdx_type, cyclonedx_type}
}

# (package name, licence expression) pairs of every SBOM.
licences contains [object.get(p, "name", "?"), expr] if {
	some att in sboms
	att.predicate_type == spdx_type
	some p in object.get(att.predicate, "packages", [])
	some field in ["licenseConcluded", "licenseDeclared"]
	expr := p[field]
	is_string(expr)
}

licences contains [object.get(c, "name", "?"), expr] if {
	some att in sboms
	att.predicate_type == cyclonedx_type
	some c in object.get(att.predicate, "components", [])
	some l in object.get(c, "licenses", [])
	expr := cyclonedx_licence(l)
}

cyclonedx_licence(l) := l.expression if {
	is_string(l.expression)
} else := l.license.id if {
	is_string(l.license.id)
} else := l.license.name if {
	is_string(l.license.name)
}

identifiers(expr) := {lower(t) |
	some t in split(replace(replace(replace(expr, "(", " "), ")", " "), "\t", " "), " ")
	t != ""
	not upper(t) in {"AND", "OR", "WITH"}
}

deny contains msg if {
	input.hook == "attestations"
	some [pkg, expr] in licences
	some id in identifiers(expr)
	id in denied
	msg := sprintf("%s contains package '%s' under %s, and licence %s is on the deny-list", [image, pkg, expr, upper(id)])
}

deny contains msg if {
	input.hook == "attestations"
	require_sbom == true
	count(sboms) == 0
	msg := sprintf("%s has no verified SBOM attestation (SPDX or CycloneDX); attach one or set require_sbom = false", [image])
}
