package gantry.licenses_test

import rego.v1

import data.gantry.licenses

spdx(pkgs) := {"predicate_type": "https://spdx.dev/Document", "signer": {}, "predicate": {"spdxVersion": "SPDX-2.3", "packages": pkgs}}

cdx(comps) := {"predicate_type": "https://cyclonedx.org/bom", "signer": {}, "predicate": {"bomFormat": "CycloneDX", "components": comps}}

doc(atts) := {"hook": "attestations", "image": {"reference": "ghcr.io/corp/tool:1"}, "attestations": atts}

test_permissive_spdx_allowed if {
	count(licenses.deny) == 0 with input as doc([spdx([{"name": "jq", "licenseConcluded": "MIT", "licenseDeclared": "NOASSERTION"}])])
}

test_agpl_in_spdx_expression_denied if {
	msgs := licenses.deny with input as doc([spdx([{"name": "db", "licenseConcluded": "(MIT OR AGPL-3.0-only)"}])])
	some msg in msgs
	contains(msg, "package 'db'")
}

test_cyclonedx_id_and_expression if {
	comps := [
		{"name": "a", "licenses": [{"license": {"id": "Apache-2.0"}}]},
		{"name": "b", "licenses": [{"expression": "GPL-3.0-only WITH Classpath-exception-2.0"}]},
	]
	count(licenses.deny) == 0 with input as doc([cdx(comps)])
	count(licenses.deny) == 1 with input as doc([cdx(comps)]) with data.config as {"denied": ["GPL-3.0-only"]}
}

test_match_is_by_whole_identifier if {
	# "GPL-3.0-only" must not match inside "LGPL-3.0-only".
	count(licenses.deny) == 0 with input as doc([spdx([{"name": "x", "licenseConcluded": "LGPL-3.0-only"}])]) with data.config as {"denied": ["GPL-3.0-only"]}
}

test_require_sbom if {
	count(licenses.deny) == 0 with input as doc([])
	count(licenses.deny) == 1 with input as doc([]) with data.config as {"require_sbom": true}
}
