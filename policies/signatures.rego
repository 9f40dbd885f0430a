# Built-in signature policy: the per-registry rules of "who must sign". Embedded in the gantry
# binary and evaluated at every hook (it only speaks at the `signatures` hook).
#
# data.config is the registry's signature policy, assembled by the core:
#   {
#     "registry": "corp",                      # registry name, for messages
#     "has_signature_policy": true,             # the entry names an identity or keys
#     "issuer": "https://token.actions.githubusercontent.com",   # optional
#     "identity": "https://github.com/corp/tool/.github/workflows/release.yml@refs/heads/main",  # optional, exact SAN
#     "identity_regex": "^(?:https://github.com/corp/.*)$",     # optional, anchored by the core
#     "key_fingerprints": ["sha256:<hex of DER SubjectPublicKeyInfo>"],   # optional
#     "quorum": false,                          # the registry counts a signer quorum (below)
#     "allow_unsigned": false,                  # --allow-unsigned was given
#     "always_allow_unsigned": false,           # the registry entry allows unsigned images
#     "forbid_allow_unsigned": false            # the system layer forbids --allow-unsigned
#   }
# Absent keys read as empty/false. A registry counts as having a policy when
# has_signature_policy is true OR any of identity, identity_regex, key_fingerprints is set
# (fail closed: a half-filled config never reads as "no policy").
#
# Rules:
#   - policy, no signature at all            -> deny (--allow-unsigned does not apply)
#   - policy, no verified signature matches  -> deny, one message per signature saying why
#   - no policy, not allow_unsigned and not always_allow_unsigned -> deny
#   - quorum: fewer distinct signers than required (input.signature_quorum, computed by the core
#     as a matching: each signer and each entry counts once) -> deny at `signatures`; the same
#     for input.attestation_quorum at `attestations`; a quorum registry whose fact is missing
#     -> deny (fail closed)
# A keyless signature matches when its issuer equals `issuer` (required: an identity without an
# issuer matches nothing) and its subject equals `identity` or matches `identity_regex`
# (re-anchored here too, so an unanchored pattern can never match a substring). A key signature
# matches when its key fingerprint is in key_fingerprints.
package gantry.builtin.signatures

import rego.v1

default cfg := {}

cfg := data.config

registry := object.get(cfg, "registry", "")

issuer := object.get(cfg, "issuer", null)

identity := object.get(cfg, "identity", null)

identity_regex := object.get(cfg, "identity_regex", null)

key_fingerprints := object.get(cfg, "key_fingerprints", [])

has_policy if cfg.has_signature_policy == true

quorum_mode if cfg.quorum == true

# The one-rule checks below do not apply to a quorum registry (its rule is the quorum's).
rule_mode if {
	has_policy
	not quorum_mode
}

has_policy if is_string(identity)

has_policy if is_string(identity_regex)

has_policy if count(key_fingerprints) > 0

unsigned_allowed if cfg.allow_unsigned == true

unsigned_allowed if cfg.always_allow_unsigned == true

signatures := object.get(input, "signatures", [])

image := object.get(object.get(input, "image", {}), "reference", "the image")

anchored := sprintf("^(?:%s)$", [identity_regex])

subject_matches(subject) if {
	is_string(identity)
	subject == identity
}

subject_matches(subject) if {
	is_string(identity_regex)
	regex.match(anchored, subject)
}

matches(sig) if {
	sig.verified == true
	sig.kind == "key"
	sig.key_fingerprint in key_fingerprints
	reference_matches(sig)
}

matches(sig) if {
	sig.verified == true
	sig.kind == "keyless"
	is_string(issuer)
	sig.identity.issuer == issuer
	subject_matches(sig.identity.subject)
	reference_matches(sig)
}

# Optional binding of the signed docker-reference to the image (data.config.match_reference):
# "repository" compares host/repository (tag and digest stripped), "exact" the whole reference.
match_reference := object.get(cfg, "match_reference", null)

image_reference := object.get(object.get(input, "image", {}), "reference", "")

# host/repo from host/repo:tag or host/repo@sha256:… (a port's colon is followed by a "/").
repository_of(ref) := regex.replace(regex.replace(ref, "@.*$", ""), ":[^:/]*$", "")

reference_matches(_) if not is_string(match_reference)

reference_matches(sig) if {
	match_reference == "repository"
	is_string(sig.docker_reference)
	repository_of(sig.docker_reference) == repository_of(image_reference)
}

reference_matches(sig) if {
	match_reference == "exact"
	sig.docker_reference == image_reference
}

some_match if {
	some sig in signatures
	matches(sig)
}

expected_parts contains sprintf("identity %s from issuer %s", [identity, issuer_text]) if is_string(identity)

# Shown as configured (the core has anchored it); matched wrapped once more, see `anchored`.
expected_parts contains sprintf("identity %s from issuer %s", [identity_regex, issuer_text]) if is_string(identity_regex)

expected_parts contains sprintf("key %s", [concat(" or ", key_fingerprints)]) if count(key_fingerprints) > 0

