# Deny images whose vulnerability scan reports too many critical/high findings (attestations
# hook). Opt-in. Reads cosign vuln attestations (predicate type
# https://cosign.sigstore.dev/attestation/vuln/v1), whose predicate.scanner.result is the
# scanner's own report: Trivy JSON (Results[].Vulnerabilities[].Severity) and Grype JSON
# (matches[].vulnerability.severity) are understood. A result in any other shape (or null) is a
# deny: a scan we cannot read says nothing about the image.
#
# data.config:
#   max_critical: 0      most critical findings allowed (default 0)
#   max_high:     -1     most high findings allowed; -1 = no limit (default -1)
#   require_scan: true   deny when there is no vuln attestation at all (default true)
package gantry.vulnerabilities

import rego.v1

default cfg := {}

cfg := data.config

max_critical := object.get(cfg, "max_critical", 0)

max_high := object.get(cfg, "max_high", -1)

require_scan := object.get(cfg, "require_scan", true)

vuln_type := "https://cosign.sigstore.dev/attestation/vuln/v1"

scans contains att if {
	some att in object.get(input, "attestations", [])
	att.predicate_type == vuln_type
}

image := object.get(object.get(input, "image", {}), "reference", "the image")

# Severities of one scan result, lower-cased; undefined when the format is not recognised.
severities(result) := [lower(v.Severity) | some r in result.Results; vs := object.get(r, "Vulnerabilities", []); is_array(vs); some v in vs] if {
	is_array(result.Results)
}

severities(result) := [lower(m.vulnerability.severity) | some m in result.matches] if {
	is_array(result.matches)
	not result.Results
}

scanner_of(att) := object.get(object.get(att, "predicate", {}), "scanner", {})

result_of(att) := object.get(scanner_of(att), "result", null)

scanner(att) := object.get(scanner_of(att), "uri", "an unnamed scanner")

count_of(sevs, level) := count([s | some s in sevs; s == level])

deny contains msg if {
	input.hook == "attestations"
	require_scan == true
	count(scans) == 0
	msg := sprintf("%s has no verified vulnerability scan attestation (%s); attach one or set require_scan = false", [image, vuln_type])
}

deny contains msg if {
	input.hook == "attestations"
	some att in scans
	not severities(result_of(att))
	msg := sprintf("the vulnerability scan of %s by %s has a result this policy cannot read (expected Trivy or Grype JSON)", [image, scanner(att)])
}

deny contains msg if {
	input.hook == "attestations"
	some att in scans
	sevs := severities(result_of(att))
	n := count_of(sevs, "critical")
	n > max_critical
	msg := sprintf("%s has %d critical vulnerabilities (scan by %s), more than the %d allowed", [image, n, scanner(att), max_critical])
}

deny contains msg if {
	input.hook == "attestations"
	max_high >= 0
	some att in scans
	sevs := severities(result_of(att))
	n := count_of(sevs, "high")
	n > max_high
	msg := sprintf("%s has %d high vulnerabilities (scan by %s), more than the %d allowed", [image, n, scanner(att), max_high])
}
