package gantry.vulnerabilities_test

import rego.v1

import data.gantry.vulnerabilities as vulns

scan(result) := {"predicate_type": "https://cosign.sigstore.dev/attestation/vuln/v1", "signer": {}, "predicate": {
	"invocation": {"uri": "invocation.example.com/cosign-testing"},
	"scanner": {"uri": "fakescanner.example.com/cosign-testing", "version": "", "result": result},
	"metadata": {"scanStartedOn": "2022-04-12T00:00:00Z", "scanFinishedOn": "2022-04-12T00:10:00Z"},
}}

trivy(sevs) := {"Results": [{"Target": "x", "Vulnerabilities": [{"VulnerabilityID": sprintf("CVE-%d", [i]), "Severity": s} | some i, s in sevs]}]}

grype(sevs) := {"matches": [{"vulnerability": {"id": sprintf("CVE-%d", [i]), "severity": s}} | some i, s in sevs]}

doc(atts) := {"hook": "attestations", "image": {"reference": "ghcr.io/corp/tool:1"}, "attestations": atts}

test_clean_trivy_scan_allowed if {
	count(vulns.deny) == 0 with input as doc([scan(trivy(["LOW", "MEDIUM"]))])
}

test_one_critical_denied_by_default if {
	msgs := vulns.deny with input as doc([scan(trivy(["CRITICAL", "LOW"]))])
	some msg in msgs
	contains(msg, "1 critical vulnerabilities")
}

test_grype_high_over_limit if {
	c := {"max_high": 1}
	count(vulns.deny) == 1 with input as doc([scan(grype(["High", "High"]))]) with data.config as c
	count(vulns.deny) == 0 with input as doc([scan(grype(["High"]))]) with data.config as c
}

test_critical_threshold_is_strictly_more_than if {
	count(vulns.deny) == 0 with input as doc([scan(trivy(["CRITICAL", "CRITICAL"]))]) with data.config as {"max_critical": 2}
	count(vulns.deny) == 1 with input as doc([scan(trivy(["CRITICAL", "CRITICAL", "CRITICAL"]))]) with data.config as {"max_critical": 2}
}

# The cosign test predicate carries result: null; an unreadable scan must not count as clean.
test_null_result_is_denied if {
	msgs := vulns.deny with input as doc([scan(null)])
	some msg in msgs
	contains(msg, "cannot read")
}

test_missing_scan_denied_unless_optional if {
	count(vulns.deny) == 1 with input as doc([])
	count(vulns.deny) == 0 with input as doc([]) with data.config as {"require_scan": false}
}