issuer_text := issuer if is_string(issuer)

issuer_text := "(no issuer configured: add issuer to the registry entry)" if not is_string(issuer)

expected := concat("; or ", sort([p | some p in expected_parts]))

allow_unsigned_note := " (--allow-unsigned does not apply to a registry with a signature policy)" if cfg.allow_unsigned == true

allow_unsigned_note := "" if not cfg.allow_unsigned == true

# Which digest a signature was found on (and signs): the platform manifest's or the index's.
signed_on(sig) := sprintf(" on image index %s", [sig.signed_digest]) if {
	sig.on_index == true
	is_string(sig.signed_digest)
} else := sprintf(" on %s", [sig.signed_digest]) if {
	is_string(sig.signed_digest)
} else := ""

# An else-chain, so a signature with both a subject and a fingerprint still describes once.
describe(sig) := sprintf("signature by %s (issuer %s)", [sig.identity.subject, object.get(sig.identity, "issuer", "unknown")]) if {
	sig.kind == "keyless"
	is_string(sig.identity.subject)
} else := sprintf("signature by key %s", [sig.key_fingerprint]) if {
	is_string(sig.key_fingerprint)
} else := "signature without a recorded signer"

deny contains msg if {
	input.hook == "signatures"
	rule_mode
	count(signatures) == 0
	msg := sprintf("%s has no signature, but registry '%s' requires one (expected %s)%s; ask the publisher to sign it or check the reference", [image, registry, expected, allow_unsigned_note])
}

deny contains msg if {
	input.hook == "signatures"
	rule_mode
	not some_match
	some sig in signatures
	sig.verified == true
	msg := sprintf("%s%s for %s does not match the policy of registry '%s' (expected %s)%s", [describe(sig), signed_on(sig), image, registry, expected, allow_unsigned_note])
}

deny contains msg if {
	input.hook == "signatures"
	rule_mode
	not some_match
	some sig in signatures
	not sig.verified == true
	msg := sprintf("a signature%s for %s did not verify: %s; no signature matches the policy of registry '%s' (expected %s)%s", [signed_on(sig), image, object.get(sig, "error", "unknown error"), registry, expected, allow_unsigned_note])
}

deny contains msg if {
	input.hook == "signatures"
	not has_policy
	not unsigned_allowed
	msg := sprintf("registry '%s' has no signature policy, so no signer of %s can be trusted%s; %s", [registry, image, signed_note, unsigned_remedy])
}

# What to do about an image from a registry without a signature policy: --allow-unsigned is
# suggested only where the system configuration does not forbid it.
unsigned_remedy := "add issuer and identity (or keys) to the registry entry, or pass --allow-unsigned to install it anyway" if not cfg.forbid_allow_unsigned == true

unsigned_remedy := "add issuer and identity (or keys) to the registry entry (the system configuration forbids --allow-unsigned)" if cfg.forbid_allow_unsigned == true

verified_signers := [describe(sig) | some sig in signatures; sig.verified == true]

signed_note := sprintf(" (found: %s)", [concat(", ", verified_signers)]) if count(verified_signers) > 0

signed_note := "" if count(verified_signers) == 0

warn contains msg if {
	input.hook == "signatures"
	not has_policy
	unsigned_allowed
	reason := unsigned_reason
	msg := sprintf("installing %s without checking its signer: registry '%s' has no signature policy and %s", [image, registry, reason])
}

unsigned_reason := "--allow-unsigned was given" if cfg.allow_unsigned == true

unsigned_reason := "it sets always_allow_unsigned" if {
	not cfg.allow_unsigned == true
	cfg.always_allow_unsigned == true
}

quorum_facts(key) := [q | some q in object.get(input, key, []); q.registry == registry]

quorum_text(q) := sprintf("%d of %d required signers, have %d: %s", [q.required, count(q.entries), q.have, quorum_detail(q)])

satisfied_text(q) := concat(", ", [sprintf("%s (as %s)", [m.signer, q.entries[m.entry]]) | some m in q.satisfied])

quorum_detail(q) := sprintf("signed by %s; missing %s", [satisfied_text(q), concat(", ", q.missing)]) if {
	count(q.satisfied) > 0
} else := sprintf("no verified signature from any of them; missing %s", [concat(", ", q.missing)])

deny contains msg if {
	input.hook == "signatures"
	quorum_mode
	some q in quorum_facts("signature_quorum")
	q.have < q.required
	msg := sprintf("%s is not signed by enough of the signers of registry '%s': %s", [image, registry, quorum_text(q)])
}

deny contains msg if {
	input.hook == "signatures"
	quorum_mode
	count(quorum_facts("signature_quorum")) == 0
	msg := sprintf("registry '%s' counts a signer quorum, but no quorum result was computed for %s", [registry, image])
}

deny contains msg if {
	input.hook == "attestations"
	quorum_mode
	some q in quorum_facts("attestation_quorum")
	q.have < q.required
	msg := sprintf("%s is not attested by enough of the signers of registry '%s': %s", [image, registry, quorum_text(q)])
}
