package gantry.slsa_test

import rego.v1

import data.gantry.slsa

gen := "https://github.com/slsa-framework/slsa-github-generator/.github/workflows/generator_container_slsa3.yml@refs/tags/v2.0.0"

v02(builder, source) := {"predicate_type": "https://slsa.dev/provenance/v0.2", "predicate": {"builder": {"id": builder}, "invocation": {"configSource": {"uri": source}}}, "signer": {}}

v1(builder, repo) := {"predicate_type": "https://slsa.dev/provenance/v1", "predicate": {"runDetails": {"builder": {"id": builder}}, "buildDefinition": {"externalParameters": {"workflow": {"repository": repo, "path": ".github/workflows/release.yml"}}, "resolvedDependencies": []}}, "signer": {}}

doc(atts) := {"hook": "attestations", "image": {"reference": "ghcr.io/corp/tool:1"}, "attestations": atts}

conf := {"builders": [gen], "source_repositories": ["https://github.com/corp/tool"]}

test_v02_from_allowed_builder_and_source if {
	count(slsa.deny) == 0 with input as doc([v02(gen, "git+https://github.com/corp/tool@refs/heads/main")]) with data.config as conf
}

test_v1_from_allowed_builder_and_source if {
	count(slsa.deny) == 0 with input as doc([v1(gen, "https://github.com/corp/tool")]) with data.config as conf
}

test_no_provenance_denied if {
	msgs := slsa.deny with input as doc([]) with data.config as conf
	some msg in msgs
	contains(msg, "no verified SLSA provenance")
}

test_unknown_builder_denied if {
	msgs := slsa.deny with input as doc([v1("https://evil.example/builder", "https://github.com/corp/tool")]) with data.config as conf
	some msg in msgs
	contains(msg, "built by https://evil.example/builder")
}

test_lookalike_source_denied if {
	count(slsa.deny) == 1 with input as doc([v1(gen, "https://github.com/corp/tool-evil")]) with data.config as conf
}

test_builder_and_source_must_come_from_one_statement if {
	atts := [v1(gen, "https://github.com/evil/tool"), v1("https://evil.example/b", "https://github.com/corp/tool")]
	count(slsa.deny) == 2 with input as doc(atts) with data.config as conf
}

test_prefix_builder_pattern if {
	c := {"builders": ["https://github.com/slsa-framework/slsa-github-generator/*"]}
	count(slsa.deny) == 0 with input as doc([v1(gen, "https://github.com/x/y")]) with data.config as c
}

test_other_predicates_are_not_provenance if {
	att := {"predicate_type": "https://cosign.sigstore.dev/attestation/vuln/v1", "predicate": {}, "signer": {}}
	count(slsa.deny) == 1 with input as doc([att]) with data.config as {}
}
