package gantry.builtin.signatures_test

import rego.v1

import data.gantry.builtin.signatures as sig

gh := "https://token.actions.githubusercontent.com"

corp := {"registry": "corp", "has_signature_policy": true, "issuer": gh, "identity_regex": "^(?:https://github.com/corp/.*)$", "allow_unsigned": false, "always_allow_unsigned": false}

keyed := {"registry": "keys", "has_signature_policy": true, "key_fingerprints": ["sha256:aaaa"]}

unconfigured := {"registry": "adhoc", "has_signature_policy": false, "allow_unsigned": false, "always_allow_unsigned": false}

keyless(subject, issuer) := {"verified": true, "kind": "keyless", "source": "cosign_tag", "identity": {"issuer": issuer, "subject": subject}}

key(fpr) := {"verified": true, "kind": "key", "source": "cosign_tag", "key_fingerprint": fpr, "identity": {}}

bad := {"verified": false, "error": "signature does not verify against the payload", "kind": "key", "source": "cosign_tag", "identity": {}}

doc(sigs) := {"hook": "signatures", "image": {"reference": "ghcr.io/corp/tool:1"}, "signatures": sigs}

test_matching_keyless_signer_allowed if {
	count(sig.deny) == 0 with input as doc([keyless("https://github.com/corp/tool/.github/workflows/r.yml@refs/tags/v1", gh)]) with data.config as corp
}

test_policy_and_no_signature_denied_even_with_allow_unsigned if {
	msgs := sig.deny with input as doc([]) with data.config as object.union(corp, {"allow_unsigned": true})
	some msg in msgs
	contains(msg, "has no signature, but registry 'corp' requires one")
	contains(msg, "--allow-unsigned does not apply")
}

test_wrong_identity_denied_with_expected_pattern if {
	msgs := sig.deny with input as doc([keyless("https://github.com/evil/tool/.github/workflows/r.yml@refs/tags/v1", gh)]) with data.config as corp
	some msg in msgs
	contains(msg, "signature by https://github.com/evil/tool/")
	contains(msg, "does not match the policy of registry 'corp' (expected identity ^(?:https://github.com/corp/.*)$ from issuer https://token.actions.githubusercontent.com)")
}

test_unanchored_regex_cannot_match_a_substring if {
	c := object.union(corp, {"identity_regex": "https://github.com/corp/.*"})
	count(sig.deny) == 1 with input as doc([keyless("https://evil.example/?x=https://github.com/corp/tool", gh)]) with data.config as c
}

test_wrong_issuer_denied if {
	count(sig.deny) == 1 with input as doc([keyless("https://github.com/corp/tool/x", "https://evil.example")]) with data.config as corp
}

test_identity_without_issuer_matches_nothing if {
	c := {"registry": "corp", "has_signature_policy": true, "identity": "dev@corp.example"}
	msgs := sig.deny with input as doc([keyless("dev@corp.example", "https://accounts.google.com")]) with data.config as c
	some msg in msgs
	contains(msg, "no issuer configured")
}

test_exact_identity if {
	c := {"registry": "corp", "has_signature_policy": true, "issuer": gh, "identity": "https://github.com/corp/tool/.github/workflows/r.yml@refs/heads/main"}
	count(sig.deny) == 0 with input as doc([keyless("https://github.com/corp/tool/.github/workflows/r.yml@refs/heads/main", gh)]) with data.config as c
	count(sig.deny) == 1 with input as doc([keyless("https://github.com/corp/tool/.github/workflows/r.yml@refs/heads/dev", gh)]) with data.config as c
}

test_key_fingerprint_in_list_allowed if {
	count(sig.deny) == 0 with input as doc([bad, key("sha256:aaaa")]) with data.config as keyed
}

test_unverified_signature_with_listed_key_denied if {
	unverified := object.union(key("sha256:aaaa"), {"verified": false, "error": "bad signature"})
	msgs := sig.deny with input as doc([unverified]) with data.config as keyed
	some msg in msgs
	contains(msg, "did not verify: bad signature")
}

test_other_key_denied if {
	count(sig.deny) == 1 with input as doc([key("sha256:bbbb")]) with data.config as keyed
}

test_half_filled_config_is_still_a_policy if {
	c := {"registry": "corp", "key_fingerprints": ["sha256:aaaa"], "allow_unsigned": true}
	count(sig.deny) == 1 with input as doc([]) with data.config as c
}

test_no_policy_denied_without_allow_unsigned if {
	msgs := sig.deny with input as doc([]) with data.config as unconfigured
	some msg in msgs
	contains(msg, "pass --allow-unsigned")
}

test_no_policy_does_not_suggest_allow_unsigned_where_the_system_forbids_it if {
	msgs := sig.deny with input as doc([]) with data.config as object.union(unconfigured, {"forbid_allow_unsigned": true})
	count(msgs) == 1
	some msg in msgs
	not contains(msg, "pass --allow-unsigned")
	contains(msg, "the system configuration forbids --allow-unsigned")
}

test_no_policy_with_allow_unsigned_warns if {
	count(sig.deny) == 0 with input as doc([]) with data.config as object.union(unconfigured, {"allow_unsigned": true})
	count(sig.warn) == 1 with input as doc([]) with data.config as object.union(unconfigured, {"allow_unsigned": true})
	count(sig.deny) == 0 with input as doc([]) with data.config as object.union(unconfigured, {"always_allow_unsigned": true})
}

test_no_config_at_all_denies if {
	count(sig.deny) == 1 with input as doc([])
}

test_silent_at_other_hooks if {
	count(sig.deny) == 0 with input as {"hook": "resolve"} with data.config as corp
}

keyref(fpr, ref) := object.union(key(fpr), {"docker_reference": ref})

test_match_reference_repository_accepts_same_repository_any_tag if {
	cfg := object.union(keyed, {"match_reference": "repository"})
	count(sig.deny) == 0 with input as doc([keyref("sha256:aaaa", "ghcr.io/corp/tool")]) with data.config as cfg
	count(sig.deny) == 0 with input as doc([keyref("sha256:aaaa", "ghcr.io/corp/tool:other")]) with data.config as cfg
}

test_match_reference_repository_denies_a_signature_for_another_repository if {
	cfg := object.union(keyed, {"match_reference": "repository"})
	count(sig.deny) > 0 with input as doc([keyref("sha256:aaaa", "ghcr.io/corp/tool-evil")]) with data.config as cfg
	count(sig.deny) > 0 with input as doc([key("sha256:aaaa")]) with data.config as cfg
}

test_match_reference_exact_needs_the_tag_too if {
	cfg := object.union(keyed, {"match_reference": "exact"})
	count(sig.deny) == 0 with input as doc([keyref("sha256:aaaa", "ghcr.io/corp/tool:1")]) with data.config as cfg
	count(sig.deny) > 0 with input as doc([keyref("sha256:aaaa", "ghcr.io/corp/tool:2")]) with data.config as cfg
}

test_match_reference_repository_keeps_registry_ports if {
	cfg := object.union(keyed, {"match_reference": "repository"})
	d := {"hook": "signatures", "image": {"reference": "127.0.0.1:5000/corp/tool:1"}, "signatures": [keyref("sha256:aaaa", "127.0.0.1:5000/corp/tool")]}
	count(sig.deny) == 0 with input as d with data.config as cfg
	d2 := {"hook": "signatures", "image": {"reference": "127.0.0.1:5000/corp/tool:1"}, "signatures": [keyref("sha256:aaaa", "127.0.0.1:5001/corp/tool")]}
	count(sig.deny) > 0 with input as d2 with data.config as cfg
}
