# File rules of the default policy: read_file on files targets.
#
# The guard resolves the requested path inside the target's roots (links
# followed, .. collapsed) and the rules judge the resolved file, not the
# name that was typed: an innocent name that links to a secret is a secret.
package mcpguard

import rego.v1

# Every rule starts by comparing input.tool with a constant, so that OPA's
# rule index skips the file rules outright for other tools.

deny contains sprintf("%s is outside the target's roots", [input.arguments.path]) if {
	input.tool == "read_file"
	not input.file.inside
}

deny contains sprintf("%s cannot be read: %s", [input.arguments.path, input.file.error]) if {
	input.tool == "read_file"
	input.file.inside
	input.file.error != ""
}

deny contains sprintf("%s is a secret file (%s)", [input.arguments.path, why]) if {
	input.tool == "read_file"
	some p in [input.file.resolved, input.file.requested]
	regex.match(any_secret_file, p)
	why := secret_file(p)
}

# One pattern for every secret below, so that an ordinary file costs one
# match; secret_file then says which kind it is.
any_secret_file := `(^|/)\.env(\.[^/]*)?$|(^|/)id_(rsa|dsa|ecdsa|ed25519)[^/]*$|\.(pem|key|p12|pfx|jks|keystore|kdbx|ppk)$|(^|/)\.ssh(/|$)|(^|/)\.(netrc|pgpass|git-credentials|npmrc|pypirc)$|(^|/)\.(aws|azure|gcloud|kube|docker|gnupg)/|(^|/)(credentials|service-account[^/]*\.json)$|^/proc/|^/etc/(shadow|gshadow|sudoers)`

secret_file(p) := "an environment file" if regex.match(`(^|/)\.env(\.[^/]*)?$`, p)

else := "a private key" if regex.match(`(^|/)id_(rsa|dsa|ecdsa|ed25519)[^/]*$`, p)

else := "a key or certificate store" if regex.match(`\.(pem|key|p12|pfx|jks|keystore|kdbx|ppk)$`, p)

else := "SSH material" if regex.match(`(^|/)\.ssh(/|$)`, p)

else := "a credentials file" if regex.match(`(^|/)\.(netrc|pgpass|git-credentials|npmrc|pypirc)$`, p)

else := "cloud credentials" if regex.match(`(^|/)\.(aws|azure|gcloud|kube|docker|gnupg)/`, p)

else := "cloud credentials" if regex.match(`(^|/)(credentials|service-account[^/]*\.json)$`, p)

else := "a process's environment or memory" if regex.match(`^/proc/`, p)

else := "a system secret" if regex.match(`^/etc/(shadow|gshadow|sudoers)`, p)

else := "a secret file" if regex.match(any_secret_file, p)

# A file with several names (hard links) may be a secret under an innocent
# one, and nothing about the name typed can tell: a person decides.
approval contains sprintf("%s has %d names (hard links), so it may be a secret under another name", [input.arguments.path, input.file.hard_links]) if {
	input.tool == "read_file"
	input.file.hard_links > 1
}

allowed if {
	input.tool == "read_file"
	input.file.inside
}
