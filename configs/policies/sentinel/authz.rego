# The stack's example request policy: what the policy agent decides for every request.
#
# Input and decision shapes are documented in docs/agents.md. The agent evaluates
# data.sentinel.authz.decision; everything else here serves that one object.
package sentinel.authz

import rego.v1

default allow := false

allow if count(deny) == 0

# Admin areas need the "admin" role, which only a verified JWT can supply.
deny contains "the admin area requires the admin role" if {
	is_admin_path
	not has_role("admin")
}

# Routes listed in data.sentinel.config.route_methods accept only those methods.
deny contains sprintf("method %s is not allowed on route %s", [input.request.method, input.route]) if {
	method_not_allowed
}

# Large bodies are refused before the upstream has to read them.
deny contains "request body is too large" if {
	input.request.body_size > data.sentinel.config.max_body_bytes
}

is_admin_path if {
	some prefix in data.sentinel.config.admin_prefixes
	startswith(input.request.path, prefix)
}

has_role(role) if role in input.identity.claims.roles

method_not_allowed if {
	allowed := data.sentinel.config.route_methods[input.route]
	not input.request.method in allowed
}

status := 405 if {
	method_not_allowed
} else := 401 if {
	is_admin_path
	not input.identity.authenticated
} else := 403 if {
	count(deny) > 0
} else := 200

headers["x-sentinel-policy"] := "sentinel.authz"

headers["x-sentinel-subject"] := input.identity.claims.sub if input.identity.authenticated

decision := {
	"allow": allow,
	"deny": deny,
	"status": status,
	"headers": headers,
}
