# Require SLSA provenance from known builders and source repositories (attestations hook). Opt-in.
# Reads SLSA v0.2 (predicate.builder.id, predicate.invocation.configSource.uri) and v1
# (predicate.runDetails.builder.id, predicate.buildDefinition.externalParameters.workflow.repository
# or .source, or the first resolvedDependencies uri). Only verified, subject-bound attestations
# reach input.attestations, so a match here is a statement someone signed about this digest.
#
# data.config:
#   builders:            ["https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.0.0"]
#                        exact builder ids; an entry ending in "*" matches by prefix
#   source_repositories: ["https://github.com/corp/tool"]   exact, after normalising
#                        (git+ prefix, @ref suffix, .git suffix removed)
# Absent keys do not restrict, but some provenance attestation must always exist. One
# attestation must satisfy both lists: a builder from one statement and a source from another
# do not add up.
package gantry.slsa

import rego.v1

default cfg := {}

cfg := data.config

builders := object.get(cfg, "builders", null)

sources := object.get(cfg, "source_repositories", null)

provenance_types := {
	"https://slsa.dev/provenance/v0.2",
	"https://slsa.dev/provenance/v1",
}

provenance contains att if {
	some att in object.get(input, "attestations", [])
	att.predicate_type in provenance_types
}

builder_id(att) := att.predicate.builder.id if att.predicate_type == "https://slsa.dev/provenance/v0.2"

builder_id(att) := att.predicate.runDetails.builder.id if att.predicate_type == "https://slsa.dev/provenance/v1"

raw_source(att) := att.predicate.invocation.configSource.uri if att.predicate_type == "https://slsa.dev/provenance/v0.2"

raw_source(att) := s if {
	att.predicate_type == "https://slsa.dev/provenance/v1"
	s := v1_source(att.predicate.buildDefinition)
}

v1_source(def) := def.externalParameters.workflow.repository if {
	is_string(def.externalParameters.workflow.repository)
} else := def.externalParameters.source if {
	is_string(def.externalParameters.source)
} else := def.resolvedDependencies[0].uri

normalise(uri) := trim_suffix(trim_prefix(split(uri, "@")[0], "git+"), ".git")

source_of(att) := normalise(raw_source(att))

builder_ok(att) if builders == null

builder_ok(att) if {
	is_array(builders)
	some b in builders
	not endswith(b, "*")
	builder_id(att) == b
}

builder_ok(att) if {
	is_array(builders)
	some b in builders
	endswith(b, "*")
	startswith(builder_id(att), trim_suffix(b, "*"))
}

source_ok(att) if sources == null

source_ok(att) if {
	is_array(sources)
	source_of(att) in sources
}

satisfied if {
	some att in provenance
	builder_ok(att)
	source_ok(att)
}

image := object.get(object.get(input, "image", {}), "reference", "the image")

deny contains msg if {
	input.hook == "attestations"
	count(provenance) == 0
	msg := sprintf("%s has no verified SLSA provenance attestation; publish one (e.g. with slsa-github-generator) or remove the slsa policy", [image])
}

deny contains msg if {
	input.hook == "attestations"
	not satisfied
	some att in provenance
	msg := sprintf("SLSA provenance of %s was built by %s from %s, which this policy does not allow (builders: %s; sources: %s)", [image, builder_text(att), source_text(att), list_text(builders), list_text(sources)])
}

list_text(xs) := "any" if xs == null

list_text(xs) := concat(", ", xs) if is_array(xs)

builder_text(att) := b if {
	b := builder_id(att)
} else := "an unknown builder"

source_text(att) := s if {
	s := source_of(att)
} else := "an unknown source"
